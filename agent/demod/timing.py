"""Where the Mode S half-bits fall on the sample grid, for each sub-sample phase.

A reply is a sequence of 0.5 us half-bits: 16 for the preamble (pulses in half-bits 0, 2,
7 and 9), then two per data bit (pulse-position modulation: a 1 is "high, low", a 0 is
"low, high"). At 2.4 MS/s a half-bit lasts 1.2 samples, at 2.0 MS/s exactly 1 sample, so
a reply can start anywhere between two samples.

Each sample is treated as the signal integrated over its own interval [j, j+1). The
energy of a half-bit that starts at the fractional time t is then a weighted sum of the
two samples it covers, the weights being the overlaps. Doing this with exact fractions
for every phase gives the matched-filter ("integrate and dump") taps once, at start-up;
at 2.4 MS/s with phases in fifths of a sample they are the 5/-3/-2-style correlators the
C demodulators use, derived rather than hand-written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import numpy as np

PREAMBLE_HALF_BITS = 16
LONG_BITS = 112
SHORT_BITS = 56
# Data bits sliced per matrix block: 5 bits = 10 half-bits, a whole number of samples at
# both rates (12 at 2.4 MS/s, 10 at 2.0 MS/s), so every block has the same taps.
BLOCK_BITS = 5
# Half-bits of the preamble that carry a pulse, and those that must be quiet.
PULSE_HALF_BITS = (0, 2, 7, 9)
QUIET_HALF_BITS = (1, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15)
# Sub-sample start offsets tried at each supported rate. At 2.4 MS/s the half-bit grid
# repeats every 5 samples (6 half-bits), so fifths cover every alignment exactly. At
# 2.0 MS/s a pulse straddles two samples by any fraction, and the trellis that decodes
# those needs the straddle to within about a sixteenth of a sample: eighths (quarters
# measured 98.5 % at 20 dB, eighths 100 %).
PHASES: dict[int, tuple[Fraction, ...]] = {
    2_400_000: tuple(Fraction(p, 5) for p in range(5)),
    2_000_000: tuple(Fraction(p, 8) for p in range(8)),
}


@dataclass(frozen=True)
class Taps:
    """Sample offsets and weights (sparse rows) for one quantity per row, per phase.

    idx[p, r, t] is a sample offset from the candidate's integer start sample and
    w[p, r, t] its weight; unused taps have weight 0 and a valid offset.
    """

    idx: np.ndarray  # (phases, rows, taps) int32
    w: np.ndarray  # (phases, rows, taps) float32


# Exact time unit for building taps: phases and half-bits are whole 40ths of a sample
# at both rates, so integer arithmetic in 40ths is exact (and much faster than Fraction).
_DEN = 40


def _half_bit_weights(start: int, length: int) -> dict[int, int]:
    """Overlap of [start, start+length) with each sample interval [j, j+1), in 1/_DEN.

    `start` and `length` are in 1/_DEN of a sample.
    """
    end = start + length
    out: dict[int, int] = {}
    for j in range(start // _DEN, -(-end // _DEN)):
        overlap = min(end, (j + 1) * _DEN) - max(start, j * _DEN)
        if overlap > 0:
            out[j] = overlap
    return out


def _pack(rows_per_phase: list[list[dict[int, int]]]) -> Taps:
    ntaps = max(len(row) for rows in rows_per_phase for row in rows)
    shape = (len(rows_per_phase), len(rows_per_phase[0]), ntaps)
    idx = np.zeros(shape, dtype=np.int32)
    w = np.zeros(shape, dtype=np.float32)
    for p, rows in enumerate(rows_per_phase):
        for r, row in enumerate(rows):
            items = sorted(row.items())
            for t, (j, weight) in enumerate(items):
                idx[p, r, t], w[p, r, t] = j, weight / _DEN
            idx[p, r, len(items) :] = items[0][0]
    return Taps(idx, w)


def _dense(taps: Taps, base: int, width: int) -> np.ndarray:
    """(width, phases * rows) matrix with taps.w placed at rows taps.idx - base."""
    nph, rows, _ = taps.idx.shape
    out = np.zeros((width, nph * rows), dtype=np.float32)
    for p in range(nph):
        for r in range(rows):
            for j, wt in zip(taps.idx[p, r], taps.w[p, r], strict=True):
                out[j - base, p * rows + r] += wt
    return out


@dataclass(frozen=True)
class Timing:
    """Everything rate-dependent, built once per Demodulator.

    Attributes:
        rate: samples per second.
        half_bit: samples per half-bit (1.2 or 1.0).
        phases: sub-sample offsets tried for each candidate start sample.
        preamble: taps for the 16 preamble half-bit energies.
        bits: taps giving, per data bit, first-half energy minus second-half energy
            (positive means 1).
        span: samples needed from a candidate's start sample to slice a long reply.
    """

    rate: int
    half_bit: Fraction
    phases: tuple[Fraction, ...]
    preamble: Taps
    bits: Taps
    span: int

    # The derived sizes below are cached: each is asked for several times per block,
    # and computing one (Fraction arithmetic, a min over the taps) cost up to 10 us.

    @cached_property
    def inverse_half_bit(self) -> np.float32:
        """1 / half_bit as float32 (half-bit energies to mean magnitudes)."""
        return np.float32(1 / self.half_bit)

    @cached_property
    def preamble_matrix(self) -> np.ndarray:
        """Dense (samples, phases * 16) weights: window @ matrix = half-bit energies.

        The preamble taps of every phase as one small matrix, so that the energies of
        all 16 half-bits at all phases of many candidates are one BLAS product instead
        of a gather per tap.
        """
        return _dense(self.preamble, 0, int(self.preamble.idx.max()) + 1)

    @property
    def block_bits(self) -> int:
        """Data bits per block: the bit grid repeats every BLOCK_BITS bits on the samples."""
        return BLOCK_BITS

    @cached_property
    def block_step(self) -> int:
        """Samples between the starts of consecutive blocks of BLOCK_BITS bits."""
        return int(2 * BLOCK_BITS * self.half_bit)

    @cached_property
    def window(self) -> int:
        """Samples from a candidate's start that the block slicer reads (>= span)."""
        last = (LONG_BITS - 1) // BLOCK_BITS
        return max(self.span, self.block_base + last * self.block_step + len(self.block_matrix))

    @cached_property
    def block_base(self) -> int:
        """Offset from a candidate's start sample of the first data block's first sample."""
        return int(self.bits.idx.min())

    @cached_property
    def block_matrix(self) -> np.ndarray:
        """Dense (samples, phases * BLOCK_BITS) bit-margin weights for one data block.

        Bit k = BLOCK_BITS * m + r uses the taps of bit r shifted by m * block_step
        samples (exact: 10 half-bits are 12 samples at 2.4 MS/s, 10 at 2.0 MS/s), so
        one (blocks, samples) x (samples, phases * bits) product slices every bit of
        every phase of a candidate.
        """
        base, step = self.block_base, self.block_step
        idx, w = self.bits.idx, self.bits.w
        width = int(idx[:, :BLOCK_BITS].max()) - base + 1
        nph = len(self.phases)
        out = np.zeros((width, nph * BLOCK_BITS), dtype=np.float32)
        for p in range(nph):
            for r in range(BLOCK_BITS):
                for j, wt in zip(idx[p, r], w[p, r], strict=True):
                    out[j - base, p * BLOCK_BITS + r] += wt
                # The shift-by-one-block property the matrix relies on.
                for k in range(r + BLOCK_BITS, LONG_BITS, BLOCK_BITS):
                    if not np.array_equal(idx[p, k], idx[p, r] + (k - r) // BLOCK_BITS * step):
                        raise AssertionError("bit taps are not periodic per block")
        return out

    @classmethod
    def for_rate(cls, rate: float) -> Timing:
        key = round(rate)
        if key not in PHASES:
            raise ValueError(f"sample rate {rate}: supported are 2.0e6 and 2.4e6")
        h = Fraction(key, 2_000_000)
        phases = PHASES[key]
        if any((x * _DEN).denominator != 1 for x in (h, *phases)):
            raise AssertionError("phases and half-bits must be whole 1/_DEN of a sample")
        hn = int(h * _DEN)
        pre_rows, bit_rows = [], []
        for phi in phases:
            pn = int(phi * _DEN)
            pre_rows.append([_half_bit_weights(pn + n * hn, hn) for n in range(PREAMBLE_HALF_BITS)])
            rows = []
            for k in range(LONG_BITS):
                first = _half_bit_weights(pn + (PREAMBLE_HALF_BITS + 2 * k) * hn, hn)
                second = _half_bit_weights(pn + (PREAMBLE_HALF_BITS + 2 * k + 1) * hn, hn)
                diff = dict(first)
                for j, weight in second.items():
                    diff[j] = diff.get(j, 0) - weight
                rows.append(diff)
            bit_rows.append(rows)
        total_half_bits = PREAMBLE_HALF_BITS + 2 * LONG_BITS
        span = math.ceil(max(phases) + total_half_bits * h) + 1
        return cls(key, h, phases, _pack(pre_rows), _pack(bit_rows), span)

    def frame_samples(self, nbits: int) -> Fraction:
        """Duration in samples of a reply with `nbits` data bits, preamble included."""
        return (PREAMBLE_HALF_BITS + 2 * nbits) * self.half_bit
