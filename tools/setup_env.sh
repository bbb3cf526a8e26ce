#!/usr/bin/env bash
# Build `.venv/` at the repository root with the verified pins
# (requirements/cpu-lock.txt) and mmseg_wsss installed editable.
# Idempotent: when nothing it depends on changed, a second run takes seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.mmseg_wsss_setup_stamp"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

want="$(cat "$ROOT/requirements/"*.txt "$ROOT/setup.py" | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && "$VENV/bin/python" -c "import mmseg_wsss" >/dev/null 2>&1; then
  echo "[setup_env] $VENV is up to date"
  exit 0
fi

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup_env] creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
echo "[setup_env] installing pinned dependencies (first run: a few minutes)"
pip_install() {
  # pip's log goes to a file; it is shown only when pip fails.
  local log="$VENV/pip_install.log"
  if ! "$VENV/bin/python" -m pip install --progress-bar off "$@" >"$log" 2>&1; then
    grep -v "is ignored: it is neither" "$log" | tail -n 40 >&2
    echo "[setup_env] pip install $* failed (full log: $log)" >&2
    exit 1
  fi
}
pip_install -r "$ROOT/requirements/cpu-lock.txt"
echo "[setup_env] installing mmseg_wsss (editable)"
pip_install --no-deps --no-build-isolation -e "$ROOT"
"$VENV/bin/python" -c "import mmseg_wsss" \
  || { echo "[setup_env] mmseg_wsss does not import" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "[setup_env] done in $(( $(date +%s) - start )) s"
