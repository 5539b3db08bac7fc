"""Benchmark: our demodulator beside Debian's dump1090-mutability on the same IQ stream.

    python bench/demod.py [--seconds 10] [--file shared/data/iq/modes1_2400.uc8]

A real 2.4 MS/s UC8 capture is repeated to about `--seconds` of IQ and written once to a
temporary file. Our demodulator runs in this process (CPU from getrusage(RUSAGE_SELF)
around the demodulation only: reading, magnitude and frames, not interpreter start-up);
dump1090-mutability runs as a child reading the same bytes on stdin (`--ifile - --raw`,
CPU from RUSAGE_CHILDREN, its whole run). Prints frames by DF, CPU seconds per IQ
second, the ratio, and peak RSS for each. Plain text, one section per measurement, so
further measurements (e.g. an SNR sweep) are one more function and one more call.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.sources.iq import IqFileSource  # noqa: E402

RATE = 2.4e6
DEFAULT_FILE = Path(os.environ.get("ADSB_AGENT_SHARED", REPO.parent / "shared")) / (
    "data/iq/modes1_2400.uc8"
)
DUMP1090 = "dump1090-mutability"
_HEX = re.compile(rb"^\*([0-9a-fA-F]+);", re.MULTILINE)


@dataclass
class Result:
    """One decoder's run over the stream."""

    name: str
    cpu_s: float
    iq_s: float
    peak_rss_kib: int
    by_df: Counter[int] = field(default_factory=Counter)

    @property
    def frames(self) -> int:
        return sum(self.by_df.values())

    @property
    def cpu_per_iq_s(self) -> float:
        return self.cpu_s / self.iq_s


def make_stream(src: Path, seconds: float, out: Path) -> float:
    """Write `src` repeated to at least `seconds` of IQ into `out`; returns IQ seconds."""
    data = src.read_bytes()
    reps = max(1, round(seconds * RATE * 2 / len(data)))
    with out.open("wb") as fh:
        for _ in range(reps):
            fh.write(data)
    return reps * len(data) / 2 / RATE


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run_ours(stream: Path, iq_s: float) -> Result:
    """Our IqFileSource + Demodulator, in this process."""
    before = _cpu(resource.RUSAGE_SELF)
    src = IqFileSource(str(stream), rate=RATE, fmt="uc8", name="bench")
    by_df = Counter(f.df for f in src.frames(threading.Event()))
    cpu = _cpu(resource.RUSAGE_SELF) - before
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Result("adsb-agent", cpu, iq_s, rss, by_df)


def run_dump1090(stream: Path, iq_s: float) -> Result | None:
    """dump1090-mutability reading the stream on stdin; None when it is not installed."""
    exe = shutil.which(DUMP1090) or f"/usr/bin/{DUMP1090}"
    if not Path(exe).exists():
        return None
    # The child's peak RSS comes from GNU time when installed: getrusage(RUSAGE_CHILDREN)
    # would report this (large) Python process's size, which a forked child inherits.
    gnu_time = Path("/usr/bin/time")
    cmd = [exe, "--ifile", "-", "--raw"]
    if gnu_time.exists():
        cmd = [str(gnu_time), "-f", "maxrss_kib=%M", *cmd]
    before = _cpu(resource.RUSAGE_CHILDREN)
    with stream.open("rb") as fh:
        proc = subprocess.run(cmd, stdin=fh, capture_output=True, check=False)
    cpu = _cpu(resource.RUSAGE_CHILDREN) - before
    found = re.search(rb"maxrss_kib=(\d+)", proc.stderr)
    rss = int(found.group(1)) if found else -1
    out = proc.stdout
    by_df = Counter(int(h[:2], 16) >> 3 for h in _HEX.findall(out))
    return Result(DUMP1090, cpu, iq_s, rss, by_df)


def report_cpu(results: list[Result]) -> None:
    print("== frames and CPU ==")
    for r in results:
        dfs = " ".join(f"DF{df}={n}" for df, n in sorted(r.by_df.items()))
        print(f"{r.name}: {r.frames} frames ({dfs})")
        print(
            f"{r.name}: {r.cpu_s:.3f} CPU s for {r.iq_s:.2f} IQ s = "
            f"{r.cpu_per_iq_s:.4f} CPU s per IQ s; peak RSS "
            + (f"{r.peak_rss_kib / 1024:.1f} MiB" if r.peak_rss_kib >= 0 else "unknown")
        )
    if len(results) == 2 and results[1].cpu_per_iq_s > 0:
        ratio = results[0].cpu_per_iq_s / results[1].cpu_per_iq_s
        print(f"ratio {results[0].name} / {results[1].name}: {ratio:.2f}x CPU")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="IQ seconds to process")
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE, help="2.4 MS/s UC8 capture")
    args = ap.parse_args(argv)
    if not args.file.exists():
        print(f"bench: {args.file} not found (set ADSB_AGENT_SHARED)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.uc8"
        iq_s = make_stream(args.file, args.seconds, stream)
        print(f"stream: {args.file.name} repeated to {iq_s:.2f} s at {RATE / 1e6:.1f} MS/s")
        results = [run_ours(stream, iq_s)]
        theirs = run_dump1090(stream, iq_s)
        if theirs is None:
            print(f"{DUMP1090} not installed: apt-get install {DUMP1090}")
        else:
            results.append(theirs)
        report_cpu(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
