"""Capture what systemd-python's JournalHandler sends, without a running journald.

libsystemd's sd_journal_sendv() always writes to the datagram socket
/run/systemd/journal/socket. Run as root inside a private mount namespace with a
fresh tmpfs on /run (`unshare -m`, see tests/test_logs.py), this script binds that
path itself, so the real handler's real datagrams arrive here and the host's /run is
never touched. It logs through the agent's own setup (and a real Pipeline's event
line), then prints every datagram it received, parsed, as one JSON list.

What this does not capture: the trusted fields journald itself adds on receipt
(_PID, _SYSTEMD_UNIT, ...), and journald's own filtering of invalid field names.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import sys
from pathlib import Path

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")


def parse_native(data: bytes) -> dict[str, str]:
    """journald's native protocol: `KEY=value\\n`, or `KEY\\n<le64 size><bytes>\\n`."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            i = nl + 1
        else:
            key = line
            (size,) = struct.unpack_from("<Q", data, nl + 1)
            start = nl + 9
            value = data[start : start + size]
            i = start + size + 1
        fields[key.decode()] = value.decode("utf-8", "replace")
    return fields


def main() -> int:
    if Path("/run/systemd/journal").exists() and JOURNAL_SOCKET.exists():
        print("refusing: a journal socket exists here (not in a private /run?)", file=sys.stderr)
        return 2
    JOURNAL_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(JOURNAL_SOCKET))
    sock.settimeout(1.0)

    os.environ["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef"
    from agent.config import build_config
    from agent.frame import Frame
    from agent.logs import fields, set_site, setup_logging
    from agent.pipeline import Pipeline

    handler = setup_logging()
    set_site("strip-01")
    log = logging.getLogger("agent.test")
    log.info("handler %s", type(handler).__name__)
    # A real pipeline logs its events (track_start ...) with ADSB_EVENT / ADSB_ICAO.
    pipeline = Pipeline(
        build_config({"site": {"name": "strip-01"}, "filter": {"enabled": False}}), []
    )
    pair = ("8D40621D58C382D690C8AC2863A7", "8D40621D58C386435CC412692AD6")
    for i in range(6):
        pipeline.handle(Frame(bytes.fromhex(pair[i % 2]), 1_767_225_600.0 + 0.5 * i))
    log.warning("emergency squawk 7700", extra=fields(icao="E4A1B2", event="emergency_squawk"))
    for _ in range(5):
        log.error("MQTT broker refused the connection: Not authorized")
    log.debug("per-frame detail that must not be sent at INFO level")

    got = []
    while True:
        try:
            got.append(parse_native(sock.recv(1 << 20)))
        except TimeoutError:
            break
    print(json.dumps(got))
    return 0


if __name__ == "__main__":
    sys.exit(main())
