"""The noise floor: what a preamble's pulses are measured against, and the level reported.

Two measures, for two readers. `floor` is local (one value per NOISE_WINDOW samples) and
exact whatever the block split, for the preamble tests (preamble.py). `NoiseLevel` is the
smoothed median magnitude over blocks, for the adaptive gain (agent/sources/gain.py).
"""

from __future__ import annotations

import math

import numpy as np

# Noise floor (see floor): mean magnitude of NOISE_SUB-sample pieces, the FLOOR_RANK-th
# lowest of each NOISE_WINDOW (0.4-0.5 ms). Rank 8 of 64 is the 1/8 quantile: low
# enough to skip replies, high enough not to chase single quiet pieces.
NOISE_SUB = 16
NOISE_WINDOW = 1024
FLOOR_RANK = 8
# Pieces summed per pass in floor (512 KB of samples: fits the L2 cache).
FLOOR_RUN = 8192


def floor(buf: np.ndarray) -> np.ndarray:
    """Noise floor (mean magnitude) of each NOISE_WINDOW of `buf`.

    Mean magnitudes of NOISE_SUB-sample pieces are ranked within each window of
    NOISE_WINDOW samples; a low-ranked one (FLOOR_RANK) is the window's floor, so
    replies covering most of a window do not raise it. A window gets the lower of
    its own and the previous window's floor; samples past the last window use the
    last floor. Windows are aligned to absolute sample indices (the caller's buffer
    always starts on a window boundary, agent/demod/blocks.py) and each piece is
    summed by the same tree of element-wise float32 additions wherever it falls in a
    buffer: the floor does not depend on how the input was split into blocks.
    """
    nsub = buf.size // NOISE_SUB
    if nsub == 0:
        return np.zeros(1, dtype=np.float32)
    # Column by column into one small array: halving the whole buffer pairwise
    # allocated buffer-sized temporaries, whose page faults cost more than the adds.
    # In runs of FLOOR_RUN pieces, so that the sixteen strided passes over a run
    # hit the CPU cache (measured: a fifth less time than passes over the buffer).
    pieces = buf[: nsub * NOISE_SUB].reshape(nsub, NOISE_SUB)
    per = NOISE_WINDOW // NOISE_SUB
    nwin = -(-nsub // per)
    # The sums go straight into the rows that are ranked; a short last row is padded.
    ranked = np.empty((nwin, per), dtype=np.float32)
    flat = ranked.reshape(-1)
    flat[nsub:] = np.inf
    sub = flat[:nsub]
    for a in range(0, nsub, FLOOR_RUN):
        run, out = pieces[a : a + FLOOR_RUN], sub[a : a + FLOOR_RUN]
        np.add(run[:, 0], run[:, 1], out=out)
        for c in range(2, NOISE_SUB):
            out += run[:, c]
    # Sorting the rows in place (numpy's vectorised sort) measured a quarter faster than
    # np.partition on these 64-entry rows; the rank's value is the same.
    ranked.sort(axis=1)
    rank = min(FLOOR_RANK, nsub - 1) if nwin == 1 else FLOOR_RANK
    win = ranked[:, rank]
    if not np.isfinite(win[-1]):  # a last window with fewer pieces than the rank
        part = flat[(nwin - 1) * per : nsub]  # its pieces, sorted (the padding last)
        win[-1] = part[min(FLOOR_RANK, part.size - 1)] if part.size else win[-2]
    low = win.copy()
    low[1:] = np.minimum(win[1:], win[:-1])
    return low * np.float32(1 / NOISE_SUB)


class NoiseLevel:
    """Median sample magnitude, smoothed over blocks (None before any input)."""

    def __init__(self) -> None:
        self.median: float | None = None

    def update(self, mag: np.ndarray) -> None:
        """Fold in one block's median (of about 4096 of its samples)."""
        sample = mag[:: max(1, mag.size // 4096)].copy()
        mid = sample.size // 2
        med = float(np.partition(sample, mid)[mid])  # the upper median: no averaging
        self.median = med if self.median is None else 0.8 * self.median + 0.2 * med

    @property
    def dbfs(self) -> float | None:
        if self.median is None:
            return None
        return 20.0 * math.log10(max(self.median, 1e-9))
