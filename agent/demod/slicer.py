"""Bit decisions for many (start sample, phase) candidates at once.

Each data bit is decided by the sign of (first half-bit energy - second half-bit
energy), computed with the per-phase taps from timing.Timing.bits: one gather and one
weighted sum for all candidates, no per-candidate Python.
"""

from __future__ import annotations

import numpy as np

from agent.demod.timing import Timing


def bit_margins(
    mag: np.ndarray, starts: np.ndarray, phases: np.ndarray, timing: Timing, nbits: int
) -> np.ndarray:
    """First-minus-second half-bit energy of the first `nbits` data bits.

    Args:
        mag: magnitude buffer holding every candidate's samples.
        starts: integer start sample per candidate.
        phases: index into timing.phases per candidate.
        nbits: how many data bits to slice (5 for a DF pre-check, 112 for all).
    Returns:
        float32 array (len(starts), nbits); positive means bit 1.
    """
    idx = timing.bits.idx[phases, :nbits]
    w = timing.bits.w[phases, :nbits]
    return (mag[starts[:, None, None] + idx] * w).sum(axis=-1)


def pack(margins: np.ndarray) -> np.ndarray:
    """Bytes (MSB first) from bit margins: uint8 array (n, nbits // 8)."""
    return np.packbits(margins > 0, axis=1)
