#!/usr/bin/env bash
# Set up a virtual environment with the test extras and run lint + the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
"$VENV/bin/pip" install -q -e '.[test]'
"$VENV/bin/ruff" check agent tests bench
"$VENV/bin/python" -m pytest -q "$@"
