"""Stage 5: one decode per preamble, then overlapping replies resolved in time order.

Neighbouring (start, phase) pairs of one preamble are the same reply: the best decode
of each is chosen in numpy (choose). Then, in Python over those few, in time order, a
candidate loses to a later one that overlaps it with a better class, and the winners
go through the shared FrameVerifier's count and address memory: its rules
(agent/verify.py) applied from the numpy-computed classes, with no check() per frame.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from agent import verify
from agent.demod.decide import Decodes, Pairs
from agent.demod.timing import LONG_BITS, SHORT_BITS, Timing
from agent.frame import Frame, frames_from_columns
from agent.verify import ADDRESSED, INVALID, SELF_CHECKED, FrameVerifier, add_accepted

# Candidate time is kept in 40ths of a sample (integers): phases are fifths (2.4 MS/s)
# or eighths (2.0 MS/s) and half-bits 6/5 or 1 sample, so every boundary is exact and
# overlap decisions cannot depend on float rounding or on where a block was split.
SUB = 40
# Pairs closer than this (SUB units) belong to one preamble: its phases and neighbours.
CLUSTER_GAP = 2 * SUB
# Frames carry their arrival on a 12 MHz counter, as Beast and dump1090's --mlat give
# it, wrapping at 48 bits.
TICK_HZ = 12_000_000
TICK_MASK = (1 << 48) - 1
# A message's bytes as one numpy item (see _messages).
_LONG_MSG = np.dtype((np.void, LONG_BITS // 8))
_SHORT_MSG = np.dtype((np.void, SHORT_BITS // 8))


def _best_per_run(breaks: np.ndarray, kind: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Index of the best entry of each run of consecutive entries (runs start at 0 and
    at `breaks`): the highest kind, then the highest conf, then the last.

    What a stable lexsort by (run, kind, conf) keeps as each run's last entry, by
    per-run maxima (reduceat) instead of a sort.
    """
    starts = np.concatenate(([0], breaks))
    run = np.zeros(kind.size, dtype=np.intp)
    run[breaks] = 1
    np.cumsum(run, out=run)
    best = kind == np.maximum.reduceat(kind, starts)[run]
    score = np.where(best, conf, -np.inf).astype(conf.dtype)
    best &= score == np.maximum.reduceat(score, starts)[run]
    return np.maximum.reduceat(np.where(best, np.arange(kind.size), -1), starts)


def _messages(msgs: np.ndarray, is_long: np.ndarray) -> list[bytes]:
    """The (n, 14) byte rows as bytes, 14 long or their first 7.

    Each row taken as one 14-byte void item, whose tolist() gives bytes directly (half
    the time of slicing them out of one bytes object); the short ones replaced after.
    """
    out: list[bytes] = np.ascontiguousarray(msgs).view(_LONG_MSG).ravel().tolist()
    short = np.flatnonzero(~is_long)
    if short.size:
        heads = np.ascontiguousarray(msgs[short, : _SHORT_MSG.itemsize]).view(_SHORT_MSG)
        for i, head in zip(short.tolist(), heads.ravel().tolist(), strict=True):
            out[i] = head
    return out


@dataclass(slots=True)
class Batch:
    """The best decode of each preamble cluster of one buffer, as parallel lists.

    Plain lists (not one object per candidate): resolve is the only per-candidate
    Python and reads them by index.
    """

    t: list[int]  # absolute start time in SUB units of a sample
    end: list[int]  # absolute end time, same units
    start: list[int]  # integer start sample, relative to the current buffer (ascending)
    rx_time: list[float]
    msg: list[bytes]  # after repair
    repaired: list[int]  # bits repaired
    icao: list[int]  # address a known-address check looks up (ADDRESSED only)
    aa: list[int]  # the AA field (bytes 1-3): the address a clean frame confirms
    df: list[int]
    kind: list[int]  # class (agent/verify.py): CLEAN_ES ... ADDRESSED
    confidence: list[float]  # mean |bit margin|: which of two equal-class decodes wins
    dbfs: list[float]  # preamble pulse level in dBFS
    ticks: list[int]  # arrival on the 12 MHz counter (see Resolver.choose)


class Resolver:
    """Chooses and resolves the decodes of a stream's buffers, in order.

    Not thread-safe (one per Demodulator). Args:
        timing: the rate's half-bit grid.
        verifier: the shared FrameVerifier (counts, confirmed addresses).
        counts: the Demodulator's counters (repaired, rejected_*, accepted_df*).
        source: name put on every Frame.
    """

    def __init__(self, timing: Timing, verifier: FrameVerifier, counts: Counter[str], source: str):
        self.verifier = verifier
        self.counts = counts
        self.source = source
        self.sample_rate = float(timing.rate)
        self._long_len = int(timing.frame_samples(LONG_BITS) * SUB)
        self._short_len = int(timing.frame_samples(SHORT_BITS) * SUB)
        self._phase_sub = np.array([int(p * SUB) for p in timing.phases], dtype=np.int64)
        self._busy_until = 0  # end (SUB units) of the last emitted frame
        if TICK_HZ % timing.rate:
            raise ValueError(f"{timing.rate} samples/s is not a whole number of ticks")
        self._ticks_per_sample = TICK_HZ // timing.rate
        self.epoch = 0  # put on every Frame as ticks_epoch

    def choose(
        self, pairs: Pairs, decodes: Decodes, lo: int, base: int, start_time: float
    ) -> Batch | None:
        """Per preamble cluster starting at or after `lo`, the decode that could pass:
        the best class, then the highest confidence; None when there is none.

        Its arrival in ticks is where the first preamble pulse starts, at the sub-sample
        phase chosen with it, on a 12 MHz counter that reads k * j at sample j (k = 5
        at 2.4 MS/s, 6 at 2.0). A sample is an instant (the tuner's filter is centred
        on it) where the bit timing (timing.py) takes sample j as [j, j + 1): hence
        the half sample taken off. Measured on band-limited bursts (bench/demod.py
        --ticks-only): within 2 ticks of the truth for 99.9-100 % of those decoded at
        2.4 MS/s from 4 to 20 dB, 98-99.6 % at 2.0 MS/s.

        Args:
            base: absolute sample index of the buffer's first sample.
            start_time: receive time of absolute sample 0 (seconds).
        """
        ok = np.flatnonzero(decodes.kind != INVALID)
        if ok.size == 0:
            return None
        # What the choice needs, of the decoded pairs only (the rest of the columns
        # only for the chosen few, below).
        r, p, kind, is_long = (
            x.take(ok) for x in (pairs.r, pairs.p, decodes.kind, decodes.is_long)
        )
        absm = np.abs(decodes.soft.take(ok, axis=0))
        # Mean |margin| over the frame's bits: which of two equal-class decodes is cleaner.
        conf = np.where(
            is_long,
            absm.sum(axis=1) / LONG_BITS,
            absm[:, :SHORT_BITS].sum(axis=1) / SHORT_BITS,
        )
        # One decode per preamble: neighbouring (start, phase) pairs are the same reply.
        s = pairs.s
        tsub = s[r] * SUB + self._phase_sub[p]
        last = _best_per_run(np.flatnonzero(np.diff(tsub) > CLUSTER_GAP) + 1, kind, conf)
        last = last[s[r[last]] >= lo]
        if last.size == 0:
            return None
        pick = ok[last]  # the chosen pairs
        r, p, is_long = r[last], p[last], is_long[last]
        chosen, df = decodes.msgs[pick], decodes.df[pick]
        aa = verify.address_field(chosen)
        t_abs = tsub[last] + base * SUB
        length = np.where(is_long, self._long_len, self._short_len)
        rx = start_time + t_abs / (SUB * self.sample_rate)
        k = self._ticks_per_sample
        # round(t_abs / SUB * k - k / 2), half up, in integers: exact at any stream age.
        ticks = (2 * k * t_abs - SUB * (k - 1)) // (2 * SUB) & TICK_MASK
        level = pairs.level[r, p].astype(np.float64)
        dbfs = np.round(20.0 * np.log10(np.maximum(level, 1e-9)), 1)
        return Batch(
            t=t_abs.tolist(),
            end=(t_abs + length).tolist(),
            start=s[r].tolist(),
            rx_time=rx.tolist(),
            msg=_messages(chosen, is_long),
            repaired=decodes.fixed[pick].tolist(),
            # Every chosen decode's syndrome is 0 but an ADDRESSED one's.
            icao=verify.looked_up_address(df, aa, decodes.syn[pick]).tolist(),
            aa=aa.tolist(),
            df=df.tolist(),
            kind=kind[last].tolist(),
            confidence=conf[last].tolist(),
            dbfs=dbfs.tolist(),
            ticks=ticks.tolist(),
        )

    def resolve(self, b: Batch | None, decide: int) -> list[Frame]:
        """In time order, keep the best of overlapping candidates that start before
        `decide` (buffer samples) and verify it.

        A candidate loses to a later one that overlaps it with a better class (or the
        same class and a higher confidence); address/parity decodes only count when the
        verifier knows their address at their own receive time.
        """
        if b is None:
            return []
        verifier = self.verifier
        t, end, kind, conf, icao, rx = b.t, b.end, b.kind, b.confidence, b.icao, b.rx_time
        won: list[int] = []  # the candidates that become frames, in time order
        # Winners handed to the verifier so far. Confirmations go to it in batches (one
        # call, one lock), always before it is next asked about an address: the same
        # answers as one confirm_clean per frame.
        confirmed = 0

        def confirm() -> None:
            nonlocal confirmed
            # ADDRESSED winners are not confirmed: their address was seen_recently at
            # their own time, all that the verifier's check() would ask of them (their
            # length and DF are the decoder's own), so they are counted as accepted
            # without judging them again.
            pending = [
                (b.df[i], b.aa[i], b.repaired[i], rx[i])
                for i in won[confirmed:]
                if kind[i] >= SELF_CHECKED  # the verifier's accept_clean, counted below
            ]
            confirmed = len(won)
            if pending:
                verifier.confirm_clean_many(pending)

        def seen(address: int, at: float) -> bool:
            if confirmed < len(won):
                confirm()
            return verifier.seen_recently(address, at)

        counts = self.counts
        busy = self._busy_until
        n = len(t)
        # Starts are in time order: those from `decide` on are a later call's.
        for i in range(bisect_left(b.start, decide)):
            if t[i] < busy:
                continue
            k = kind[i]
            if k == ADDRESSED and not seen(icao[i], rx[i]):
                counts["rejected_address"] += 1
                continue
            e, c = end[i], conf[i]
            j = i + 1
            while j < n and t[j] < e:  # overlapped by a later candidate (rare)
                kj = kind[j]
                if (kj > k or (kj == k and conf[j] > c)) and (
                    kj != ADDRESSED or seen(icao[j], rx[j])
                ):
                    break
                j += 1
            else:
                busy = e
                won.append(i)
                continue
            counts["rejected_overlap"] += 1
        if confirmed < len(won):
            confirm()
        # Accepted frames per DF, into the Counters once per batch (not per frame).
        accepted = [0] * 32
        df, repaired = b.df, b.repaired
        for i in won:
            accepted[df[i]] += 1
        verifier.count_accepted(accepted)
        add_accepted(counts, accepted)
        fixed = sum(1 for i in won if repaired[i])
        if fixed:
            counts["repaired"] += fixed
        self._busy_until = busy
        # The Frames at the end, column by column (frames_from_columns: a third of the
        # cost of Frame(...) each), with the verifier's verdicts (SourceGate.verdicts).
        verdicts = verifier.verdicts(
            len(won),
            map(b.aa.__getitem__, won),
            map(rx.__getitem__, won),
            map(repaired.__getitem__, won),
        )
        return frames_from_columns(
            len(won),
            msg=map(b.msg.__getitem__, won),
            rx_time=map(rx.__getitem__, won),
            signal_dbfs=map(b.dbfs.__getitem__, won),
            source=repeat(self.source),
            ticks_12mhz=map(b.ticks.__getitem__, won),
            repaired_bits=map(b.repaired.__getitem__, won),
            ticks_epoch=repeat(self.epoch),
            accepted=verdicts,
        )
