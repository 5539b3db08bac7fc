"""Finding where replies may start: a phase-exact screen over every sample, then checks.

Stage 1 (`screen`) runs over the whole buffer with shifted-array operations only. For
every sub-sample phase it integrates the four preamble pulses exactly (the half-bit
energy of a pulse starting at fractional offset f is one of a few "basis" arrays, so
each phase costs three additions), and compares them with the samples that lie in the
preamble's two quiet gaps whatever the phase. Pulse-position data can never be quiet
for more than two half-bits, so the same test also rejects positions inside a reply.

Stage 2 (`score`) looks only at the survivors: it integrates all 16 preamble half-bits
of that phase and measures the pulses against the quiet half-bits of the same preamble,
i.e. against the local noise floor, so a weak reply in a quiet stretch and a strong one
beside interference are held to the same signal-to-noise standard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from agent.demod.timing import PULSE_HALF_BITS, QUIET_HALF_BITS, Timing

# Stage 1: second-weakest pulse amplitude over the louder quiet gap's mean amplitude.
# Loose on purpose (a reply at about 6 dB SNR must pass); stage 2 and the CRC decide.
SCREEN_SNR = 2.2
# Stage 1: second-weakest pulse amplitude over the noise floor (Demodulator._floor).
FLOOR_SNR = 3.0
# Stage 2: second-weakest pulse energy over the mean of all 12 quiet half-bits.
MIN_PREAMBLE_SNR = 2.2
# Stage 2: no half-bit of the long quiet gaps may reach this fraction of the mean pulse.
MAX_QUIET_FRACTION = 1.0
# Samples screened per strip (fits the temporaries in L2 cache).
STRIP = 16384
# Quiet gaps of the preamble (half-bits 3-6 and 10-15) as [start, end) in half-bits.
_QUIET_GAPS = ((3, 7), (10, 16))


@dataclass(frozen=True)
class ScreenPlan:
    """Which shifted arrays stage 1 adds, derived once per rate from exact timing.

    Attributes:
        basis: per basis array, its (weight on m[j], weight on m[j+1]).
        pulses: per phase, the (basis index, sample shift) of each of the 4 pulses.
        quiet: per quiet gap, the sample offsets lying inside it for every phase.
        reach: samples needed after a start sample.
    """

    basis: tuple[tuple[float, float], ...]
    pulses: tuple[tuple[tuple[int, int], ...], ...]
    quiet: tuple[tuple[int, ...], ...]
    reach: int

    @classmethod
    def for_timing(cls, timing: Timing) -> ScreenPlan:
        h = timing.half_bit
        basis: list[tuple[float, float]] = []
        pulses = []
        for phi in timing.phases:
            row = []
            for n in PULSE_HALF_BITS:
                start = phi + n * h
                j = math.floor(start)
                f = start - j
                # Overlap of [start, start+h) with samples j and j+1 (h <= 1.2, f < 1).
                w0 = min(Fraction(1) - f, h)
                w1 = h - w0
                key = (float(w0), float(w1))
                if key not in basis:
                    basis.append(key)
                row.append((basis.index(key), j))
            pulses.append(tuple(row))
        lo_phase, hi_phase = min(timing.phases), max(timing.phases)
        quiet = []
        for a, b in _QUIET_GAPS:
            first = math.ceil(hi_phase + a * h)
            last = math.floor(lo_phase + b * h)  # exclusive
            quiet.append(tuple(range(first, last)))
        reach = max(quiet[-1][-1] + 1, max(j for row in pulses for _, j in row) + 2)
        return cls(tuple(basis), tuple(pulses), tuple(quiet), reach)


def _second_lowest(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Element-wise second smallest of four arrays (a 4-input sorting-network fragment)."""
    lo1, hi1 = np.minimum(a, b), np.maximum(a, b)
    lo2, hi2 = np.minimum(c, d), np.maximum(c, d)
    np.maximum(lo1, lo2, out=lo1)
    np.minimum(hi1, hi2, out=hi1)
    return np.minimum(lo1, hi1, out=lo1)


def screen(
    mag: np.ndarray, floor: np.ndarray, plan: ScreenPlan, timing: Timing, limit: int
) -> np.ndarray:
    """(start sample, phase index) pairs in [0, limit) that look like a preamble.

    The buffer is screened in strips of STRIP samples so that the dozens of temporary
    arrays stay in the CPU cache: on whole 2.4 MS/s buffers numpy spends most of its
    time faulting in fresh pages for temporaries, not computing.

    Args:
        mag: magnitude buffer; must hold at least limit + plan.reach samples.
        floor: noise floor (mean magnitude) at each start sample, at least `limit` long.
        limit: number of start positions to test.
    Returns:
        int64 array (n, 2) of [start, phase], sorted by start then phase.
    """
    found = [
        _screen_strip(mag, floor, plan, timing, lo, min(lo + STRIP, limit))
        for lo in range(0, max(limit, 0), STRIP)
    ]
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    return np.concatenate(found)


def _screen_strip(
    mag: np.ndarray, floor: np.ndarray, plan: ScreenPlan, timing: Timing, lo: int, hi: int
) -> np.ndarray:
    n = hi - lo
    seg = mag[lo : hi + plan.reach]
    a, b = seg[: n + plan.reach - 1], seg[1 : n + plan.reach]
    basis = [a * np.float32(w0) + b * np.float32(w1) if w1 else a for w0, w1 in plan.basis]
    # Each quiet gap on its own: a reply ending inside the preamble window leaves one gap
    # loud and the other silent, which a single mean over both would average away.
    q = np.zeros(n, dtype=np.float32)
    for gap in plan.quiet:
        g = seg[gap[0] : gap[0] + n].copy()
        for k in gap[1:]:
            g += seg[k : k + n]
        g *= np.float32(1.0 / len(gap))
        np.maximum(q, g, out=q)
    # Pulses must beat both the preamble's own quiet gaps and the surrounding noise floor.
    np.maximum(q, floor[lo:hi] * np.float32(FLOOR_SNR / SCREEN_SNR), out=q)
    q *= np.float32(SCREEN_SNR * float(timing.half_bit))
    nph = len(plan.pulses)
    hits = np.empty((nph, n), dtype=bool)
    for p, row in enumerate(plan.pulses):
        (b0, j0), (b1, j1), (b2, j2), (b3, j3) = row
        # Second-weakest pulse amplitude (energy / h) > SCREEN_SNR * quiet level: all
        # four pulses strong rejects lone interference pulses (Mode A/C, DME) that a
        # mean would let through; allowing one weak pulse keeps replies whose preamble
        # overlaps the end of another reply.
        s = _second_lowest(
            basis[b0][j0 : j0 + n],
            basis[b1][j1 : j1 + n],
            basis[b2][j2 : j2 + n],
            basis[b3][j3 : j3 + n],
        )
        np.greater(s, q, out=hits[p])
    flat = np.flatnonzero(hits.T)  # row-major over (start, phase): sorted
    return np.stack((flat // nph + lo, flat % nph), axis=1)


def score(
    mag: np.ndarray, starts: np.ndarray, phases: np.ndarray, timing: Timing
) -> tuple[np.ndarray, np.ndarray]:
    """Preamble signal-to-noise ratio and pulse level of (start, phase) candidates.

    Returns:
        (snr, level): float32 arrays. `snr` is mean pulse energy over mean quiet energy,
        0 when a quiet half-bit of the long gaps is as loud as the pulses; `level` is the
        mean pulse magnitude (full scale = 1).
    """
    taps = timing.preamble
    energy = (mag[starts[:, None, None] + taps.idx[phases]] * taps.w[phases]).sum(axis=-1)
    pulses = energy[:, list(PULSE_HALF_BITS)]
    quiet = energy[:, list(QUIET_HALF_BITS)]
    high = pulses.mean(axis=1)
    gaps = energy[:, [n for a, b in _QUIET_GAPS for n in range(a, b)]]
    ok = gaps.max(axis=1) < high * np.float32(MAX_QUIET_FRACTION)
    second = np.sort(pulses, axis=1)[:, 1]
    snr = np.where(ok, second / np.maximum(quiet.mean(axis=1), np.float32(1e-6)), np.float32(0))
    return snr.astype(np.float32), (high / np.float32(timing.half_bit)).astype(np.float32)
