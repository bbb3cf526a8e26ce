# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/benchmark_toy.py: steps, resume, table."""
import json
import os
import os.path as osp
import sys

import pytest

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
import benchmark_toy as bt  # noqa: E402

sys.path.pop(0)


def write_json(path, data):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f)


@pytest.fixture
def fake_steps(monkeypatch):
    """Replace the subprocess steps by writers of their outputs."""
    calls = []

    def fake_run(cmd, log):
        calls.append(cmd)
        if 'tools/train.py' in cmd:
            work = cmd[cmd.index('--work-dir') + 1]
            os.makedirs(work, exist_ok=True)
            open(osp.join(work, 'iter_3000.pth'), 'w').close()
        elif 'tools/test.py' in cmd:
            work = cmd[cmd.index('--work-dir') + 1]
            write_json(osp.join(work, 'metrics.json'), dict(mIoU=50.0))
        else:  # second_stage.sh CONFIG CKPT SECOND WORK_DIR
            write_json(
                osp.join(cmd[5], 'second_stage_test', 'metrics.json'),
                dict(mIoU=40.0))

    monkeypatch.setattr(bt, 'run', fake_run)

    def fake_config(config, data_root, cfg_options=None):
        seed = (cfg_options or {}).get('randomness.seed', 0)
        return dict(text=f'{config} seed {seed}', max_iters=3000, seed=seed)

    monkeypatch.setattr(bt, 'resolved_config', fake_config)
    monkeypatch.setattr(bt, 'machine', lambda: 'avx2-0123456789ab')
    return calls


def test_steps_run_once_and_resume(fake_steps, tmp_path):
    row = str(tmp_path / 'toy' / 'toco_toy')
    bt.do_method('configs/toco/toco_toy.py', '/data/toy', row, True)
    kinds = [
        'train' if 'tools/train.py' in c else
        ('second' if c[0] == 'bash' else c[c.index('--work-dir') + 1])
        for c in fake_steps
    ]
    assert kinds == [
        'train',
        osp.join(row, 'cam_train'),
        osp.join(row, 'test'),
        osp.join(row, 'test_crf'), 'second'
    ]
    assert '--pseudo-labels' in fake_steps[1] and '--crf' in fake_steps[3]
    assert fake_steps[4] == [
        'bash', 'tools/second_stage.sh', 'configs/toco/toco_toy.py',
        osp.join(row, 'train', 'iter_3000.pth'), bt.SECOND_STAGE,
        osp.join(row, 'second_stage'), '--data-root', '/data/toy', '--crf'
    ]
    # A second call finds every output and runs nothing.
    fake_steps.clear()
    bt.do_method('configs/toco/toco_toy.py', '/data/toy', row, True)
    assert fake_steps == []


def test_a_row_refuses_another_resolved_config(tmp_path, monkeypatch):
    monkeypatch.setattr(bt, 'machine', lambda: 'avx2-0123456789ab')
    row = str(tmp_path / 'row')
    bt.claim_row(row, 'config A', 0)
    bt.claim_row(row, 'config A', 0)  # the same: fine
    with pytest.raises(SystemExit, match='another resolved config'):
        bt.claim_row(row, 'config B', 0)
    assert open(osp.join(row, 'commit.txt')).read().strip()
    assert bt.row_file(row, 'seed.txt') == '0'
    assert bt.row_file(row, 'machine.txt') == 'avx2-0123456789ab'
    assert bt.row_file(str(tmp_path / 'old_row'), 'machine.txt') == '-'


def test_seeds_run_in_their_own_rows_and_are_summarised(fake_steps, tmp_path):
    base = str(tmp_path / 'work' / 'toy' / 'dupl_toy')
    for seed in (0, 1, 2):
        bt.do_method('configs/dupl/dupl_toy.py', '/data/toy', base, True, seed)
    trains = [c for c in fake_steps if 'tools/train.py' in c]
    seconds = [c for c in fake_steps if c[0] == 'bash']
    # The config's own seed (0) keeps the plain folder and its command.
    assert trains[0][trains[0].index('--work-dir') + 1] == osp.join(
        base, 'train')
    assert '--cfg-options' not in trains[0] + seconds[0]
    for seed, train, second in zip((1, 2), trains[1:], seconds[1:]):
        assert train[train.index('--work-dir') + 1] == osp.join(
            f'{base}-seed{seed}', 'train')
        assert train[-2:] == ['--cfg-options', f'randomness.seed={seed}']
        assert second[-2:] == ['--cfg-options', f'randomness.seed={seed}']
        assert bt.row_file(f'{base}-seed{seed}', 'seed.txt') == str(seed)
    assert bt.seed_rows(base) == [base, f'{base}-seed1', f'{base}-seed2']
    # Distinct val mIoUs per seed: 40, 45, 50 -> mean 45.0, sd 5.0.
    for value, row in zip((40., 45., 50.), bt.seed_rows(base)):
        write_json(osp.join(row, 'test', 'metrics.json'), dict(mIoU=value))
    args = bt.parse_args([
        '--data-root', '/data/toy', '--configs', 'configs/dupl/dupl_toy.py',
        '--work-dir',
        str(tmp_path / 'work')
    ])
    table = bt.table(args)
    assert ('| `dupl_toy` | toy | 1 | 50.0 | 45.0 | 50.0 | 40.0 |' in table)
    assert ('| `dupl_toy`, mean ± sd | toy | 3 seeds | 50.0 ± 0.0 | '
            '45.0 ± 5.0 | 50.0 ± 0.0 | 40.0 ± 0.0 | - | - | - | '
            'avx2-0123456789ab |') in table


def test_train_times_from_scalars(tmp_path):
    # Two sessions: iterations 50..100 at 2 s, then (resumed) 150 at 4 s.
    for run_dir, entries in (('20260101_000000', [(50, 2.), (100, 2.)]),
                             ('20260102_000000', [(150, 4.)])):
        path = tmp_path / run_dir / 'vis_data' / 'scalars.json'
        path.parent.mkdir(parents=True)
        path.write_text(''.join(
            json.dumps(dict(iter=i, time=t, loss=1.0)) + '\n'
            for i, t in entries) + json.dumps(dict(iter=150, mIoU=3)) + '\n')
    times = bt.train_times(str(tmp_path))
    assert times['step'] == 2.0
    assert times['wall'] == pytest.approx((50 * 2 + 50 * 2 + 50 * 4) / 60)


def test_table_and_doc_update(fake_steps, tmp_path):
    work = tmp_path / 'work'
    bt.do_method('configs/toco/toco_toy.py', '/x/toy2',
                 str(work / 'toy2' / 'toco_toy'), True)
    doc = tmp_path / 'doc.md'
    doc.write_text(f'intro\n{bt.BEGIN}\nold\n{bt.END}\nafter\n')
    assert bt.main([
        '--data-root',
        str(tmp_path), '--configs', 'configs/toco/toco_toy.py', '--work-dir',
        str(work), '--table-only', '--update-doc',
        str(doc)
    ]) == 0
    text = doc.read_text()
    assert text.startswith('intro\n') and text.endswith('after\n')
    assert 'old' not in text
    # The row of a domain named after the folder; another domain is empty.
    args = bt.parse_args([
        '--data-root', '/x/toy2', '--configs', 'configs/toco/toco_toy.py',
        '--work-dir',
        str(work)
    ])
    args.data_root = ['/x/toy2']
    table = bt.table(args)
    assert ('| `toco_toy` | toy2 | 0 | 50.0 | 50.0 | 50.0 | 40.0 |' in table)
    assert table.rstrip().endswith('| - | - | - | - | - |')  # no oracle run
    assert 'mean ± sd' not in table  # one seed
