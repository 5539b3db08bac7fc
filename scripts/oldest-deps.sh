#!/usr/bin/env bash
# Install the oldest version of every dependency pyproject.toml declares (each `>=`
# bound, pinned) in a fresh virtual environment, then run `adsb-agent demo` and the
# tests that exercise those dependencies. A Pi's venv sees Debian's packages (numpy
# 1.24, pyserial 3.5 on bookworm), so a lower bound is a promise: this keeps it.
#
#   scripts/oldest-deps.sh              about 2 minutes; needs the package index
#   scripts/oldest-deps.sh -k decode    extra pytest arguments
#
# Environment: VENV (default $TMPDIR/adsb-agent-oldest-deps, recreated each run),
# PYTHON (python3; the oldest Python requires-python allows is the honest choice).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-${TMPDIR:-/tmp}/adsb-agent-oldest-deps}"
PY="${PYTHON:-python3}"
# Tests that exercise the dependencies: numpy (sim, demod), pyModeS (decode, pipeline),
# pyserial (serial), paho-mqtt (publish, against a real mosquitto), airportsdata
# (intel), and all of them at once (end_to_end).
TESTS=(tests/test_sim.py tests/test_demod.py tests/test_decode.py tests/test_pipeline.py
    tests/test_config.py tests/test_serial.py tests/test_publish.py tests/test_intel.py
    tests/test_end_to_end.py)

mapfile -t PINS < <("$PY" - <<'EOF'
import re
import tomllib

with open("pyproject.toml", "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
for dep in deps:
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([^,;\s]+).*", dep)
    if m is None:
        raise SystemExit(f"oldest-deps: no >= lower bound in {dep!r}")
    print(f"{m[1]}=={m[2]}")
EOF
)
echo "oldest-deps: ${PINS[*]}"

rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}" pytest jsonschema
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e .
# The pins must satisfy every declared requirement (and each other's).
"$VENV/bin/pip" check
"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version

for dist in ("numpy", "pyModeS", "paho-mqtt", "pyserial", "airportsdata"):
    print(f"oldest-deps: {dist} {version(dist)}")
EOF

"$VENV/bin/adsb-agent" demo >"$VENV/demo.out" 2>"$VENV/demo.err" || {
    cat "$VENV/demo.err" >&2
    exit 1
}
tail -n 1 "$VENV/demo.err"
grep -q '"type":"event"' "$VENV/demo.out" || { echo "oldest-deps: demo sent no events" >&2; exit 1; }
"$VENV/bin/python" -m pytest -q "${TESTS[@]}" "$@"
echo "oldest-deps: OK"
