# Copyright (c) OpenMMLab. All rights reserved.
"""tools/run_tests.sh refuses a malformed TEST_WORKERS before any set-up."""
import os
import subprocess

import pytest

from conftest import REPO_ROOT


@pytest.mark.parametrize('value', ['abc', '-1', '2.5'])
def test_bad_worker_count_is_refused_before_setup(value):
    env = dict(os.environ, TEST_WORKERS=value)
    proc = subprocess.run(['bash', 'tools/run_tests.sh'],
                          cwd=REPO_ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert ('TEST_WORKERS must be a whole number, got '
            f"'{value}'") in proc.stderr
    # Refused before tools/setup_env.sh and pytest ran.
    assert '[setup_env]' not in proc.stdout + proc.stderr
    assert 'passed' not in proc.stdout
