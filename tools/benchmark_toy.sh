#!/usr/bin/env bash
# One toy benchmark: train, test (+ CRF) and second-stage every method's toy
# config on one or more toy domains, and write one Markdown table.
#
# Usage: tools/benchmark_toy.sh --data-root data/toy [--data-root data/toy2]
#            [--configs CFG ...] [--work-dir work_dirs/benchmark_toy]
#            [--out TABLE.md] [--update-doc docs/benchmark_toy.md]
#            [--table-only] [--no-second-stage] [--seeds 0 1 2]
# Hours on 2 CPU cores: every step is skipped when its output exists, so run
# the same command again to go on (see tools/analysis_tools/benchmark_toy.py).
set -euo pipefail
source "$(dirname "$0")/python_env.sh"  # ROOT, PYTHON
export PYTHON
exec "$PYTHON" "$ROOT/tools/analysis_tools/benchmark_toy.py" "$@"
