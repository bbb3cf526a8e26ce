# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/benchmark_vs_authors.py and the step builder of
benchmark_train_step.py it shares.

The end-to-end runs need the authors' code: set ``WSSS_AUTHORS_DUPL`` /
``WSSS_AUTHORS_TOCO`` to local checkouts of Wu0409/DuPL and
rulixiang/ToCo (with timm, texttable and imageio installed) to run them.
"""
import os
import os.path as osp
import sys

import pytest
import torch

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import benchmark_train_step as bts  # noqa: E402
import benchmark_vs_authors as bva  # noqa: E402

sys.path.pop(0)
pytestmark = pytest.mark.usefixtures('one_thread')


def test_authors_inputs_by_hand():
    data = bts.random_batch(21, batch=2, size=4, seed=0, views=2)
    # Pixel (0, 0) of image 0 in BGR: (0, 100, 200).
    data['inputs'][0][:, 0, 0] = torch.tensor([0, 100, 200], dtype=torch.uint8)
    out = bva.authors_inputs(data, 'cpu')
    assert out['inputs'].shape == (2, 3, 4, 4)
    # Theirs are RGB: (200, 100, 0) normalised with ImageNet mean / std.
    expected = [(200 - 123.675) / 58.395, (100 - 116.28) / 57.12,
                (0 - 103.53) / 57.375]
    assert out['inputs'][0, :, 0, 0].tolist() == pytest.approx(expected)
    assert out['img_box'].tolist() == [[0, 4, 0, 4], [0, 4, 0, 4]]
    labels = torch.stack([s.gt_cls_label.data for s in data['data_samples']])
    assert torch.equal(out['cls_label'], labels)
    assert out['cls_label'].sum(1).tolist() == [2, 2]
    # ToCo's crops: the image itself and the two extra views, each
    # converted as the image.
    assert len(out['crops']) == 3
    assert out['crops'][0] is out['inputs']
    view = data['data_samples'][1].views[0]
    assert torch.allclose(
        out['crops'][1][1],
        bva.authors_inputs(
            dict(inputs=[view], data_samples=[data['data_samples'][1]]),
            'cpu')['inputs'][0])


def test_args_and_checkout_errors(tmp_path):
    args = bva.parse_args(['dupl', '--authors-code', str(tmp_path)])
    # DuPL after its warm-up and before the GMM; ToCo after its warm-up.
    assert (args.iter, args.batch_size, args.size) == (5000, 2, 448)
    assert bva.parse_args(['toco', '--authors-code', 'x']).iter == 2500
    with pytest.raises(SystemExit):
        bva.parse_args(['dupl', '--authors-code', 'x', '--energy'])
    with pytest.raises(SystemExit):  # the authors' energy loss is CUDA-only
        bva.parse_args(
            ['toco', '--authors-code', 'x', '--energy', '--device', 'cpu'])
    with pytest.raises(SystemExit, match='model/model_dupl.py'):
        bva.import_authors(str(tmp_path), 'dupl', False)


def test_build_train_step_trains():
    step, data = bts.build_train_step(
        osp.join(REPO_ROOT, 'configs/cam_baseline/cam_resnet_toy.py'),
        batch_size=2,
        size=32)
    assert len(data['inputs']) == 2 and data['inputs'][0].shape == (3, 32, 32)
    assert step.num_params > 0
    first = step(0)
    assert 'loss_cls' in first and torch.isfinite(first['loss_cls'])
    # The same batch again: the optimiser step lowered its loss.
    for _ in range(3):
        last = step(1)
    assert float(last['loss_cls']) < float(first['loss_cls'])


def test_train_step_benchmark_profiles_the_timed_steps(tmp_path, capsys):
    """--profile: the timed steps only (2 here, after a warm-up) in a
    pstats file, and both orderings printed."""
    import pstats
    out = str(tmp_path / 'step.prof')
    bts.main([
        osp.join(REPO_ROOT, 'configs/cam_baseline/cam_resnet_toy.py'),
        '--batch-size', '1', '--size', '32', '--threads', '1', '--warmup', '1',
        '--repeat', '2', '--profile', out, '--profile-top', '5'
    ])
    printed = capsys.readouterr().out
    assert 'median step time' in printed
    assert 'by cumulative time' in printed and 'by own time' in printed
    stats = pstats.Stats(out)
    calls = [
        value[1] for (file, _, name), value in stats.stats.items()
        if name == 'step' and file.endswith('benchmark_train_step.py')
    ]
    assert calls == [2]


@pytest.mark.parametrize('method, env', [('dupl', 'WSSS_AUTHORS_DUPL'),
                                         ('toco', 'WSSS_AUTHORS_TOCO')])
def test_side_by_side_run(method, env, capsys):
    path = os.environ.get(env)
    if not path:
        pytest.skip(f'{env} is not set (a checkout of the authors\' code)')
    # 112 px: ToCo's local crops are 96 px.
    bva.main([
        method, '--authors-code', path, '--size', '112', '--batch-size', '1',
        '--warmup', '0', '--repeat', '1', '--threads', '1', '--device', 'cpu'
    ])
    out = capsys.readouterr().out
    assert 'speed-up (authors / ours)' in out
    assert 'authors losses: cls_loss' in out
