"""Bit decisions for every phase of many candidates at once.

Each data bit is decided by the sign of (first half-bit energy - second half-bit
energy). The half-bit grid repeats on the samples every BLOCK_BITS bits, so a candidate's
window is cut into overlapping blocks (one strided view, no copy of the buffer) and one
small matrix product per candidate batch gives every bit of every phase: about 0.5 us
per candidate for all phases, where a per-tap gather cost several us for one phase.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from agent.demod.timing import Timing


def block_margins(win: np.ndarray, matrix: np.ndarray, timing: Timing, nbits: int) -> np.ndarray:
    """First-minus-second half-bit energy of the first `nbits` data bits, every phase.

    Args:
        win: (n, timing.window) float32 magnitudes from each candidate's start sample,
            C-contiguous.
        matrix: timing.block_matrix.
        nbits: data bits wanted (rounded up to whole blocks internally).
    Returns:
        float32 array (n, phases, nbits); positive means bit 1.
    """
    n = win.shape[0]
    bb, nph = timing.block_bits, len(timing.phases)
    nblocks = -(-nbits // bb)
    width = matrix.shape[0]
    base = win[:, timing.block_base :]
    blocks = as_strided(
        base,
        shape=(n, nblocks, width),
        strides=(win.strides[0], timing.block_step * win.strides[1], win.strides[1]),
        writeable=False,
    )
    out = np.matmul(blocks, matrix)  # (n, nblocks, phases * bb)
    out = out.reshape(n, nblocks, nph, bb).transpose(0, 2, 1, 3).reshape(n, nph, nblocks * bb)
    return out[:, :, :nbits]


def pack(margins: np.ndarray) -> np.ndarray:
    """Bytes (MSB first) from bit margins along the last axis: uint8 (..., nbits // 8)."""
    return np.packbits(margins > 0, axis=-1)
