"""Stage 4: the bits of many (start, phase) pairs at once, their CRC class and repair.

Each pair's bits are decided by one of three deciders: first-minus-second slicing
(slicer.py, one matrix product per phase), the magnitude trellis (trellis.py: every
bit with its neighbours in view, for replies that straddle samples) or the coherent
trellis (coherent.py, in I/Q). Which one, by rate:

    2.4 MS/s  slicing; with retry_weak, the magnitude trellis again for weak replies
              slicing could not decode
    2.0 MS/s  the magnitude trellis for every pair (a reply is as likely to straddle
              samples as not, and slicing fails there); then, when the source gives
              I/Q, the coherent trellis for the pairs it could not decode

The decisions are then packed into bytes, their CRC syndromes computed in numpy and
classed by agent/verify.py's rules (classify), and the undecoded ones repaired
(repair.py) where the syndrome and the least certain bits allow it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from agent import crc, verify
from agent.demod import coherent, repair, slicer, trellis
from agent.demod.timing import BLOCK_BITS, LONG_BITS, SHORT_BITS, Timing
from agent.verify import ADDRESSED, INVALID, SELF_CHECKED

# Data blocks sliced for a long reply (BLOCK_BITS bits each), and for the DF check
# with the trellis (which decides the DF better with the next bits in view).
LONG_BLOCKS = -(-LONG_BITS // BLOCK_BITS)
HEAD_BLOCKS = 2
# Rates (samples per second) whose bits are all decided by the trellis: at 2.0 MS/s a
# reply is as likely to straddle samples as not, and first-minus-second slicing fails
# there. At other rates slicing decides first and the trellis retries weak replies.
TRELLIS_ALL_RATES = frozenset((2_000_000,))
# The retry is for weak replies (preamble.WEAK_LEVEL: about 12 dB SNR, above which
# slicing already recovers every burst of bench/bursts.py).
# Of those, the rates where weak replies are retried in I/Q (coherent.py) when the
# source passes the complex samples along (process_raw does).
COHERENT_RATES = frozenset((2_000_000,))
# Bits repaired in a coherent retry's decode (bench/demod.py's 2.0 MS/s sweep, 3-bit
# default): 90 % of bursts at 8.9 dB with 1, 8.6 with 2, 8.5 with 3, which also let
# one false DF17 through (3 bits at 5 dB) in 21,000 bursts.
COHERENT_REPAIR_BITS = 2
# Coherent retries per million samples of a buffer: real recordings need about 2,000;
# random pulses asked for 40,000 (most of the CPU they cost). Beyond the cap the most
# confident pairs go again; the rest are counted as retries_skipped.
MAX_RETRIES_PER_MSAMPLE = 8_192
# Most pairs one trellis (or coherent trellis) call works on: its arrays grow with the
# pairs (about 10 kB each), and a buffer of random pulses has 100,000 of them.
CHUNK_PAIRS = 8_192

# DFs one bit from DF17 or DF18, acceptable or not: the only ones _repair_df can repair.
ONE_FROM_ES_TABLE = np.zeros(32, dtype=bool)
ONE_FROM_ES_TABLE[[d ^ (1 << b) for d in (17, 18) for b in range(5)]] = True


def runs(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ascending row numbers r (one per pair): which entries start a new row, and
    each entry's index among the distinct rows."""
    first = np.ones(r.size, dtype=bool)
    first[1:] = r[1:] != r[:-1]
    return first, np.cumsum(first) - 1


def _clusters_with(cluster: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per pair: whether any pair of its cluster (ids non-decreasing) has `mask` set."""
    flagged = np.zeros(cluster[-1] + 1, dtype=bool)
    flagged[cluster[mask]] = True
    return flagged[cluster]


def _best_per_cluster(cluster: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Index of the highest-scored entry of each cluster (cluster ids non-decreasing)."""
    order = np.lexsort((-score, cluster))
    head = np.ones(order.size, dtype=bool)
    head[1:] = cluster[order][1:] != cluster[order][:-1]
    return np.sort(order[head])


@dataclass(slots=True)
class Pairs:
    """The (start, phase) pairs worth deciding (stages 1-3), row-major: ascending time.

    A row is a start sample, a pair one of its phases.
    """

    s: np.ndarray  # (rows,) start sample, relative to the buffer
    level: np.ndarray  # (rows, phases) float32 mean preamble pulse magnitude
    mine: np.ndarray  # (rows,) bool: start not decided by an earlier call, nor later
    r: np.ndarray  # (pairs,) row of each pair
    p: np.ndarray  # (pairs,) phase index of each pair
    weak: np.ndarray  # (pairs,) bool: weak preamble (preamble.WEAK_LEVEL)
    long: np.ndarray  # (pairs,) bool: slice all LONG_BITS bits
    cluster: np.ndarray  # (pairs,) preamble cluster id (rows within 2 samples), ascending


@dataclass(slots=True)
class Decodes:
    """Per pair: its bit margins and what they decode to (after repair)."""

    soft: np.ndarray  # (pairs, LONG_BITS) float32 margins (> 0: a 1)
    msgs: np.ndarray  # (pairs, 14) uint8 bytes, repairs applied
    df: np.ndarray  # uint8
    is_long: np.ndarray  # bool
    syn: np.ndarray  # uint32 CRC syndrome: 0 when repaired; the address (or IID) if ADDRESSED
    kind: np.ndarray  # int8 class (agent/verify.py: CLEAN_ES ... INVALID)
    fixed: np.ndarray  # int8 bits repaired


class BitDecider:
    """Bits, bytes, syndromes and classes of (start, phase) pairs, for one rate.

    Not thread-safe (one per Demodulator). Args as Demodulator's.
    """

    def __init__(
        self,
        timing: Timing,
        repair_bits: int,
        retry_weak: bool,
        counts: Counter[str] | None = None,
    ):
        self.timing = timing
        self.counts: Counter[str] = counts if counts is not None else Counter()
        self.repair_bits = repair_bits
        self.retry_weak = retry_weak
        self.trellis_all = timing.rate in TRELLIS_ALL_RATES
        self.coherent = (
            coherent.CoherentModel.for_timing(timing) if timing.rate in COHERENT_RATES else None
        )
        self._block_matrix = timing.block_matrix

    @cached_property
    def _trellis_model(self) -> trellis.TrellisModel:
        """Built on first use: at 2.4 MS/s only retry_weak needs it (half of start-up)."""
        return trellis.TrellisModel.for_timing(self.timing)

    def decide(self, buf: np.ndarray, iq: np.ndarray | None, pairs: Pairs) -> Decodes:
        """Every pair decided, retried as the rate asks (see the module docstring).

        Args:
            buf: the magnitudes `pairs` index.
            iq: the same samples as complex64, or None (no coherent retry).
        """
        s, r, p, level, weak, cluster = (
            pairs.s,
            pairs.r,
            pairs.p,
            pairs.level,
            pairs.weak,
            pairs.cluster,
        )
        soft = np.empty((r.size, LONG_BITS), dtype=np.float32)
        msgs = np.empty((r.size, 14), dtype=np.uint8)
        df, syn = np.empty(r.size, dtype=np.uint8), np.empty(r.size, dtype=np.uint32)
        is_long = np.empty(r.size, dtype=bool)
        kind, fixed = np.empty(r.size, dtype=np.int8), np.empty(r.size, dtype=np.int8)
        columns = (soft, msgs, df, is_long, syn, kind, fixed)
        # Short formats (DF0/4/5/11) need only 56 bits sliced; the rest stay 0.
        long_rows, short_rows = np.flatnonzero(pairs.long), np.flatnonzero(~pairs.long)
        soft[short_rows, SHORT_BITS:] = 0
        groups = ((long_rows, LONG_BITS), (short_rows, SHORT_BITS))
        self._slice(buf, iq, s, r, p, level, weak, groups, columns)
        if self.retry_weak and not self.trellis_all:
            # Weak replies that first-minus-second slicing could not decode: again with
            # the trellis, the most confident pair of each cluster with no decode at all.
            # Only formats with their own CRC (a retry is judged by it alone), DF as sliced.
            decoded = _clusters_with(cluster, kind != INVALID)
            retry = np.flatnonzero(
                (kind == INVALID) & verify.SELF_CHECKING_TABLE[df] & weak & ~decoded
            )
            if retry.size:
                conf = np.abs(soft[retry]).mean(axis=1)
                retry = retry[_best_per_cluster(cluster[retry], conf)]
                groups = ((retry, LONG_BITS),)
                self._slice(buf, iq, s, r, p, level, weak, groups, columns, trellis=True)
        if iq is not None and self.coherent is not None:
            # The magnitude trellis first: on real recordings it decodes a few replies
            # the coherent one does not (all 18 on phwl_x-1 against 14 in I/Q alone;
            # carrier drift within a reply, perhaps). Then, in I/Q, the weak pairs it
            # could not decode: that is where the coherent trellis gains (about 3 dB,
            # bench/demod.py).
            # And strong pairs that read as DF11/17/18 in a reply nothing decoded: the
            # magnitude trellis misreads a few strong replies that straddle samples by
            # about half (0.1-0.6 % of the 15-19 dB bursts; none lost in I/Q).
            strong = ~_clusters_with(cluster, kind >= SELF_CHECKED) & verify.SELF_CHECKING_TABLE[df]
            retry = np.flatnonzero((kind == INVALID) & (weak | strong))
            cap = max(1, buf.size * MAX_RETRIES_PER_MSAMPLE // 1_000_000)
            if retry.size > cap:  # the most confident go again, as many as the cap
                conf = np.abs(soft[retry]).mean(axis=1)
                skipped = np.ones(retry.size, dtype=bool)
                skipped[np.argpartition(conf, conf.size - cap)[conf.size - cap :]] = False
                # Counted by the call that decides them (the others are context).
                self.counts["retries_skipped"] += int(
                    np.count_nonzero(pairs.mine[r[retry[skipped]]])
                )
                retry = retry[~skipped]
            if retry.size:
                groups = ((retry, LONG_BITS),)
                self._slice(buf, iq, s, r, p, level, weak, groups, columns, coherent=True)
        return Decodes(soft, msgs, df, is_long, syn, kind, fixed)

    def _slice(
        self,
        buf: np.ndarray,
        iq: np.ndarray | None,
        s: np.ndarray,
        r: np.ndarray,
        p: np.ndarray,
        level: np.ndarray,
        weak: np.ndarray,
        groups: tuple[tuple[np.ndarray, int], ...],
        columns: tuple[np.ndarray, ...],
        *,
        trellis: bool = False,
        coherent: bool = False,
    ) -> None:
        """Bit margins and decodes of the pairs of every (idx, nbits) group, written into
        `columns` at those idx.

        The coherent trellis decides the bits when asked (`coherent`, from the I/Q);
        the magnitude trellis at TRELLIS_ALL_RATES, or when asked; slicing otherwise,
        of the group's first `nbits` bits (the rest of a short frame's row is left as
        it is, 0). All groups are decoded together: decode works row by row, and one
        call instead of one per group saves its fixed cost per block.
        """
        for idx, nbits in groups:
            if idx.size == 0:
                continue
            if coherent:
                assert iq is not None
                columns[0][idx] = self.coherent_bits(iq, s, r[idx], p[idx])
            elif trellis or self.trellis_all:
                soft = self.trellis_bits(buf, s, r[idx], p[idx], level, LONG_BLOCKS)
                columns[0][idx] = soft[:, :LONG_BITS]
            else:
                slicer.pair_margins(
                    buf, s[r[idx]], p[idx], self._block_matrix, self.timing, nbits, columns[0], idx
                )
        idx = np.concatenate([idx for idx, _ in groups])
        if idx.size == 0:
            return
        most = min(self.repair_bits, COHERENT_REPAIR_BITS) if coherent else self.repair_bits
        if idx.size == columns[0].shape[0]:
            # Every row (the groups' rows are distinct): decoded in row order, which is
            # the same row by row, without gathering the margins and scattering back.
            decoded = self.decode(columns[0], weak, most)
            for whole, part in zip(columns[1:], decoded, strict=True):
                whole[...] = part
            return
        soft = columns[0][idx]
        for whole, part in zip(columns[1:], self.decode(soft, weak[idx], most), strict=True):
            whole[idx] = part

    def decode(
        self, soft: np.ndarray, weak: np.ndarray, most: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Bytes (repaired), DF, length, syndrome, class and bits repaired per margin row.

        The syndrome of a repaired row is 0; of an ADDRESSED row, the address (or IID).
        `weak` marks rows from weak preambles, the only ones repaired in more than one
        bit; `most` bits at most (the DF bit of _repair_df included).
        """
        # (k, 14). Rows of whole bytes (LONG_BITS) pack alike flat, where packbits is
        # three times as fast as along axis 1.
        ones = soft > 0
        if ones.shape[1] % 8 == 0:
            msgs = np.packbits(ones).reshape(ones.shape[0], -1)
        else:
            msgs = np.packbits(ones, axis=1)
        df = msgs[:, 0] >> 3
        is_long = df >= 16
        syn = np.empty(df.size, dtype=np.uint32)
        for rows, nbytes in ((np.flatnonzero(is_long), 14), (np.flatnonzero(~is_long), 7)):
            if rows.size:
                syn[rows] = crc.syndromes(msgs[rows, :nbytes])
        kind = verify.classify(df, syn)
        fixed = np.zeros(df.size, dtype=np.int8)
        es = (df == 17) | (df == 18)
        for rows, nbits, limit in (
            (np.flatnonzero(es & (kind == INVALID)), LONG_BITS, most),
            # A DF11 syndrome up to DF11_MAX_IID is an IID, never "repaired" to IID 0.
            (np.flatnonzero((df == 11) & (syn > verify.DF11_MAX_IID)), SHORT_BITS, 1),
        ):
            if rows.size == 0:
                continue
            bits, count = repair.find(syn[rows], soft[rows], nbits, limit, weak[rows])
            done = count > 0
            rows, bits = rows[done], bits[done]
            repair.apply(msgs, rows, bits)
            fixed[rows] = count[done]
            syn[rows] = 0
            kind[rows] = verify.repaired_class(count[done])
        self._repair_df(msgs, df, is_long, syn, kind, fixed, soft, weak, most)
        return msgs, df, is_long, syn, kind, fixed

    def _repair_df(
        self,
        msgs: np.ndarray,
        df: np.ndarray,
        is_long: np.ndarray,
        syn: np.ndarray,
        kind: np.ndarray,
        fixed: np.ndarray,
        soft: np.ndarray,
        weak: np.ndarray,
        most: int,
    ) -> None:
        """Weak undecoded rows one DF bit from DF17/18: that bit plus up to most - 1
        others (the DF bit counts towards `most`). In place."""
        rows = np.flatnonzero(weak & ((kind == INVALID) | ((kind == ADDRESSED) & (df != 11))))
        # Only a DF one bit from DF17/18 can be repaired (the others have no target).
        rows = rows[ONE_FROM_ES_TABLE.take(df[rows])]
        if rows.size == 0:
            return
        target, bit = repair.extended_squitter_df(df[rows], soft[rows, :5])
        rows, bit = rows[target > 0], bit[target > 0]
        if rows.size == 0:
            return
        trial = msgs[rows].copy()
        trial[:, 0] ^= (0x80 >> bit).astype(np.uint8)
        tsyn = crc.syndromes(trial)
        count = np.where(tsyn == 0, 0, -1).astype(np.int8)
        more = np.flatnonzero(tsyn != 0)
        if most > 1 and more.size:
            bits, extra = repair.find(
                tsyn[more], soft[rows[more]], LONG_BITS, most - 1, weak[rows[more]]
            )
            found = extra > 0
            repair.apply(trial, more[found], bits[found])
            count[more[found]] = extra[found]
        ok = count >= 0
        rows, trial = rows[ok], trial[ok]
        msgs[rows] = trial
        df[rows] = trial[:, 0] >> 3
        is_long[rows] = True
        syn[rows] = 0
        fixed[rows] = count[ok] + 1
        kind[rows] = verify.repaired_class(fixed[rows])

    def trellis_bits(
        self,
        buf: np.ndarray,
        s: np.ndarray,
        r: np.ndarray,
        p: np.ndarray,
        level: np.ndarray,
        nblocks: int,
    ) -> np.ndarray:
        """Trellis margins (k, nblocks * BLOCK_BITS) of the (row r, phase p) pairs."""
        if r.size > CHUNK_PAIRS:  # bounded memory, the same margins
            return np.concatenate(
                [
                    self.trellis_bits(
                        buf, s, r[k : k + CHUNK_PAIRS], p[k : k + CHUNK_PAIRS], level, nblocks
                    )
                    for k in range(0, r.size, CHUNK_PAIRS)
                ]
            )
        model = self._trellis_model
        first, which = runs(r)  # r is ascending: branch sums once per distinct row
        sums = trellis.branch_sums(buf, s[r[first]], model, self.timing, nblocks)
        sums = trellis.pair_sums(sums, which, p)
        # Baseline 0 and the preamble's mean pulse as the amplitude: the quiet half-bits
        # of a band-limited preamble catch the pulses' skirts, so their level overstates
        # the baseline (measured: 0 recovers more at 2.0 and 2.4 MS/s than either the
        # quiet level or the noise floor).
        amp = np.maximum(level[r, p], np.float32(1e-6))
        return trellis.soft_bits(sums, p, None, amp, model, nblocks * BLOCK_BITS)

    def coherent_bits(
        self, iq: np.ndarray, s: np.ndarray, r: np.ndarray, p: np.ndarray
    ) -> np.ndarray:
        """Margins (k, LONG_BITS) of the (row r, phase p) pairs from the buffer's I/Q."""
        assert self.coherent is not None
        if r.size > CHUNK_PAIRS:  # bounded memory, the same margins
            return np.concatenate(
                [
                    self.coherent_bits(iq, s, r[k : k + CHUNK_PAIRS], p[k : k + CHUNK_PAIRS])
                    for k in range(0, r.size, CHUNK_PAIRS)
                ]
            )
        first, which = runs(r)
        windows = slicer.gather(iq, s[r[first]], coherent.WINDOW)
        real = coherent.derotate(windows)[which]  # one carrier estimate per start
        return coherent.soft_bits(real, p, self.coherent)
