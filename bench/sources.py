"""Benchmark: what the RTL-SDR input costs outside the demodulator, and what it drops.

    python bench/sources.py [--seconds 10] [--speed 4] [--slow-seconds 3]

Runs the real pyrtlsdr over the fake librtlsdr the tests build (tests/fake_rtlsdr.py,
gcc), serving shared/data/iq/modes1_2400.uc8 in a loop at 2.4 MS/s, paced `--speed`
times faster than real time (CPU per IQ second does not depend on the pace).

1. transport: reader callback, copy out of librtlsdr's buffer, bounded queue, consumer
   loop and time anchoring; magnitude and demodulation stubbed out.
2. transport + magnitude: the same plus the UC8 -> magnitude table lookup.
3. full: the real demodulator too, for scale.
4. slow consumer: real time, a consumer that needs twice the IQ duration per buffer;
   buffers delivered, dropped (counted by the source), and the share dropped.

CPU is getrusage(RUSAGE_SELF) around each run: every thread of this process, including
the fake library's fill/memcpy, which stands in for libusb's own work. Plain text out,
with peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the agent does (agent/__init__.py)

from agent.demod.heap import keep_heap_headroom  # noqa: E402
from agent.demod.iq import uc8_to_mag  # noqa: E402
from bench.common import peak_rss_mib, shared_data  # noqa: E402
from tests import fake_rtlsdr  # noqa: E402

RATE = 2.4e6


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(
    dongle: fake_rtlsdr.FakeDongle,
    iq_seconds: float,
    speed: float,
    *,
    magnitude: bool,
    demod: bool,
    consumer_factor: float = 0.0,
) -> tuple[float, dict[str, int]]:
    """CPU seconds per IQ second for one configuration, and the source's counters."""
    from agent.sources.rtlsdr import RtlSdrSource
    from agent.sources.tuner import TunerOptions

    dongle.set_speed(speed)
    src = RtlSdrSource(None, TunerOptions(rate=RATE, gain=49.6))
    if not demod:

        def process_raw(raw: memoryview, fmt: str = "uc8") -> list[object]:
            if magnitude:
                uc8_to_mag(raw)
            if consumer_factor:
                time.sleep(consumer_factor * (len(raw) // 2) / RATE)
            return []

        src.live.demod.process_raw = process_raw  # type: ignore[method-assign]
    stop = threading.Event()
    target = int(iq_seconds * RATE)

    def consume() -> None:
        for _ in src.frames(stop):
            pass

    thread = threading.Thread(target=consume, name="consumer")
    before = _cpu()
    thread.start()
    while src.counts["samples"] + src.counts["samples_dropped"] < target:
        time.sleep(0.01)
    stop.set()
    thread.join()
    cpu = _cpu() - before
    delivered = (src.counts["samples"] + src.counts["samples_dropped"]) / RATE
    return cpu / delivered, dict(src.counts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="IQ seconds per CPU run")
    ap.add_argument("--speed", type=float, default=4.0, help="pace, x real time")
    ap.add_argument("--slow-seconds", type=float, default=3.0, help="IQ s, slow consumer")
    args = ap.parse_args(argv)
    keep_heap_headroom()  # as the agent's main() does: a process-wide setting

    recording = shared_data("iq/modes1_2400.uc8")
    build_dir = Path(tempfile.mkdtemp(prefix="adsb-bench-fake-"))
    try:
        return _measure(args, recording, fake_rtlsdr.build(build_dir))
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)


def _measure(args: argparse.Namespace, recording: Path, lib: Path) -> int:
    os.environ["ADSB_AGENT_LIBRTLSDR"] = str(lib)
    dongle = fake_rtlsdr.FakeDongle(lib)
    dongle.configure(recording, speed=args.speed, loop=True)

    print(f"== RTL-SDR input through pyrtlsdr + fake librtlsdr, {RATE / 1e6:g} MS/s ==")
    print(f"library {lib}; recording {recording.name} looped; pace {args.speed:g}x real time")
    for label, mag, dem in (
        ("transport (read, copy, queue)", False, False),
        ("transport + magnitude", True, False),
        ("full (with demodulator)", True, True),
    ):
        per_s, counts = run(dongle, args.seconds, args.speed, magnitude=mag, demod=dem)
        print(
            f"{label}: {per_s:.4f} CPU s per IQ s over {args.seconds:g} IQ s "
            f"({counts['buffers']} buffers, {counts.get('buffers_dropped', 0)} dropped)"
        )

    print("== slow consumer (needs 2x the IQ duration per buffer), real time ==")
    _, counts = run(
        dongle, args.slow_seconds, 1.0, magnitude=True, demod=False, consumer_factor=2.0
    )
    delivered, dropped = counts["buffers"], counts.get("buffers_dropped", 0)
    print(
        f"buffers delivered {delivered}, dropped {dropped} ({100 * dropped / delivered:.0f} %), "
        f"samples dropped {counts.get('samples_dropped', 0)}; queue holds 32 buffers (1.7 s)"
    )
    print(f"peak RSS {peak_rss_mib():.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
