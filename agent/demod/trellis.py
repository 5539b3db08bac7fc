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
per bit) give each bit's max-marginal: the sign is the decision, the size the confidence.
With no straddle (u = 0, Q flat) this is exactly first-minus-second slicing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from agent.demod.timing import BLOCK_BITS, LONG_BITS, PREAMBLE_HALF_BITS, Timing

# Transitions (b[k-1], b[k]) in the order of the last axis of TrellisModel.q.
_PAIRS = ((0, 0), (0, 1), (1, 0), (1, 1))


@dataclass(frozen=True)
class TrellisModel:
    """Per-rate constants of the trellis, derived once from the half-bit grid.

    Attributes:
        matrix: (width, phases * BLOCK_BITS * 2) float32; a block of samples @ matrix
            gives (B, G) before the baseline correction, for every bit of every phase.
        base: offset of the first block's first sample from a candidate's start.
        beta_sum, gamma_sum: (phases, BLOCK_BITS) sums of -u and v - w (baseline terms).
        q: (phases, BLOCK_BITS, 4) sum over the bit's samples of the squared expected
            level (per unit amplitude, above baseline) for each transition.
    """

    matrix: np.ndarray
    base: int
    beta_sum: np.ndarray
    gamma_sum: np.ndarray
    q: np.ndarray

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
            matrix.reshape(width, -1).astype(np.float32),
            base,
            beta_sum.astype(np.float32),
            gamma_sum.astype(np.float32),
            q.astype(np.float32),
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
    """Raw (B, G) sums (before the baseline) of every bit of every phase.

    Returns:
        float32 (n, nblocks, phases, BLOCK_BITS, 2).
    """
    n = starts.size
    width = model.matrix.shape[0]
    nph = len(timing.phases)
    views = np.lib.stride_tricks.sliding_window_view(buf, width)
    offsets = model.base + timing.block_step * np.arange(nblocks)
    blocks = views[starts[:, None] + offsets]
    out = blocks.reshape(n * nblocks, width) @ model.matrix
    return out.reshape(n, nblocks, nph, BLOCK_BITS, 2)


def soft_bits(
    sums: np.ndarray,
    phase: np.ndarray,
    lo: np.ndarray,
    amp: np.ndarray,
    model: TrellisModel,
    nbits: int = LONG_BITS,
) -> np.ndarray:
    """Max-marginal bit margins of k (candidate, phase) pairs.

    Args:
        sums: (k, nblocks, BLOCK_BITS, 2) raw branch sums of each pair's own phase.
        phase: (k,) phase index of each pair.
        lo, amp: (k,) baseline and pulse amplitude (magnitude units).
        nbits: bits decided (<= nblocks * BLOCK_BITS).
    Returns:
        float32 (k, nbits): positive means 1; the size is the metric gap between the
        best sequences with the bit at 1 and at 0 (in amplitude x magnitude units).
    """
    k = phase.size
    if k == 0:
        return np.zeros((0, nbits), dtype=np.float32)
    want = nbits
    # One bit more when the sums have it: the sample after the last bit tells whether
    # it ended high or low when the reply straddles samples.
    nbits = min(nbits + 1, sums.shape[1] * BLOCK_BITS)
    lo = lo.astype(np.float32)
    flat = sums.reshape(k, -1, 2)[:, :nbits]
    # Baseline-corrected sums, bit-major so that each step reads contiguous rows.
    reps = -(-nbits // BLOCK_BITS)
    bsum = np.tile(model.beta_sum[phase], reps)[:, :nbits]
    gsum = np.tile(model.gamma_sum[phase], reps)[:, :nbits]
    bb = np.ascontiguousarray((flat[:, :, 0] - lo[:, None] * bsum).T)
    gg = np.ascontiguousarray((flat[:, :, 1] - lo[:, None] * gsum).T)
    # Branch metrics m[i, (a, b), pair] = (amp / 2) Q(a, b) - a B[i] - b G[i].
    half_amp = amp.astype(np.float32) * np.float32(0.5)
    kq = (model.q[phase] * half_amp[:, None, None]).transpose(1, 2, 0)  # (BLOCK_BITS, 4, k)
    m = kq[np.arange(nbits) % BLOCK_BITS]  # (nbits, 4, k), a copy
    m[:, 1] -= gg
    m[:, 2] -= bb
    m[:, 3] -= bb
    m[:, 3] -= gg
    margins = _blocked(m) if k < BLOCKED_BELOW else _sweep(m)
    return margins[:want].T


# Below this many pairs _blocked (about 150 numpy calls, more element work) beats
# _sweep (about 800 calls, one bit each).
BLOCKED_BELOW = 90


# Bits per block of _blocked: a numpy call per block and direction instead of per bit.
SPAN = 8
_BIG = np.float32(1e30)


def _blocked(m: np.ndarray) -> np.ndarray:
    """Forward-backward min-sum in blocks of SPAN bits: (nbits, 4, k) -> (nbits, k).

    The same result as _sweep (bit by bit), in about a sixth of the numpy calls: the
    transitions of each block are first combined within the block (vectorised over all
    blocks), then the costs are carried from block to block, then filled back in.
    """
    nbits, _, k = m.shape
    nblk = -(-nbits // SPAN)
    mb = np.empty((nblk * SPAN, 2, 2, k), dtype=np.float32)
    mb[:nbits] = m.reshape(nbits, 2, 2, k)
    mb[nbits:] = _BIG  # padding: the identity of the min-plus product
    mb[nbits:, 0, 0] = 0
    mb[nbits:, 1, 1] = 0
    mb = mb.reshape(nblk, SPAN, 2, 2, k)
    pre = np.empty_like(mb)  # pre[j, t] = mb[j, 0] ... mb[j, t]
    suf = np.empty_like(mb)  # suf[j, t] = mb[j, t] ... mb[j, SPAN - 1]
    pre[:, 0] = mb[:, 0]
    suf[:, -1] = mb[:, -1]
    for t in range(1, SPAN):
        pre[:, t] = _compose(pre[:, t - 1], mb[:, t])
        suf[:, -1 - t] = _compose(mb[:, -1 - t], suf[:, -t])
    # Costs entering each block (state after the bit before it; bit -1 is "1": the
    # preamble ends quiet) and leaving it (best completion after its last bit).
    enter = np.empty((nblk, 2, k), dtype=np.float32)
    f = np.zeros((2, k), dtype=np.float32)
    f[0] = _BIG
    for j in range(nblk):
        enter[j] = f
        f = (f[:, None, :] + pre[j, -1]).min(axis=0)
    leave = np.empty((nblk, 2, k), dtype=np.float32)
    g = np.zeros((2, k), dtype=np.float32)
    for j in range(nblk - 1, -1, -1):
        leave[j] = g
        g = (suf[j, 0] + g[None, :, :]).min(axis=1)
    fwd = (enter[:, None, :, None, :] + pre).min(axis=2)  # (nblk, SPAN, 2, k)
    back = np.empty_like(fwd)
    back[:, -1] = leave
    back[:, :-1] = (suf[:, 1:] + leave[:, None, None, :, :]).min(axis=3)
    out = (fwd[:, :, 0] - fwd[:, :, 1]) + (back[:, :, 0] - back[:, :, 1])
    return out.reshape(nblk * SPAN, k)[:nbits]


def _sweep(m: np.ndarray) -> np.ndarray:
    """Forward-backward min-sum, one bit per step: (nbits, 4, k) metrics -> (nbits, k)."""
    nbits, _, k = m.shape
    big = np.float32(1e30)
    f = np.zeros((2, k), dtype=np.float32)
    f[0] = big  # bit -1 is "1": the preamble ends quiet
    tmp = np.empty((2, 2, k), dtype=np.float32)
    fwd = np.empty((nbits, k), dtype=np.float32)  # f[0] - f[1] after each bit
    for i in range(nbits):
        np.add(m[i].reshape(2, 2, k), f[:, None, :], out=tmp)  # [a, b] = f[a] + m[a, b]
        np.minimum(tmp[0], tmp[1], out=f)
        np.subtract(f[0], f[1], out=fwd[i])
    g = np.zeros((2, k), dtype=np.float32)
    out = np.empty((nbits, k), dtype=np.float32)
    out[nbits - 1] = fwd[nbits - 1]
    for i in range(nbits - 2, -1, -1):
        np.add(m[i + 1].reshape(2, 2, k), g[None, :, :], out=tmp)  # [a, b] = m[a, b] + g[b]
        np.minimum(tmp[:, 0], tmp[:, 1], out=g)
        np.subtract(g[0], g[1], out=out[i])
        out[i] += fwd[i]
    return out


def _compose(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Min-plus products x[i] y[i] of 2x2 matrices stored as (..., 2, 2, k)."""
    t = x[..., :, :, None, :] + y[..., None, :, :, :]  # [a, c, b] = x[a, c] + y[c, b]
    return np.minimum(t[..., 0, :, :], t[..., 1, :, :])
