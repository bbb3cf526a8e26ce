#!/usr/bin/env bash
# Set up .venv (idempotent) and run the test suite. Extra arguments go to
# pytest, e.g. `bash tools/run_tests.sh tests/test_models -x`.
#
# The tests run in parallel (pytest-xdist), one process per core up to 4,
# each with one intra-op thread: most tests are small-tensor and start-up
# bound, so 2 processes on 2 cores take about 0.6x the serial wall time.
# TEST_WORKERS=N sets the number of processes (0: serial, in this process;
# empty or unset: the default).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cores=$(nproc 2>/dev/null || echo 1)
workers="${TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}"
if ! [[ "$workers" =~ ^[0-9]+$ ]]; then
  echo "[run_tests] TEST_WORKERS must be a whole number, got '$workers'" >&2
  exit 2
fi
bash tools/setup_env.sh
if [ "$workers" -gt 0 ]; then
  # One thread per process: N processes x N threads on N cores stall
  # small-tensor ops. An explicit OMP_NUM_THREADS is kept.
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
fi
echo "[run_tests] $workers test process(es), OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"
START=$(date +%s)
set +e
# The slowest tests in the log: the suite is kept under 15 min on 2 cores.
"$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider -n "$workers" \
  --durations=20 "${@:-tests}"
rc=$?
set -e
echo "[run_tests] test suite wall time: $(( $(date +%s) - START )) s"
exit $rc
