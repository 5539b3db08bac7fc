"""Soft bit decisions that account for the neighbouring bit (2-state min-sum trellis).

A sample integrates whatever half-bits overlap its interval. When a reply's half-bits
straddle samples (always at 2.0 MS/s with an offset near half a sample, often at
2.4 MS/s), one sample mixes the second half of bit k-1 with the first half of bit k, and
first-minus-second slicing can no longer tell "1 after 1" from "0 after 0". Modelled
instead: with baseline `lo` and pulse amplitude `amp` (both from the preamble) sample j
is expected at lo + amp * (u_j (1 - b[k-1]) + v_j b[k] + w_j (1 - b[k])), where u, v, w
are its overlaps with the half-bits it touches (Timing's box model). Each sample is
assigned to the latest bit it touches, so the squared error of bit k's samples depends
only on (b[k-1], b[k]): a 2-state trellis. Expanding the square, everything a
candidate's samples contribute is two linear sums per bit,
    B[k] = sum_j -u_j (y_j - lo)      G[k] = sum_j (v_j - w_j) (y_j - lo),
which one matrix product gives for all bits of all phases (like slicer.block_margins),
and the branch metric is (amp / 2) * Q(a, b) - a B[k] - b G[k] with Q a per-phase
constant. A forward and a backward min-sum pass (vectorised over candidates, one step
per bit, on the difference of the two states' costs: a clip and an offset per step) give
each bit's max-marginal: the sign is the decision, the size the confidence.
With no straddle (u = 0, Q flat) this is exactly first-minus-second slicing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from agent.demod import slicer
from agent.demod.timing import BLOCK_BITS, LONG_BITS, PREAMBLE_HALF_BITS, Timing

# Transitions (b[k-1], b[k]) in the order of the last axis of TrellisModel.q.
_PAIRS = ((0, 0), (0, 1), (1, 0), (1, 1))


@dataclass(frozen=True)
class TrellisModel:
    """Per-rate constants of the trellis, derived once from the half-bit grid.

    Attributes:
        matrix: (BLOCK_BITS * 2 * phases, width) float32; matrix @ a block of samples
            gives (B, G) before the baseline correction, for every bit of every phase
            (rows ordered bit, B/G, phase: see branch_sums).
        base: offset of the first block's first sample from a candidate's start.
        beta_sum, gamma_sum: (phases, BLOCK_BITS) sums of -u and v - w (baseline terms).
        q: (phases, BLOCK_BITS, 4) sum over the bit's samples of the squared expected
            level (per unit amplitude, above baseline) for each transition.
        steps: (4, BLOCK_BITS, phases) soft_bits' per-bit constants derived from q
            (alpha, beta, gamma, width: see _steps).
    """

    matrix: np.ndarray
    base: int
    beta_sum: np.ndarray
    gamma_sum: np.ndarray
    q: np.ndarray
    steps: np.ndarray

    @classmethod
    def for_timing(cls, timing: Timing) -> TrellisModel:
        h = timing.half_bit
        nph = len(timing.phases)
        taps: list[list[dict[int, tuple[float, float, float]]]] = []
        for phi in timing.phases:
            rows = []
            for k in range(2 * BLOCK_BITS):  # two blocks: checks the block periodicity
                hb = PREAMBLE_HALF_BITS + 2 * k
                prev, first, second, later = (
                    _overlaps(phi + n * h, h) for n in (hb - 1, hb, hb + 1, hb + 2)
                )
                row = {}
                for j in sorted(set(first) | set(second)):
                    if j in later:  # it also touches bit k+1: that bit's sample
                        continue
                    row[j] = (prev.get(j, 0.0), first.get(j, 0.0), second.get(j, 0.0))
                rows.append(row)
            taps.append(rows)
        step = timing.block_step
        for rows in taps:
            for r in range(BLOCK_BITS):
                if {j + step: w for j, w in rows[r].items()} != rows[r + BLOCK_BITS]:
                    raise AssertionError("trellis taps are not periodic per block")
        base = min(j for rows in taps for row in rows[:BLOCK_BITS] for j in row)
        width = max(j for rows in taps for row in rows[:BLOCK_BITS] for j in row) - base + 1
        matrix = np.zeros((width, nph, BLOCK_BITS, 2), dtype=np.float64)
        beta_sum = np.zeros((nph, BLOCK_BITS))
        gamma_sum = np.zeros((nph, BLOCK_BITS))
        q = np.zeros((nph, BLOCK_BITS, 4))
        for p, rows in enumerate(taps):
            for r in range(BLOCK_BITS):
                for j, (u, v, w) in rows[r].items():
                    matrix[j - base, p, r] = (-u, v - w)
                    beta_sum[p, r] += -u
                    gamma_sum[p, r] += v - w
                    for t, (a, b) in enumerate(_PAIRS):
                        q[p, r, t] += (u * (1 - a) + v * b + w * (1 - b)) ** 2
        return cls(
            # (width, phase, bit, B/G) -> rows (bit, B/G, phase): branch_sums' layout.
            np.ascontiguousarray(matrix.transpose(2, 3, 1, 0).reshape(-1, width), np.float32),
            base,
            beta_sum.astype(np.float32),
            gamma_sum.astype(np.float32),
            q.astype(np.float32),
            _steps(q).astype(np.float32),
        )


def _overlaps(start: Fraction, length: Fraction) -> dict[int, float]:
    """Overlap of [start, start + length) (in samples) with each sample's [j, j + 1)."""
    end = start + length
    out = {}
    for j in range(math.floor(start), math.ceil(end)):
        overlap = min(end, Fraction(j + 1)) - max(start, Fraction(j))
        if overlap > 0:
            out[j] = float(overlap)
    return out


def branch_sums(
    buf: np.ndarray, starts: np.ndarray, model: TrellisModel, timing: Timing, nblocks: int
) -> np.ndarray:
    """Raw (B, G) sums (before the baseline) of every bit of every phase, bit-major.

    Bit-major with the candidates last, so that pair_sums is one take along the last
    axis and soft_bits reads contiguous rows without transposing anything.

    Returns:
        float32 (nblocks, BLOCK_BITS, 2, phases, n).
    """
    n = starts.size
    width = model.matrix.shape[1]
    offsets = model.base + timing.block_step * np.arange(nblocks)
    blocks = slicer.gather(buf, offsets[:, None] + starts, width)  # (nblocks, n, width)
    out = np.matmul(model.matrix, blocks.transpose(0, 2, 1))  # (nblocks, rows, n)
    return out.reshape(nblocks, BLOCK_BITS, 2, len(timing.phases), n)


def pair_sums(sums: np.ndarray, which: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """The branch sums of k (candidate, phase) pairs: (nblocks, BLOCK_BITS, 2, k).

    Args:
        sums: branch_sums' (nblocks, BLOCK_BITS, 2, phases, n).
        which, phase: (k,) each pair's candidate (index into n) and phase.
    """
    nblocks, _, _, nph, n = sums.shape
    flat = sums.reshape(nblocks, BLOCK_BITS, 2, nph * n)
    return flat.take(phase * n + which, axis=3)


def soft_bits(
    sums: np.ndarray,
    phase: np.ndarray,
    lo: np.ndarray | None,
    amp: np.ndarray,
    model: TrellisModel,
    nbits: int = LONG_BITS,
) -> np.ndarray:
    """Max-marginal bit margins of k (candidate, phase) pairs.

    Args:
        sums: (nblocks, BLOCK_BITS, 2, k) raw branch sums of each pair's own phase
            (pair_sums).
        phase: (k,) phase index of each pair.
        lo, amp: (k,) baseline (None: 0) and pulse amplitude (magnitude units).
        nbits: bits decided (<= nblocks * BLOCK_BITS).
    Returns:
        float32 (k, nbits): positive means 1; the size is the metric gap between the
        best sequences with the bit at 1 and at 0 (in amplitude x magnitude units).

    With two states a min-sum pass only needs the difference of the two costs, and one
    step of it is a clip plus an offset (see _steps): three numpy calls per bit and
    direction on k values, instead of adding, comparing and differencing all four
    transitions.
    """
    k = phase.size
    if k == 0:
        return np.zeros((0, nbits), dtype=np.float32)
    want = nbits
    # One bit more when the sums have it: the sample after the last bit tells whether
    # it ended high or low when the reply straddles samples.
    nbits = min(nbits + 1, sums.shape[0] * BLOCK_BITS)
    nblk = -(-nbits // BLOCK_BITS)
    bb, gg = sums[:nblk, :, 0], sums[:nblk, :, 1]  # B, G: (nblk, BLOCK_BITS, k)
    if lo is not None:
        lo = lo.astype(np.float32)
        bb = bb - model.beta_sum[phase].T * lo
        gg = gg - model.gamma_sum[phase].T * lo
    half_amp = amp.astype(np.float32) * np.float32(0.5)
    # (4, BLOCK_BITS, k), contiguous: broadcast against every block's rows.
    alpha, beta, gamma, width = model.steps[:, :, phase] * half_amp
    # The clip bounds are made `span` blocks at a time: a few numpy calls for all bits
    # when k is small, pieces that stay in the cache when it is large.
    span = max(1, CACHE_FLOATS // (BLOCK_BITS * k))
    chunks = [
        (j, j * BLOCK_BITS, min(nbits, (j + span) * BLOCK_BITS)) for j in range(0, nblk, span)
    ]
    offset = np.empty((nblk * BLOCK_BITS, k), dtype=np.float32)  # bit-major as well
    np.add(gamma, bb, out=offset.reshape(nblk, BLOCK_BITS, k))
    offset.reshape(nblk, BLOCK_BITS, k)[...] += gg

    def bounds(j: int, base: np.ndarray, sub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hi = base - sub[j : j + span]
        return (hi - width).reshape(-1, k), hi.reshape(-1, k)

    fwd = np.empty((nbits, k), dtype=np.float32)
    prev = np.full(k, _BIG)  # bit -1 is "1" (the preamble ends quiet)
    for j, a, b in chunks:
        lo_f, hi_f = bounds(j, alpha, bb)
        for i in range(a, b):
            _step(prev, lo_f[i - a], hi_f[i - a], offset[i], fwd[i])
            prev = fwd[i]
    back = np.empty((nbits, k), dtype=np.float32)
    back[-1] = 0  # nothing after the last bit
    for j, a, b in reversed(chunks):
        lo_b, hi_b = bounds(j, beta, gg)
        for i in range(b - 1, max(a, 1) - 1, -1):  # bit i's metrics: back[i - 1]
            _step(back[i], lo_b[i - a], hi_b[i - a], offset[i], back[i - 1])
    out = back[:want]
    out += fwd[:want]
    return out.T


# Floats per piece of soft_bits' clip bounds (512 KB; measured best on a busy capture:
# 2 blocks of 10k pairs took 5.6 ms, 1 block 8, 4 blocks 7, all 23 blocks 12.5).
CACHE_FLOATS = 1 << 17
_BIG = np.float32(1e30)


def _step(d: np.ndarray, lo: np.ndarray, hi: np.ndarray, off: np.ndarray, out: np.ndarray) -> None:
    """One min-sum step on cost differences: out = clip(d, lo, hi) + off (see _steps)."""
    np.maximum(d, lo, out=out)
    np.minimum(out, hi, out=out)
    out += off


def _steps(q: np.ndarray) -> np.ndarray:
    """Per-unit-amplitude constants of the difference recursions, (4, BLOCK_BITS, phases).

    Forward: with d = f[0] - f[1] the cost difference after bit i-1 and m[a, b] bit i's
    branch metrics, the difference after bit i is
        min(d + m00, m10) - min(d + m01, m11) = clip(d, y, x) - y + m00 - m01,
    with x = m10 - m00 and y = m11 - m01, provided x >= y. Here x - y = (amp / 2)
    (Q10 - Q00 - Q11 + Q01) = amp * sum over the bit's samples of u (v - w), and a
    sample that touches the previous bit (u > 0) lies on this bit's first half only
    (w = 0: a sample is shorter than a half-bit), so x >= y always. With the metrics
    m = (amp / 2) Q - a B - b G that is
        clip(d, alpha - B - width, alpha - B) + gamma + B + G,
    and the backward pass (g = best completion after bit i, from bit i+1's metrics)
    is the same with beta - G for alpha - B. Returned: alpha, beta, gamma, width per
    unit amplitude, to be scaled by amp / 2.
    """
    q00, q01, q10, q11 = np.moveaxis(q, -1, 0)
    width = q10 - q00 - q11 + q01
    if width.min() < -1e-6:
        raise AssertionError("a sample straddles three half-bits: the clip form fails")
    return np.stack((q10 - q00, q01 - q00, q00 - q11, np.maximum(width, 0))).transpose(0, 2, 1)
