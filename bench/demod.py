"""Benchmark: our demodulator beside Debian's dump1090-mutability on the same IQ stream.

    python bench/demod.py [--seconds 10] [--file shared/data/iq/modes1_2400.uc8]
                          [--frames 1000] [--repeat 3] [--no-sweep] [--ticks-only]

A real 2.4 MS/s UC8 capture is repeated to about `--seconds` of IQ and written once to a
temporary file. Our demodulator runs in this process (CPU from getrusage(RUSAGE_SELF)
around the demodulation only: reading, magnitude and frames, not interpreter start-up);
dump1090-mutability runs as a child reading the same bytes on stdin (`--ifile - --raw`,
CPU from RUSAGE_CHILDREN, its whole run). Each runs `--repeat` times, in interleaved
rounds, and the least CPU counts: the machine is shared, and other load only ever adds
CPU time (cache and core contention), for both decoders alike. Prints frames by DF,
CPU seconds per IQ second, the ratio, and peak RSS for each, for the default settings
(3-bit repair), readsb's 1-bit repair and the trellis retry. Plain text, one section
per measurement.

The SNR sweep (bench/bursts.py: band-limited DF17 bursts, 150-350 us gaps, constant
noise floor) runs at 2.4 and 2.0 MS/s from 0 to 20 dB with `--frames` frames per level,
with 1-, 2- and 3-bit repair (at 2.4 MS/s also 3-bit with the trellis retry of weak
replies; the first section measures the CPU of each), and dump1090-mutability (--fix) on the same
2.4 MS/s streams as a calibration of the generator against a C demodulator. Any
emitted frame that was not sent is false; a noise-only stretch at each rate counts
those on their own.

The arrival ticks (Frame.ticks_12mhz, 12 MHz) of the same kind of bursts against their
true start (bench/bursts.py's true_ticks): the share of decoded bursts within 1 and 2
ticks per SNR level, ours at both rates and dump1090-mutability's `--mlat` at 2.4 MS/s
(its counter starts elsewhere: its median offset from the truth is taken off first and
printed). Runs with the sweep, or alone with --ticks-only.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os

# BLAS (used by the demodulator's small matrix products) must stay on one thread: the
# products are far too small to gain from threads, and idle BLAS threads spinning on a
# busy 2-core machine show up as CPU time. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from agent.demod import DemodOptions, Demodulator, repair  # noqa: E402
from agent.demod.heap import keep_heap_headroom  # noqa: E402
from agent.sources.iq import IqFileSource  # noqa: E402
from bench import bursts  # noqa: E402

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


DEFAULT_OPTIONS = DemodOptions()


def _label(opts: DemodOptions) -> str:
    return f"ours {opts.repair_bits}-bit" + ("+retry" if opts.retry_weak else "")


def run_ours(stream: Path, iq_s: float, opts: DemodOptions = DEFAULT_OPTIONS) -> Result:
    """Our IqFileSource + Demodulator, in this process."""
    before = _cpu(resource.RUSAGE_SELF)
    src = IqFileSource(str(stream), rate=RATE, fmt="uc8", name="bench", demod=opts)
    by_df = Counter(f.df for f in src.frames(threading.Event()))
    cpu = _cpu(resource.RUSAGE_SELF) - before
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Result(_label(opts), cpu, iq_s, rss, by_df)


# Configurations whose CPU is measured: the default, and the most sensitive ones.
CPU_CONFIGS = (DemodOptions(repair_bits=1), DemodOptions(), DemodOptions(retry_weak=True))


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


def _best(
    runs: list[Callable[[Path, float], Result | None]], stream: Path, iq_s: float, n: int
) -> list[Result | None]:
    """Each run's least-CPU result of `n`, the runs interleaved round by round so that
    a change in the machine's load affects them alike (None: not installed)."""
    best: list[Result | None] = [None] * len(runs)
    missing = [False] * len(runs)
    for _ in range(max(1, n)):
        for i, run in enumerate(runs):
            if missing[i]:
                continue
            r = run(stream, iq_s)
            if r is None:
                missing[i] = True
                continue
            b = best[i]
            if b is None or r.cpu_s < b.cpu_s:
                best[i] = r
    return best


def report_cpu(results: list[Result], reference: Result | None) -> None:
    print("== frames and CPU ==")
    for r in results:
        dfs = " ".join(f"DF{df}={n}" for df, n in sorted(r.by_df.items()))
        print(f"{r.name}: {r.frames} frames ({dfs})")
        print(
            f"{r.name}: {r.cpu_s:.3f} CPU s for {r.iq_s:.2f} IQ s = "
            f"{r.cpu_per_iq_s:.4f} CPU s per IQ s; peak RSS "
            + (f"{r.peak_rss_kib / 1024:.1f} MiB" if r.peak_rss_kib >= 0 else "unknown")
        )
    if reference is not None and reference.cpu_per_iq_s > 0:
        for r in results:
            if r is not reference:
                ratio = r.cpu_per_iq_s / reference.cpu_per_iq_s
                print(f"ratio {r.name} / {reference.name}: {ratio:.2f}x CPU")


SWEEP_DB = tuple(range(21))
SWEEP_RATES = (2_400_000, 2_000_000)
NOISE_SECONDS = 2.0  # noise-only stretch per rate for the false-frame count


@dataclass
class Column:
    """Recovered share per SNR level for one decoder configuration."""

    name: str
    recovered: dict[int, float] = field(default_factory=dict)
    false: int = 0
    sent: int = 0

    def threshold(self, share: float) -> str:
        """Lowest SNR (dB, interpolated between levels) at which `share` is reached."""
        levels = sorted(self.recovered)
        for lo, hi in itertools.pairwise(levels):
            a, b = self.recovered[lo], self.recovered[hi]
            if a < share <= b:
                return f"{lo + (share - a) / (b - a) * (hi - lo):.1f}"
        if levels and self.recovered[levels[0]] >= share:
            return f"<={levels[0]}"
        return "never"


def _ours(raw: bytes, rate: int, repair_bits: int, retry: bool) -> list[tuple[bytes, float]]:
    demod = Demodulator(rate, repair_bits=repair_bits, retry_weak=retry)
    out = []
    for i in range(0, len(raw), 2 * 262144):
        out += demod.process_raw(raw[i : i + 2 * 262144])
    out += demod.flush()
    return [(f.msg, f.rx_time * rate) for f in out]


def _dump1090(raw: bytes) -> list[tuple[bytes, float]] | None:
    exe = shutil.which(DUMP1090) or f"/usr/bin/{DUMP1090}"
    if not Path(exe).exists():
        return None
    proc = subprocess.run(
        [exe, "--ifile", "-", "--raw", "--fix"], input=raw, capture_output=True, check=False
    )
    return [(bytes.fromhex(h.decode()), -1.0) for h in _HEX.findall(proc.stdout)]


def _score(col: Column, db: int, got: list[tuple[bytes, float]], sent: list) -> None:
    when = {b.msg: b.start for b in sent}
    hit = {m for m, t in got if m in when and (t < 0 or abs(t - when[m]) < 3)}
    col.recovered[db] = len(hit) / len(sent)
    col.false += sum(1 for m, _ in got if m not in when)
    col.sent += len(sent)


def sweep(frames: int, seed: int = 1090) -> list[Column]:
    """Recovered share per SNR level at both rates, for each decoder configuration."""
    rng = np.random.default_rng(seed)
    cols: list[Column] = []
    for rate in SWEEP_RATES:
        tag = f"{rate / 1e6:.1f}"
        # (repair bits, trellis retry of weak replies): the retry only exists at 2.4.
        configs = [(1, False), (2, False), (3, False)]
        if rate == 2_400_000:
            configs += [(3, True)]
        mine = {c: Column(f"ours {tag} {c[0]}-bit" + ("+retry" if c[1] else "")) for c in configs}
        ref = Column(f"{DUMP1090} {tag} --fix") if rate == 2_400_000 else None
        clean = bursts.clean(rng, rate, frames)
        for db in SWEEP_DB:
            raw = bursts.at_snr(rng, clean, db)
            for (k, retry), col in mine.items():
                _score(col, db, _ours(raw, rate, k, retry), clean.bursts)
            if ref is not None:
                theirs = _dump1090(raw)
                if theirs is None:
                    ref = None
                else:
                    _score(ref, db, theirs, clean.bursts)
        noise = bursts.noise(rng, int(NOISE_SECONDS * rate))
        for (k, retry), col in mine.items():
            col.false += len(_ours(noise, rate, k, retry))
        cols += [*mine.values(), *([ref] if ref is not None else [])]
    return cols


TICK_DB = (4, 6, 8, 10, 12, 14, 17, 20)
_MLAT = re.compile(rb"^@([0-9a-fA-F]{12})([0-9a-fA-F]+);", re.MULTILINE)


def _our_ticks(raw: bytes, rate: int) -> list[tuple[bytes, float]]:
    demod = Demodulator(rate)
    out = []
    for i in range(0, len(raw), 2 * 262144):
        out += demod.process_raw(raw[i : i + 2 * 262144])
    out += demod.flush()
    return [(f.msg, float(f.ticks_12mhz or 0)) for f in out]


def _mutability_ticks(raw: bytes) -> list[tuple[bytes, float]] | None:
    exe = shutil.which(DUMP1090) or f"/usr/bin/{DUMP1090}"
    if not Path(exe).exists():
        return None
    cmd = [exe, "--ifile", "-", "--raw", "--mlat", "--fix"]
    out = subprocess.run(cmd, input=raw, capture_output=True, check=False).stdout
    return [(bytes.fromhex(m.decode()), float(int(t, 16))) for t, m in _MLAT.findall(out)]


def tick_accuracy(frames: int, seed: int = 1200) -> list[str]:
    """Lines of the tick table: per dB, the share within 1 and 2 ticks of the truth."""
    rng = np.random.default_rng(seed)
    errors: dict[str, dict[int, np.ndarray]] = {}
    for rate in SWEEP_RATES:
        clean = bursts.clean(rng, rate, frames)
        truth = {b.msg: bursts.true_ticks(b, rate) for b in clean.bursts}
        for db in TICK_DB:
            raw = bursts.at_snr(rng, clean, db)
            runs = {f"ours {rate / 1e6:.1f}": _our_ticks(raw, rate)}
            if rate == 2_400_000:
                theirs = _mutability_ticks(raw)
                if theirs is not None:
                    runs[f"{DUMP1090} 2.4"] = theirs
            for name, got in runs.items():
                err = np.array([t - truth[m] for m, t in got if m in truth])
                errors.setdefault(name, {})[db] = err
    # dump1090's counter starts elsewhere: its median offset over all levels comes off.
    offsets = {
        name: float(np.median(np.concatenate(list(per_db.values()))))
        for name, per_db in errors.items()
        if name.startswith(DUMP1090)
    }
    cols = {
        name: {
            db: (
                float(np.mean(np.abs(e - offsets.get(name, 0.0)) <= 1)) if e.size else 0.0,
                float(np.mean(np.abs(e - offsets.get(name, 0.0)) <= 2)) if e.size else 0.0,
                e.size,
            )
            for db, e in per_db.items()
        }
        for name, per_db in errors.items()
    }
    names = list(cols)
    lines = [
        f"== arrival ticks (12 MHz): {frames} band-limited DF17 bursts per level, "
        "% of decoded bursts within 1 / 2 ticks of the truth =="
    ]
    lines += [f"{name}: offset {off:+.1f} ticks taken off" for name, off in offsets.items()]
    lines.append("SNR dB " + "".join(f"{n:>30}" for n in names))
    for db in TICK_DB:
        row = ""
        for n in names:
            w1, w2, k = cols[n].get(db, (0.0, 0.0, 0))
            row += f"{f'{100 * w1:.1f} / {100 * w2:.2f} (n={k})':>30}"
        lines.append(f"{db:>6} {row}")
    return lines


def report_sweep(cols: list[Column], frames: int) -> None:
    print(f"== SNR sweep: {frames} band-limited DF17 bursts per level, % recovered ==")
    print(
        f"(noise {bursts.NOISE_SIGMA} ADC units per I/Q component, low-pass cut-off "
        f"{bursts.CUTOFF} x rate, gaps 150-350 us; + {NOISE_SECONDS:.0f} s noise-only "
        "per rate for false frames)"
    )
    for i, c in enumerate(cols):
        print(f"[{i + 1}] {c.name}")
    w = 8
    print("SNR dB " + "".join(f"{f'[{i + 1}]':>{w}}" for i in range(len(cols))))
    for db in SWEEP_DB:
        row = "".join(f"{100 * c.recovered.get(db, 0):>{w}.1f}" for c in cols)
        print(f"{db:>6} {row}")
    for share in (0.5, 0.9, 0.99):
        print(f"{int(share * 100):>5}% " + "".join(f"{c.threshold(share):>{w}}" for c in cols))
    print("false  " + "".join(f"{c.false:>{w}}" for c in cols))
    print("sent   " + "".join(f"{c.sent:>{w}}" for c in cols))
    odds = ", ".join(f"{n}-bit {repair.false_match_odds(n):.1e}" for n in (1, 2, 3))
    print(f"chance a noise candidate matches a repair pattern (agent/demod/repair.py): {odds}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="IQ seconds to process")
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE, help="2.4 MS/s UC8 capture")
    ap.add_argument("--frames", type=int, default=1000, help="bursts per SNR level")
    ap.add_argument("--repeat", type=int, default=3, help="runs per decoder; least CPU counts")
    ap.add_argument("--no-sweep", action="store_true", help="skip the SNR sweep")
    ap.add_argument("--ticks-only", action="store_true", help="only the arrival-tick table")
    args = ap.parse_args(argv)
    keep_heap_headroom()  # as the agent's main() does: a process-wide setting
    if args.ticks_only:
        print("\n".join(tick_accuracy(args.frames)))
        return 0
    if not args.file.exists():
        print(f"bench: {args.file} not found (set ADSB_AGENT_SHARED)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.uc8"
        iq_s = make_stream(args.file, args.seconds, stream)
        print(f"stream: {args.file.name} repeated to {iq_s:.2f} s at {RATE / 1e6:.1f} MS/s")
        runs = [functools.partial(run_ours, opts=o) for o in CPU_CONFIGS]
        *ours, theirs = _best([*runs, run_dump1090], stream, iq_s, args.repeat)
        results = [r for r in ours if r is not None]
        if theirs is None:
            print(f"{DUMP1090} not installed: apt-get install {DUMP1090}")
        else:
            results.append(theirs)
        print(f"(least CPU of {args.repeat} runs each)")
        report_cpu(results, theirs)
    if not args.no_sweep:
        report_sweep(sweep(args.frames), args.frames)
        print("\n".join(tick_accuracy(args.frames)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
