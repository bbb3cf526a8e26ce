#!/usr/bin/env bash
# Set up .venv (idempotent) and run the test suite. Extra arguments go to
# pytest, e.g. `bash tools/run_tests.sh tests/test_models -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
START=$(date +%s)
set +e
# The slowest tests in the log: the suite is kept under 15 min on 2 cores.
"$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider --durations=20 "${@:-tests}"
rc=$?
set -e
echo "[run_tests] test suite wall time: $(( $(date +%s) - START )) s"
exit $rc
