# Copyright (c) OpenMMLab. All rights reserved.
"""The shell entry points: tools/quick_start.sh never deletes a folder it
did not make, and the launch scripts find the project's Python.

Every quick-start case stops before ``tools/setup_env.sh`` (a work dir that
is refused, a config that does not exist), so these tests take well under a
second each and set nothing up.
"""
import os
import os.path as osp
import shutil
import stat
import subprocess
import time

from conftest import REPO_ROOT

QUICK_START = osp.join(REPO_ROOT, 'tools', 'quick_start.sh')
MARKER = '.quick_start_work_dir'
MISSING_CONFIG = 'configs/no_such_config_for_the_test.py'


def _quick_start(*args, cwd=REPO_ROOT):
    start = time.perf_counter()
    proc = subprocess.run(['bash', QUICK_START, *args],
                          cwd=cwd,
                          capture_output=True,
                          text=True,
                          timeout=60)
    return proc, time.perf_counter() - start


def _assert_stopped_before_setup(proc, elapsed):
    out = proc.stdout + proc.stderr
    assert '[setup_env]' not in out and 'training' not in proc.stdout, out
    assert elapsed < 10, f'took {elapsed:.1f} s: it did more than the checks'


def test_foreign_work_dir_is_refused_before_anything(tmp_path):
    work_dir = tmp_path / 'results'
    work_dir.mkdir()
    (work_dir / 'thesis.tex').write_text('years of work')
    (work_dir / 'sub').mkdir()
    (work_dir / 'sub' / 'data.csv').write_text('1,2')

    proc, elapsed = _quick_start('--work-dir', str(work_dir))

    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'refusing to use --work-dir' in proc.stderr
    assert str(work_dir) in proc.stderr and MARKER in proc.stderr
    _assert_stopped_before_setup(proc, elapsed)
    # Nothing touched, nothing added.
    assert (work_dir / 'thesis.tex').read_text() == 'years of work'
    assert (work_dir / 'sub' / 'data.csv').read_text() == '1,2'
    assert sorted(os.listdir(work_dir)) == ['sub', 'thesis.tex']


def test_foreign_work_dir_relative_to_caller_is_refused(tmp_path):
    """A relative --work-dir is the caller's folder, not the repository's:
    the folder that is checked is the one that would be deleted."""
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'keep.txt').write_text('x')
    proc, elapsed = _quick_start('--work-dir', 'out', cwd=str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(tmp_path / 'out') in proc.stderr
    assert (tmp_path / 'out' / 'keep.txt').exists()
    _assert_stopped_before_setup(proc, elapsed)


def test_work_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / 'a_file'
    path.write_text('x')
    proc, elapsed = _quick_start('--work-dir', str(path))
    assert proc.returncode == 2
    assert 'not a folder' in proc.stderr
    assert path.read_text() == 'x'
    _assert_stopped_before_setup(proc, elapsed)


def test_marked_work_dir_is_accepted(tmp_path):
    """A work dir of an earlier quick start passes the check (the run then
    stops at the missing config, before any setup; nothing is deleted
    before the setup has succeeded)."""
    work_dir = tmp_path / 'qs'
    work_dir.mkdir()
    (work_dir / MARKER).write_text('')
    (work_dir / 'train.log').write_text('old run')

    proc, elapsed = _quick_start('--work-dir', str(work_dir), '--config',
                                 MISSING_CONFIG)

    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'refusing' not in proc.stderr
    assert MISSING_CONFIG in proc.stderr and 'no such file' in proc.stderr
    _assert_stopped_before_setup(proc, elapsed)
    assert (work_dir / 'train.log').read_text() == 'old run'


def test_empty_or_new_work_dir_is_accepted(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    new = tmp_path / 'new'
    for work_dir in (empty, new):
        proc, elapsed = _quick_start('--work-dir', str(work_dir), '--config',
                                     MISSING_CONFIG)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert 'refusing' not in proc.stderr
        assert 'no such file' in proc.stderr
        _assert_stopped_before_setup(proc, elapsed)
    assert not new.exists()  # nothing is made before the setup either


def test_missing_data_root_and_bad_arguments_stop_early(tmp_path):
    proc, elapsed = _quick_start('--work-dir', str(tmp_path / 'w'),
                                 '--data-root', str(tmp_path / 'nope'))
    assert proc.returncode == 2
    assert 'no such folder' in proc.stderr
    _assert_stopped_before_setup(proc, elapsed)
    proc, _ = _quick_start('--work-dir')
    assert proc.returncode == 2 and 'needs a value' in proc.stderr
    proc, _ = _quick_start('--bogus')
    assert proc.returncode == 2 and 'unknown argument' in proc.stderr


# ------------------------------------------------------ launch scripts --

FAKE = '#!/usr/bin/env bash\necho "{name} $*" >> "{log}"\n'


def _fake_exe(path, name, log):
    path.write_text(FAKE.format(name=name, log=log))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _fake_repo(tmp_path, with_venv):
    """A copy of the launch scripts in a repository whose .venv python (and
    the `python`/`srun` on PATH) only record how they were called."""
    repo = tmp_path / 'repo'
    (repo / 'tools').mkdir(parents=True)
    for name in ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
                 'slurm_test.sh', 'python_env.sh'):
        shutil.copy(osp.join(REPO_ROOT, 'tools', name), repo / 'tools')
    log = tmp_path / 'calls.log'
    if with_venv:
        (repo / '.venv' / 'bin').mkdir(parents=True)
        _fake_exe(repo / '.venv' / 'bin' / 'python', 'VENV_PYTHON', log)
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    _fake_exe(bin_dir / 'python', 'PATH_PYTHON', log)
    _fake_exe(bin_dir / 'srun', 'SRUN', log)
    return repo, bin_dir, log


def _launch(repo, bin_dir, script, args, **env):
    full_env = {
        k: v
        for k, v in os.environ.items() if k not in ('PYTHON', 'VIRTUAL_ENV')
    }
    full_env['PATH'] = f'{bin_dir}:/usr/bin:/bin'
    full_env.update(env)
    proc = subprocess.run(['bash', str(repo / 'tools' / script), *args],
                          env=full_env,
                          capture_output=True,
                          text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dist_scripts_use_the_project_venv(tmp_path):
    """Without an activated .venv, `python` from PATH has no torch: the
    scripts run the repository's .venv/bin/python."""
    repo, bin_dir, log = _fake_repo(tmp_path, with_venv=True)
    _launch(repo, bin_dir, 'dist_train.sh', ['cfg.py', '2', '--amp'])
    _launch(repo, bin_dir, 'dist_test.sh', ['cfg.py', 'ckpt.pth', '2'])
    _launch(repo, bin_dir, 'slurm_train.sh', ['part', 'job', 'cfg.py'])
    _launch(repo, bin_dir, 'slurm_test.sh', ['part', 'job', 'cfg.py', 'c'])
    calls = log.read_text().splitlines()
    assert len(calls) == 4, calls
    venv_python = str(repo / '.venv' / 'bin' / 'python')
    assert calls[0].startswith('VENV_PYTHON -m torch.distributed.run')
    assert calls[0].endswith('train.py cfg.py --launcher pytorch --amp')
    assert calls[1].startswith('VENV_PYTHON -m torch.distributed.run')
    assert 'test.py cfg.py ckpt.pth --launcher pytorch' in calls[1]
    for call in calls[2:]:  # srun starts the venv python on each node
        assert call.startswith('SRUN ') and f' {venv_python} -u ' in call
    assert 'PATH_PYTHON' not in log.read_text()


def test_dist_scripts_honour_python_then_fall_back_to_path(tmp_path):
    repo, bin_dir, log = _fake_repo(tmp_path, with_venv=True)
    other = tmp_path / 'other_python'
    _fake_exe(other, 'USER_PYTHON', log)
    _launch(repo, bin_dir, 'dist_train.sh', ['cfg.py', '2'], PYTHON=str(other))
    _launch(
        repo,
        bin_dir,
        'slurm_test.sh', ['p', 'j', 'cfg.py', 'c'],
        PYTHON=str(other))
    calls = log.read_text().splitlines()
    assert calls[0].startswith('USER_PYTHON -m torch.distributed.run')
    assert f' {other} -u ' in calls[1]

    repo, bin_dir, log = _fake_repo(tmp_path / 'novenv', with_venv=False)
    _launch(repo, bin_dir, 'dist_train.sh', ['cfg.py', '2'])
    assert log.read_text().startswith('PATH_PYTHON -m torch.distributed.run')
