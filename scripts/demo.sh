#!/usr/bin/env bash
# Set up a virtual environment and run the built-in scenario (no dongle, no broker).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q -e .
exec "$VENV/bin/adsb-agent" demo "$@"
