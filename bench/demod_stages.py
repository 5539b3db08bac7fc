"""Benchmark: where the demodulator's CPU goes, stage by stage (the profile behind
bench/demod.py's CPU figure).

    python bench/demod_stages.py [--seconds 4] [--rate 2.4e6]

Runs the default Demodulator over a busy real capture (modes1_2400.uc8 at 2.4 MS/s,
modes1.bin at 2.0 MS/s, repeated to `--seconds`) and over receiver noise alone (what a
quiet site costs), in blocks of IqFileSource's size, and prints CPU milliseconds per IQ
second for each stage function. Each stage is timed with time.process_time around its
calls (cumulative: a stage's time includes what it calls); the overhead of the timing
itself is well under a per cent at these call counts. Also the starts the screen passes
and those stage 2 keeps, per IQ second.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the agent does (agent/__init__.py)
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from agent.demod import (  # noqa: E402
    Demodulator,
    coherent,
    decide,
    noise,
    preamble,
    repair,
    resolve,
    slicer,
    trellis,
)
from agent.demod import iq as iq_mod  # noqa: E402
from agent.demod.heap import keep_heap_headroom  # noqa: E402
from agent.sources.iq import BLOCK_SAMPLES  # noqa: E402
from bench import bursts  # noqa: E402
from bench.common import shared_data  # noqa: E402

CAPTURES = {2_400_000: "iq/modes1_2400.uc8", 2_000_000: "iq/modes1.bin"}
# (owner, attribute, label), in the order of the data flow.
STAGES: tuple[tuple[Any, str, str], ...] = (
    (iq_mod.CONVERTERS, "uc8", "magnitude (UC8 table)"),
    (iq_mod.IQ_CONVERTERS, "uc8", "complex samples (2.0 MS/s)"),
    (noise, "floor", "noise floor"),
    (preamble, "screen", "1. preamble.screen"),
    (preamble, "phase_scores", "2. preamble.phase_scores"),
    (slicer, "pair_margins", "4. slicer.pair_margins"),
    (trellis, "soft_bits", "4. trellis.soft_bits"),
    (coherent, "soft_bits", "4. coherent.soft_bits"),
    (coherent, "derotate", "4. coherent.derotate"),
    (decide.BitDecider, "decode", "4. decode (CRC, classes, repair)"),
    (repair, "find", "4.   of which repair.find"),
    (resolve.Resolver, "resolve", "5. overlaps, verifier, Frame objects"),
    (Demodulator, "_candidates", "stages 1-4 in all"),
)
# Stages called inside Demodulator._candidates, none inside another: what is left of
# its time is its own numpy work (gathers, masks, DF checks, cluster choice).
INSIDE = (
    "noise floor",
    "1. preamble.screen",
    "2. preamble.phase_scores",
    "4. slicer.pair_margins",
    "4. trellis.soft_bits",
    "4. coherent.soft_bits",
    "4. coherent.derotate",
    "4. decode (CRC, classes, repair)",
)


# What flows out of the first stages, counted per call: starts the screen passes, and
# those stage 2 keeps (the screen's bounds are judged by how few it passes for nothing).
FLOW: dict[str, tuple[str, Callable[[Any], int]]] = {
    "1. preamble.screen": ("starts screened", len),
    "2. preamble.phase_scores": ("starts kept by stage 2", lambda out: out[0].size),
}


def _timed(
    fn: Callable[..., Any], key: str, spent: dict[str, float], flow: dict[str, int]
) -> Callable[..., Any]:
    count = FLOW.get(key)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.process_time()
        try:
            out = fn(*args, **kwargs)
        finally:
            spent[key] += time.process_time() - t0
        if count is not None:
            flow[count[0]] += count[1](out)
        return out

    return wrapper


def profile(raw: bytes, rate: int) -> tuple[float, dict[str, float], int, dict[str, int]]:
    """Total CPU s, CPU s per stage label, frames, FLOW counts, for one pass over `raw`."""
    spent: dict[str, float] = defaultdict(float)
    flow: dict[str, int] = defaultdict(int)
    saved = []
    for owner, name, label in STAGES:
        fn = owner[name] if isinstance(owner, dict) else getattr(owner, name)
        saved.append((owner, name, fn))
        _put(owner, name, _timed(fn, label, spent, flow))
    try:
        demod = Demodulator(rate)
        step = 2 * BLOCK_SAMPLES
        t0 = time.process_time()
        frames = 0
        for i in range(0, len(raw), step):
            frames += len(demod.process_raw(memoryview(raw)[i : i + step]))
        frames += len(demod.flush())
        return time.process_time() - t0, spent, frames, flow
    finally:
        for owner, name, fn in saved:
            _put(owner, name, fn)


def _put(owner: Any, name: str, fn: Callable[..., Any]) -> None:
    if isinstance(owner, dict):  # a converter table the demodulator looks up per block
        owner[name] = fn
    else:
        setattr(owner, name, fn)


def report(title: str, raw: bytes, rate: int) -> None:
    iq_s = len(raw) / 2 / rate
    profile(raw[: 2 * BLOCK_SAMPLES], rate)  # warm-up: caches, tables, first faults
    total, spent, frames, flow = profile(raw, rate)
    print(f"== {title}: {iq_s:.2f} IQ s at {rate / 1e6:g} MS/s, {frames} frames ==")
    print(f"{'all (process_raw)':40} {1000 * total / iq_s:8.1f} ms per IQ s")
    for _, _, label in STAGES:
        if label in spent:
            print(f"{label:40} {1000 * spent[label] / iq_s:8.1f}")
    own = spent["stages 1-4 in all"] - sum(spent.get(k, 0.0) for k in INSIDE)
    print(f"{'stages 1-4: their own numpy work':40} {1000 * own / iq_s:8.1f}")
    for what, n in flow.items():
        print(f"{what:40} {n / iq_s:8.0f} per IQ s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="IQ seconds per stream")
    ap.add_argument("--rate", type=float, default=2.4e6, help="2.4e6 or 2.0e6")
    args = ap.parse_args(argv)
    keep_heap_headroom()  # as the agent's main() does: a process-wide setting
    rate = int(args.rate)
    if rate not in CAPTURES:
        ap.error("--rate must be 2.4e6 or 2.0e6")
    capture = shared_data(CAPTURES[rate]).read_bytes()
    reps = max(1, round(args.seconds * rate * 2 / len(capture)))
    report(f"busy capture ({CAPTURES[rate]} x {reps})", capture * reps, rate)
    noise = bursts.noise(np.random.default_rng(1), int(args.seconds * rate))
    report("receiver noise alone", noise, rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
