# Copyright (c) OpenMMLab. All rights reserved.
"""tools/analysis_tools/gpu_checks.sh: the parts' order, time limit, skip
and summary, on the CPU (its figures are for a GPU machine)."""
import os
import os.path as osp
import subprocess
import sys

from conftest import REPO_ROOT

SCRIPT = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'gpu_checks.sh')


def run_script(*args, timeout=240):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1')
    return subprocess.run(['bash', SCRIPT, *args],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def test_bad_arguments_stop_before_any_part(tmp_path):
    out = tmp_path / 'out'
    proc = run_script('run', '--out', str(out), '--parts', 'env,bogus')
    assert proc.returncode == 2
    assert 'unknown part: bogus' in proc.stderr
    assert not out.exists()
    proc = run_script('run', '--parts', 'env')
    assert proc.returncode == 2 and '--out is required' in proc.stderr
    proc = run_script('launch')
    assert proc.returncode == 2 and 'unknown command' in proc.stderr


def test_parts_time_limit_skip_and_summary(tmp_path):
    """env runs, crf is stopped at the part time limit and the next part
    still runs, dupl without the authors' checkout is skipped (rc 3); each
    part leaves its own output file and a summary line."""
    out = tmp_path / 'out'
    authors = tmp_path / 'no_authors'
    authors.mkdir()
    proc = run_script('run', '--out', str(out), '--quick', '--device', 'cpu',
                      '--parts', 'env,crf,dupl', '--part-timeout', '120',
                      '--part-timeout', 'crf=2', '--authors', str(authors))
    assert proc.returncode == 0, proc.stderr
    rows = (out / 'summary.txt').read_text().splitlines()[1:]
    status = {row.split()[0]: int(row.split()[1]) for row in rows}
    assert list(status) == ['env', 'crf', 'dupl']
    assert status['env'] == 0
    assert status['crf'] == 124  # stopped at its own limit, 2 s
    assert status['dupl'] == 3  # skipped: no checkout
    assert 'skipped' in (out / 'dupl.txt').read_text()
    env_txt = (out / 'env.txt').read_text()
    assert 'torch' in env_txt and 'CPU cores' in env_txt
    assert (out / 'crf.txt').exists()


def test_relative_paths_are_the_callers(tmp_path):
    """--out and --authors are read against the caller's directory (the
    script itself works from the repository root); an option without its
    value is refused before any part."""
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1')
    (tmp_path / 'mine').mkdir()
    proc = subprocess.run([
        'bash', SCRIPT, 'run', '--out', 'out', '--parts', 'dupl', '--quick',
        '--device', 'cpu', '--authors', 'mine'
    ],
                          cwd=tmp_path,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'out' / 'summary.txt').exists()
    assert not osp.exists(osp.join(REPO_ROOT, 'out'))
    # the caller's (empty) authors folder was looked in, not the repo's
    assert f'no {tmp_path}/mine/DuPL' in (tmp_path / 'out' /
                                          'dupl.txt').read_text()
    proc = run_script('run', '--out')
    assert proc.returncode == 2 and '--out needs a value' in proc.stderr
