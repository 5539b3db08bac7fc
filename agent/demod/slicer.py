"""Bit decisions for every phase of many candidates at once.

Each data bit is decided by the sign of (first half-bit energy - second half-bit
energy). The half-bit grid repeats on the samples every BLOCK_BITS bits, so a candidate's
window is cut into blocks (gathered as rows, each one sample longer than the step) and
one 2-D matrix product over all blocks of all candidates gives every bit of every phase.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from agent.demod.timing import Timing


def windows(buf: np.ndarray, width: int) -> np.ndarray:
    """sliding_window_view(buf, width) of a contiguous 1-D buf, built directly: its
    checks cost about 6 us a call, and a block takes several (as much as the view of
    a small gather)."""
    if not buf.flags.c_contiguous or buf.ndim != 1 or not 0 < width <= buf.size:
        return sliding_window_view(buf, width)
    step = buf.itemsize
    return np.ndarray((buf.size - width + 1, width), buf.dtype, buf, 0, (step, step))


def gather(buf: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """windows(buf, width)[starts]: a new C-contiguous (*starts.shape, width) array.

    Each window is taken as one item of a `width`-sample (void) dtype, which numpy
    copies whole; indexing the 2-D view copies it element by element. Measured on
    stage 2's 20-sample windows: less than half the time (45 us against 95-110 us for
    8192 windows), a third less for 276-sample rows.
    """
    if not buf.flags.c_contiguous or buf.ndim != 1 or not 0 < width <= buf.size:
        return windows(buf, width)[starts]
    step = buf.itemsize
    rows = np.ndarray((buf.size - width + 1,), _window_item(width * step), buf, 0, (step,))
    rows = rows[starts]
    return rows.view(buf.dtype).reshape(*rows.shape, width)


@cache
def _window_item(nbytes: int) -> np.dtype:
    """The void dtype of one `nbytes` window (built once: a dtype costs about 0.7 us,
    a third of a small gather)."""
    return np.dtype((np.void, nbytes))


def block_margins(
    buf: np.ndarray, starts: np.ndarray, matrix: np.ndarray, timing: Timing, nblocks: int
) -> np.ndarray:
    """First-minus-second half-bit energy of the first `nblocks` data blocks, every phase.

    Args:
        buf: float32 magnitudes; every start needs timing.window samples after it.
        starts: (n,) candidate start samples in `buf`.
        matrix: timing.block_matrix, (width, phases * BLOCK_BITS).
        nblocks: blocks of BLOCK_BITS data bits wanted.
    Returns:
        float32 array (n, nblocks, phases, BLOCK_BITS); positive means bit 1. Bit k of
        phase p is [:, k // BLOCK_BITS, p, k % BLOCK_BITS].
    """
    n = starts.size
    width = matrix.shape[0]
    nph = matrix.shape[1] // timing.block_bits
    views = sliding_window_view(buf, width)
    offsets = timing.block_base + timing.block_step * np.arange(nblocks)
    # Consecutive blocks overlap by a sample, so they are gathered as rows of their own:
    # one plain 2-D product then slices every block of every candidate.
    blocks = views[starts[:, None] + offsets]  # (n, nblocks, width)
    out = blocks.reshape(n * nblocks, width) @ matrix
    return out.reshape(n, nblocks, nph, timing.block_bits)


def pair_margins(
    buf: np.ndarray,
    starts: np.ndarray,
    phases: np.ndarray,
    matrix: np.ndarray,
    timing: Timing,
    nbits: int,
    out: np.ndarray | None = None,
    at: np.ndarray | None = None,
) -> np.ndarray:
    """First-minus-second margins (k, nbits) of k (start, phase) pairs, in out[at]
    when given (out[at[i], :nbits] for pair i: written there directly, with no
    (k, nbits) array to scatter again), else in a new array.

    Pairs are grouped by phase, and each group is one 2-D product with that phase's
    columns of the block matrix: no work is spent on the other phases. Each pair's
    blocks are gathered as one contiguous row of samples (a plain row copy, not a gather
    of every block's overlapping samples) cut into block_step-sample pieces; the few
    block-matrix weights past block_step, which reach into the next piece, are added
    as multiply-adds of those next samples. The rows are gathered one phase group at a
    time: the temporaries are a fifth of all the pairs' rows (about 0.5 KB a pair).
    """
    k = starts.size
    bb = timing.block_bits
    nblocks = -(-nbits // bb)
    step = timing.block_step
    width = matrix.shape[0]
    extra = width - step  # samples a block reads past its piece (1 at 2.4 MS/s)
    if not 0 < extra <= step:
        raise ValueError("block matrix must reach a little into the next block")
    # Stable sort of the few phase numbers as bytes: numpy radix-sorts 8-bit keys
    # (a quarter of the time of a merge sort of the int64 ones, same order).
    order = np.argsort(phases.astype(np.uint8), kind="stable")
    bounds = np.searchsorted(phases[order], np.arange(matrix.shape[1] // bb + 1)).tolist()
    first = starts[order] + timing.block_base
    if out is None:
        out, at = np.empty((k, nbits), dtype=np.float32), np.arange(k)
    dest = at[order]
    for q in range(len(bounds) - 1):
        a, b = bounds[q], bounds[q + 1]
        if a == b:
            continue
        cols = matrix[:, q * bb : (q + 1) * bb]
        group = first[a:b]
        rows = gather(buf, group, nblocks * step)  # (b - a, nblocks * step)
        part = rows.reshape((b - a) * nblocks, step) @ cols[:step]
        # Few bits reach past the piece (only their columns, as plain multiply-adds:
        # a product with an inner dimension of 1 misses BLAS and is slower).
        # The next piece's first samples are in the row already (a strided view); the
        # last block's are one gather past the row.
        pieces = rows.reshape(b - a, nblocks, step)
        bits = part.reshape(b - a, nblocks, bb)
        for e, c in zip(*np.nonzero(cols[step:]), strict=True):
            weight = cols[step + e, c]
            bits[:, :-1, c] += pieces[:, 1:, e] * weight
            bits[:, -1, c] += buf[group + (nblocks * step + e)] * weight
        out[dest[a:b], :nbits] = part.reshape(b - a, nblocks * bb)[:, :nbits]
    return out
