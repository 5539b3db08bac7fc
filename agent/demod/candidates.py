"""Stages 1-3: where replies may start, and which (start, phase) pairs are worth deciding.

Cheapest first, so that the bit decisions (decide.py) only ever see a handful:
    1. preamble.screen        every sample: ~20 shifted-array ops, phase-agnostic
                              (pulses over the quiet gaps' mean and loudest sample;
                              loud ones need really quiet gaps; the pulses' peak
                              samples over stage 2's floor test)
    2. preamble.phase_scores  survivors: one matrix product -> SNR of all phases,
                              plus the noise-floor test (looser for weak preambles);
                              at most PHASES_PER_PREAMBLE phases per start go on
    3. the DF check           downlink format of every phase must be one the verifier
                              accepts (agent/verify.py) or, in a weak reply, one bit
                              from DF17/18 (sliced from the first block of bits, or
                              with the trellis where it decides every bit)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from agent import verify
from agent.demod import preamble, repair, slicer
from agent.demod.decide import HEAD_BLOCKS, ONE_FROM_ES_TABLE, BitDecider, Pairs, runs
from agent.demod.noise import NOISE_WINDOW
from agent.demod.timing import BLOCK_BITS, Timing

# Preamble starts taken past stage 2 per million samples of a buffer. The busiest
# recordings reach 19,000 (modes1.bin at 2.0 MS/s; 8,000-12,000 for phwl_x-1 and
# modes1_2400); random pulses reach 75,000, and the stages after this one cost about
# 0.1 ms per start, so an input of pulses (interference, a broken front end, an
# attacker) took 5-18 CPU seconds per second of IQ. Beyond the cap the starts with the
# weakest preambles are skipped (counted as preambles_skipped): replies that strong
# are the least likely to be lost.
MAX_STARTS_PER_MSAMPLE = 32_768
# (start, phase) pairs sliced per start sample, best preamble SNR first (not at the
# trellis-only rates, whose finer phases each carry a different straddle).
PHASES_PER_PREAMBLE = 2
# Screened starts scored (stage 2) per pass: the product and its tests over this many
# (about 2 MB of temporaries, the windows 128 bytes a start) stay in the CPU cache.
SCORE_CHUNK = 8192
# Unacceptable DFs one bit from DF17 or DF18 (1, 2, 19, 22, 25, 26): the only ones a
# weak reply's DF repair (repair.extended_squitter_df) can make worth slicing.
_NEAR_ES_TABLE = ONE_FROM_ES_TABLE & ~verify.ACCEPTED_DF_TABLE
# Bit weights of the 5-bit DF field, for a (..., 5) bool @ weights product.
_DF_WEIGHTS = np.array([16, 8, 4, 2, 1], dtype=np.uint8)


def strongest(score: np.ndarray, cap: int) -> np.ndarray:
    """Indices of the `cap` highest scores (ties broken arbitrarily), ascending."""
    return np.sort(np.argpartition(score, score.size - cap)[score.size - cap :])


def _clusters(starts: np.ndarray) -> int:
    """Number of runs of start samples with gaps of at most 2 samples."""
    return int(starts.size and 1 + np.count_nonzero(np.diff(starts) > 2))


def _acceptable_df(
    df: np.ndarray, weak: np.ndarray, df_margins: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Which sliced DFs (one per (start, phase) pair) are worth slicing the rest of the
    reply for, and which of those must be sliced long (112 bits).

    A DF the verifier accepts, or in a weak reply one whose least certain bit, flipped,
    makes DF17/18 (the decider's DF repair may repair it; such a reply is sliced long).
    df_margins(idx) gives the (idx.size, 5) margins of the DF bits of entries idx:
    only those few entries need them.
    """
    ok = verify.ACCEPTED_DF_TABLE.take(df)
    long = df >= 16
    # Only the few weak entries whose DF is one bit from DF17/18 and not acceptable
    # already can change: the least-certain-bit search runs on those alone (it was a
    # gather and an argmin over every weak entry, most of them noise).
    near = np.flatnonzero(weak & _NEAR_ES_TABLE.take(df))
    if near.size:
        target, _ = repair.extended_squitter_df(df[near], df_margins(near))
        near = near[target > 0]
        ok[near] = True
        long[near] = True
    return ok, long


class CandidateSearch:
    """Stages 1-3 over one buffer at one rate. Not thread-safe (one per Demodulator).

    Args:
        timing: the rate's half-bit grid.
        decider: its trellis decides the DF where it decides every bit.
        counts: where `preambles` and `rejected_df` are counted (the Demodulator's).
    """

    def __init__(self, timing: Timing, decider: BitDecider, counts: Counter[str]):
        self.timing = timing
        self.decider = decider
        self.counts = counts
        self._plan = preamble.ScreenPlan.for_timing(timing)
        self._scratch = preamble.Scratch(self._plan)
        self._score_matrix = preamble.score_matrix(timing)
        # The first block's DF bits, each phase's 5 columns padded with 3 zero ones.
        block_matrix = timing.block_matrix
        nph = len(timing.phases)
        df_matrix = np.zeros((block_matrix.shape[0], nph, 8), dtype=np.float32)
        df_matrix[:, :, :BLOCK_BITS] = block_matrix.reshape(-1, nph, BLOCK_BITS)
        self._df_matrix = df_matrix.reshape(-1, nph * 8)
        # Stage 2's windows, also holding the DF head's samples where slicing decides
        # the DF: one gather per start instead of two (both cost mostly cache misses).
        self._head = slice(timing.block_base, timing.block_base + self._df_matrix.shape[0])
        self._window = self._score_matrix.shape[1]
        if not decider.trellis_all:
            self._window = max(self._window, self._head.stop)
        # Stage 2's strict preamble SNR: lower where replies straddle samples (2.0 MS/s).
        self._strict_snr = np.float32(
            preamble.MIN_PREAMBLE_SNR_2000
            if timing.rate == 2_000_000
            else preamble.MIN_PREAMBLE_SNR
        )

    def find(
        self, buf: np.ndarray, floor: np.ndarray, fit: int, lo: int, decide: int
    ) -> Pairs | None:
        """The pairs of `buf` worth deciding, None when there are none.

        Args:
            floor: noise.floor(buf).
            fit: starts below this have a whole long reply inside buf.
            lo, decide: starts in [lo, decide) are this call's to decide and count;
                the others are only context for them.
        """
        s = preamble.screen(buf, self._plan, fit, floor, NOISE_WINDOW, self._scratch)
        if s.size == 0:
            return None
        rows, good, level, weak, heads = self._scores(buf, s, floor)
        cap = max(1, buf.size * MAX_STARTS_PER_MSAMPLE // 1_000_000)
        if rows.size > cap:
            keep = strongest(level.max(axis=1), cap)
            ours = (s[rows] >= lo) & (s[rows] < decide)  # counted once, by their call
            self.counts["preambles_skipped"] += int(np.count_nonzero(ours)) - int(
                np.count_nonzero(ours[keep])
            )
            rows, good, level, weak = rows[keep], good[keep], level[keep], weak[keep]
            heads = heads[keep] if heads is not None else None
        s = s[rows]

        mine = (s >= lo) & (s < decide)
        self.counts["preambles"] += _clusters(s[mine])
        # From here on one entry per (row, phase) pair that passed stage 2, row-major
        # (ascending time): the DF check works on these (about a third of all phases).
        flat = np.flatnonzero(good)
        nph = good.shape[1]
        r, p = np.divmod(flat, nph)
        pair_weak = weak.ravel().take(flat)
        # DF (the first BLOCK_BITS = 5 bits) of every pair before slicing the rest.
        if heads is not None:
            # Each phase's 5 DF bits padded to a byte, packed: one byte (DF << 3) each
            # (every phase of a row in one product: cheaper than one per pair).
            head = heads @ self._df_matrix
            head_df = np.packbits(head > 0).take(flat) >> 3
            df_bits = head.reshape(-1, 8)
            ok, long = _acceptable_df(head_df, pair_weak, lambda i: df_bits[flat[i], :BLOCK_BITS])
        else:
            head = self.decider.trellis_bits(buf, s, r, p, level, HEAD_BLOCKS)
            head_df = (head[:, :BLOCK_BITS] > 0) @ _DF_WEIGHTS
            ok, _ = _acceptable_df(head_df, pair_weak, lambda i: head[i, :BLOCK_BITS])
            long = np.ones_like(ok)  # the trellis decides every bit anyway
        keep = np.flatnonzero(ok)
        r, p, long, weak = r[keep], p[keep], long[keep], pair_weak[keep]
        # The rows with an acceptable pair, and each pair's index among them.
        first, which = runs(r)
        rows = r[first]
        self.counts["rejected_df"] += int(np.count_nonzero(mine)) - int(
            np.count_nonzero(mine[rows])
        )
        if rows.size == 0:
            return None
        s, level, mine = s[rows], level[rows], mine[rows]
        r = which
        # Rows within 2 samples of each other belong to one preamble (its cluster).
        cluster = np.concatenate(([0], np.cumsum(np.diff(s) > 2)))[r]
        return Pairs(s, level, mine, r, p, weak, long, cluster)

    def _scores(
        self, buf: np.ndarray, s: np.ndarray, floor: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Stage 2 (preamble.phase_scores) of the screened starts `s`, in chunks of
        SCORE_CHUNK starts: each chunk's product and tests stay in the CPU cache, and
        the temporaries (about 250 bytes per start) stay small whatever the block.

        Also the DF head samples of the kept starts (rows, head width), taken from the
        same windows, where slicing decides the DF (None where the trellis does)."""
        head = None if self.decider.trellis_all else self._head
        # At most PHASES_PER_PREAMBLE phases per start, best preamble SNR first: the
        # others decode the same reply less cleanly (or not at all) and cost slicing.
        max_phases = 0 if self.decider.trellis_all else PHASES_PER_PREAMBLE
        parts = []
        for a in range(0, s.size, SCORE_CHUNK):
            chunk = s[a : a + SCORE_CHUNK]
            fl = floor.take(chunk // NOISE_WINDOW, mode="clip")  # past the last: the last
            # Survivors' preamble samples as contiguous rows: stage 2 is a matrix product.
            win = slicer.gather(buf, chunk, self._window)
            rows, good, level, weak = preamble.phase_scores(
                win, self._score_matrix, self.timing, fl, self._strict_snr, max_phases
            )
            heads = win[rows, head] if head is not None else None
            parts.append((rows + a, good, level, weak, heads))
        if len(parts) == 1:
            return parts[0]
        rows, good, level, weak, heads = zip(*parts, strict=True)
        return (
            np.concatenate(rows),
            np.vstack(good),
            np.vstack(level),
            np.vstack(weak),
            np.vstack(heads) if head is not None else None,
        )
