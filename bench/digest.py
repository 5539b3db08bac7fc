"""Digests of what the agent outputs, to show a change kept behaviour.

Runs `adsb-agent demod`, `replay` (GA filter on and off) and `demo` in this process on
the shared recordings and prints, per run, the number of output lines, an MD5 of them
and the counters the command logged. Run it before and after a change that should
not alter behaviour and compare the two printouts (`diff`).

The wall clock is pinned (time.time returns FIXED_NOW) because replays without a start
time stamp frames from it; every other input is a file, so two runs print the same.

    python bench/digest.py [--shared ../shared] > digest.txt
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import logging
import os
import sys
import time
from pathlib import Path

# 2026-03-01 12:00:00 UTC: a fixed "now" for replays that take the wall clock.
FIXED_NOW = 1_772_366_400.0


def _pin_clock() -> None:
    time.time = lambda: FIXED_NOW  # type: ignore[assignment]


def _runs(data: Path) -> list[tuple[str, list[str]]]:
    iq, beast = data / "iq", data / "beast"
    runs: list[tuple[str, list[str]]] = []
    for name, rate in (
        ("modes1_2400.uc8", "2.4e6"),
        ("modes1.bin", "2.0e6"),
        ("phwl_x-1.uc8", "2.0e6"),
    ):
        runs.append((f"demod {name}", ["demod", "--rate", rate, str(iq / name)]))
    # Receiver positions near each recording's traffic (local CPR decoding needs one).
    for fmt, path, rate, site in (
        ("uc8", iq / "modes1_2400.uc8", "2.4e6", ("52.0", "4.5")),
        ("uc8", iq / "modes1.bin", "2.0e6", ("52.0", "4.5")),
        ("beast", beast / "traffic_sample_dump1090.bin", "2.4e6", ("43.6", "1.4")),
    ):
        for extra in ([], ["--all"]):
            label = f"replay {path.name}{' --all' if extra else ''}"
            where = ["--site-lat", site[0], "--site-lon", site[1]]
            runs.append(
                (label, ["replay", "--format", fmt, "--rate", rate, *where, *extra, str(path)])
            )
    runs.append(("demo", ["demo"]))
    runs.append(("demo --all", ["demo", "--all"]))
    return runs


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "=" in msg and ":" in msg:  # the "<what>: k=v k=v" counter lines
            self.lines.append(msg)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.environ.get("ADSB_AGENT_SHARED", "../shared"))
    args = ap.parse_args()
    _pin_clock()
    from agent.cli import main as cli_main

    data = Path(args.shared) / "data"
    root = logging.getLogger()
    for label, argv in _runs(data):
        out = io.StringIO()
        cap = _Capture()
        root.addHandler(cap)  # main() replaces only its own handler, not this one
        try:
            with contextlib.redirect_stdout(out):
                rc = cli_main(argv)
        finally:
            root.removeHandler(cap)
        text = out.getvalue()
        md5 = hashlib.md5(text.encode()).hexdigest()
        print(f"{label}: rc={rc} lines={len(text.splitlines())} md5={md5}")
        for line in cap.lines:
            print(f"    {line}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
