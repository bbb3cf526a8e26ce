#!/usr/bin/env bash
# Set up .venv (idempotent) and run the test suite. Extra arguments go to
# pytest, e.g. `bash tools/run_tests.sh tests/test_models -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
START=$(date +%s)
set +e
"$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider "${@:-tests}"
rc=$?
set -e
echo "[run_tests] test suite wall time: $(( $(date +%s) - START )) s"
exit $rc
