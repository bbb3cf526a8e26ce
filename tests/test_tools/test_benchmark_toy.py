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
    monkeypatch.setattr(bt, 'resolved_config',
                        lambda c, d: dict(text=c, max_iters=3000))
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


def test_a_row_refuses_another_resolved_config(tmp_path):
    row = str(tmp_path / 'row')
    bt.claim_row(row, 'config A')
    bt.claim_row(row, 'config A')  # the same: fine
    with pytest.raises(SystemExit, match='another resolved config'):
        bt.claim_row(row, 'config B')
    assert open(osp.join(row, 'commit.txt')).read().strip()


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
    assert '| `toco_toy` | toy2 | 50.0 | 50.0 | 50.0 | 40.0 |' in table
