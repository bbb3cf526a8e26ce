# Sourced by the launch scripts: sets ROOT (the repository) and PYTHON.
# $PYTHON if set, else the project's .venv (tools/setup_env.sh), else
# `python` from PATH: a bare `python` without the activated .venv has no
# torch ("No module named 'torch'").
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then
    PYTHON="$ROOT/.venv/bin/python"
  else
    PYTHON=python
  fi
fi
