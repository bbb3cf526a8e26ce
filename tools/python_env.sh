# Sourced by the launch scripts: sets ROOT (the repository) and PYTHON.
# $PYTHON if set, else the project's .venv (tools/setup_env.sh), else
# `python` (or `python3`) from PATH: a bare `python` without the activated
# .venv has no torch ("No module named 'torch'").
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then
    PYTHON="$ROOT/.venv/bin/python"
  elif command -v python >/dev/null 2>&1; then
    PYTHON=python
  else
    PYTHON=python3  # images that ship only python3 (e.g. PyTorch's)
  fi
fi
