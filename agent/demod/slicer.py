"""Bit decisions for every phase of many candidates at once.

Each data bit is decided by the sign of (first half-bit energy - second half-bit
energy). The half-bit grid repeats on the samples every BLOCK_BITS bits, so a candidate's
window is cut into blocks (gathered as rows, each one sample longer than the step) and
one 2-D matrix product over all blocks of all candidates gives every bit of every phase.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from agent.demod.timing import Timing


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
) -> np.ndarray:
    """First-minus-second margins (k, nbits) of k (start, phase) pairs.

    Pairs are grouped by phase, and each group is one 2-D product with that phase's
    columns of the block matrix: no work is spent on the other phases.
    """
    k = starts.size
    bb = timing.block_bits
    nblocks = -(-nbits // bb)
    width = matrix.shape[0]
    views = sliding_window_view(buf, width)
    offsets = timing.block_base + timing.block_step * np.arange(nblocks)
    out = np.empty((k, nblocks * bb), dtype=np.float32)
    for q in range(matrix.shape[1] // bb):
        rows = np.flatnonzero(phases == q)
        if rows.size == 0:
            continue
        blocks = views[starts[rows, None] + offsets]  # (rows, nblocks, width)
        cols = matrix[:, q * bb : (q + 1) * bb]
        out[rows] = (blocks.reshape(-1, width) @ cols).reshape(rows.size, -1)
    return out[:, :nbits]
