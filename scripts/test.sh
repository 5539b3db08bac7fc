#!/usr/bin/env bash
# Set up a virtual environment with the test extras and run lint + the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
EXTRAS="test"
# systemd-python (journal fields, tests/test_logs.py) builds only where libsystemd-dev is.
if pkg-config --exists libsystemd 2>/dev/null; then EXTRAS=test,journal; fi
"$VENV/bin/pip" install -q -e ".[$EXTRAS]"
"$VENV/bin/ruff" check agent tests bench
"$VENV/bin/python" -m pytest -q "$@"
