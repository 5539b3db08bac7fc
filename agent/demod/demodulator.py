"""Magnitude blocks in, verified Mode S frames out.

Work per block, cheapest first so that per-candidate Python only ever sees a handful:
    1. preamble.screen   every sample, a few shifted-array operations
    2. preamble.score    survivors x phases: preamble SNR against its own quiet half-bits
    3. slicer (5 bits)   downlink format must be one the verifier can accept
    4. slicer (112 bits) + vectorised CRC syndromes -> clean / repairable / address-parity
    5. Python, in time order, over the few plausible candidates: overlap resolution,
       1-bit repair, and the shared FrameVerifier as the final gate.

Blocks are joined with a carried-over tail long enough that every reply, and every
candidate that could overlap it, is seen whole in one buffer; decisions are only taken
for candidates far enough from the buffer end, so the output is the same however the
input is split into blocks (tests/test_demod.py checks this).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from agent import crc
from agent.demod import preamble, slicer
from agent.demod.timing import LONG_BITS, SHORT_BITS, Timing
from agent.frame import Frame
from agent.verify import ADDRESS_PARITY_DFS, FrameVerifier

# Candidate time is kept in tenths of a sample (integers): phases are fifths (2.4 MS/s)
# or halves (2.0 MS/s) and half-bits 6/5 or 1 sample, so every boundary is exact and
# overlap decisions cannot depend on float rounding or on where a block was split.
SUB = 10
ACCEPTABLE_DFS = frozenset((0, 4, 5, 11, 16, 17, 18, 20, 21))
_ACCEPTABLE_DF_TABLE = np.zeros(32, dtype=bool)
_ACCEPTABLE_DF_TABLE[list(ACCEPTABLE_DFS)] = True
_ADDRESS_PARITY_TABLE = np.zeros(32, dtype=bool)
_ADDRESS_PARITY_TABLE[list(ADDRESS_PARITY_DFS)] = True
# DF11 parity is CRC XOR the interrogator code: a syndrome this small is an IID (accepted
# for known addresses), not a bit error, so it is never "repaired" to IID 0.
DF11_MAX_IID = 0x7F

# Samples of already-decided context carried into the next buffer (> a phase cluster).
CONTEXT = 16
# (start, phase) pairs sliced per preamble cluster, best preamble SNR first.
PHASES_PER_PREAMBLE = 3

# Noise floor (see Demodulator._floor): mean magnitude of NOISE_SUB-sample pieces, the
# FLOOR_RANK-th lowest of each NOISE_WINDOW (0.4-0.5 ms). Rank 8 of 64 is the 1/8
# quantile: low enough to skip replies, high enough not to chase single quiet pieces.
NOISE_SUB = 16
NOISE_WINDOW = 1024
FLOOR_RANK = 8

# Candidate classes, best first when two candidates overlap (higher wins).
CLEAN_ES = 4  # DF17/18 with syndrome 0
CLEAN_DF11 = 3  # DF11 with syndrome 0
REPAIRED = 2  # DF11/17/18 after a 1-bit syndrome repair
ADDRESSED = 1  # address/parity formats (and DF11 with an IID) from a known address
INVALID = 0

_REPAIR = {bits: crc.single_bit_syndromes(bits) for bits in (SHORT_BITS, LONG_BITS)}
_REPAIR_KEYS = {bits: np.array(sorted(t), dtype=np.uint32) for bits, t in _REPAIR.items()}


@dataclass(slots=True)
class _Candidate:
    """One sliced (start, phase) whose CRC outcome could still make it acceptable."""

    t: int  # absolute start time in SUB units of a sample
    end: int  # absolute end time, same units
    start: int  # integer start sample, relative to the current buffer
    msg: bytes  # as sliced
    df: int
    syn: int
    kind: int  # static part of the class: CLEAN_ES, CLEAN_DF11, REPAIRED or ADDRESSED
    confidence: float  # mean |bit margin|: which of two equal-class decodes is cleaner
    level: float  # preamble pulse magnitude (full scale = 1)


class Demodulator:
    """Mode S demodulator for 2.0 or 2.4 MS/s magnitude streams.

    Not thread-safe: feed blocks from one thread, in order. The verifier is shared state
    (recently confirmed addresses); pass the pipeline's own to keep one view of them.

    Args:
        sample_rate: 2.0e6 or 2.4e6.
        verifier: CRC/address gate; a private one is created when None.
        source: name put on every Frame.
        start_time: receive time of the first sample (seconds).
    Raises:
        ValueError: unsupported sample rate.
    """

    def __init__(
        self,
        sample_rate: float = 2.4e6,
        *,
        verifier: FrameVerifier | None = None,
        source: str = "iq",
        start_time: float = 0.0,
    ):
        self.timing = Timing.for_rate(sample_rate)
        self.sample_rate = float(sample_rate)
        self.verifier = verifier if verifier is not None else FrameVerifier()
        self.source = source
        self.start_time = start_time
        self.counts: Counter[str] = Counter()
        self._tail = np.zeros(0, dtype=np.float32)
        self._base = 0  # absolute index of self._tail[0]
        self._busy_until = 0  # end (SUB units) of the last emitted frame
        self._noise: float | None = None
        t = self.timing
        self._long_len = int(t.frame_samples(LONG_BITS) * SUB)
        self._short_len = int(t.frame_samples(SHORT_BITS) * SUB)
        self._phase_sub = np.array([int(p * SUB) for p in t.phases], dtype=np.int64)
        # Decide a candidate only when everything that could overlap it is in the buffer.
        self._keep = 2 * t.span + CONTEXT
        self._plan = preamble.ScreenPlan.for_timing(t)
        self._lo = 0  # first start sample of the buffer not decided by an earlier call

    @property
    def noise_floor_dbfs(self) -> float | None:
        """Median sample magnitude in dBFS (smoothed over blocks); None before any input."""
        if self._noise is None:
            return None
        return 20.0 * math.log10(max(self._noise, 1e-9))

    def process(self, mag: np.ndarray) -> list[Frame]:
        """Demodulate one block of magnitudes; returns the frames decided so far.

        Frames near the end of the block are held back until the next call (or flush).
        """
        mag = np.asarray(mag, dtype=np.float32)
        if mag.size == 0:
            return []
        self._track_noise(mag)
        buf = np.concatenate((self._tail, mag)) if self._tail.size else mag
        return self._run(buf, final=False)

    def flush(self) -> list[Frame]:
        """Decide everything still held back; call once at end of input."""
        frames = self._run(self._tail, final=True) if self._tail.size else []
        self._base += self._tail.size
        self._tail = np.zeros(0, dtype=np.float32)
        return frames

    def _track_noise(self, mag: np.ndarray) -> None:
        sample = mag[:: max(1, mag.size // 4096)]
        med = float(np.median(sample))
        self._noise = med if self._noise is None else 0.8 * self._noise + 0.2 * med

    def _run(self, buf: np.ndarray, *, final: bool) -> list[Frame]:
        t = self.timing
        n = buf.size
        fit = n - t.span  # starts whose long reply lies wholly inside buf
        # Only starts inside whole noise windows are decided before the final flush.
        decide = fit if final else min(n - self._keep, n // NOISE_WINDOW * NOISE_WINDOW)
        frames: list[Frame] = []
        if fit > 0:
            cands = self._candidates(buf, fit, decide)
            frames = self._resolve(cands, decide)
        if not final:
            # Keep CONTEXT samples already decided so that the next call sees the same
            # neighbourhood (phase clusters) around its first undecided start.
            # The tail starts on an absolute noise-window boundary, one whole window
            # before the first undecided start (which sees CONTEXT samples back), so
            # every floor is recomputed from the same samples whatever the block sizes.
            first = self._base + max(decide, 0) - CONTEXT
            cut = max((first // NOISE_WINDOW - 1) * NOISE_WINDOW - self._base, 0)
            self._lo = max(decide, 0) - cut
            self._tail = buf[cut:].copy()
            self._base += cut
        return frames

    def _candidates(self, buf: np.ndarray, fit: int, decide: int) -> list[_Candidate]:
        """Stages 1-4: every (start, phase) whose decode could pass the verifier."""
        t = self.timing
        pairs = preamble.screen(buf, self._floor(buf, fit), self._plan, t, fit)
        if pairs.size == 0:
            return []
        s, pi = pairs[:, 0], pairs[:, 1]
        snr, level = preamble.score(buf, s, pi, t)
        good = snr >= preamble.MIN_PREAMBLE_SNR
        s, pi, snr, level = s[good], pi[good], snr[good], level[good]
        if s.size == 0:
            return []
        tsub = s * SUB + self._phase_sub[pi]
        # Several neighbouring (start, phase) pairs pass for one preamble: keep the few
        # with the best preamble SNR per cluster rather than slicing them all.
        cid = np.concatenate(([0], np.cumsum(np.diff(tsub) > SUB)))
        order = np.lexsort((-snr, cid))
        first = np.flatnonzero(np.concatenate(([True], np.diff(cid[order]) > 0)))
        rank = np.arange(order.size) - np.repeat(first, np.diff(np.append(first, order.size)))
        sel = np.sort(order[rank < PHASES_PER_PREAMBLE])
        mine = (s >= self._lo) & (s < decide)
        self.counts["preambles"] += int(np.unique(cid[mine]).size)
        s, pi, level = s[sel], pi[sel], level[sel]
        mine = (s >= self._lo) & (s < decide)
        head = slicer.pack(slicer.bit_margins(buf, s, pi, t, 8))[:, 0]
        df = head >> 3
        good = _ACCEPTABLE_DF_TABLE[df]
        self.counts["rejected_df"] += int(np.count_nonzero(~good & mine))
        s, pi, df, level, mine = s[good], pi[good], df[good], level[good], mine[good]
        if s.size == 0:
            return []
        margins = slicer.bit_margins(buf, s, pi, t, LONG_BITS)
        msgs = slicer.pack(margins)
        is_long = df >= 16
        syn = np.where(is_long, crc.syndromes(msgs), crc.syndromes(msgs[:, :7]))
        es = (df == 17) | (df == 18)
        df11 = df == 11
        kind = np.full(df.shape, INVALID, dtype=np.int8)
        kind[_ADDRESS_PARITY_TABLE[df]] = ADDRESSED
        kind[df11 & (syn <= DF11_MAX_IID)] = ADDRESSED
        kind[df11 & (syn > DF11_MAX_IID) & np.isin(syn, _REPAIR_KEYS[SHORT_BITS])] = REPAIRED
        kind[es & np.isin(syn, _REPAIR_KEYS[LONG_BITS])] = REPAIRED
        kind[df11 & (syn == 0)] = CLEAN_DF11
        kind[es & (syn == 0)] = CLEAN_ES
        self.counts["candidates"] += int(np.count_nonzero(mine))
        self.counts["rejected_crc"] += int(np.count_nonzero((kind == INVALID) & mine))
        absm = np.abs(margins)
        conf = np.where(is_long, absm.mean(axis=1), absm[:, :SHORT_BITS].mean(axis=1))
        keep = np.flatnonzero((kind != INVALID) & (s >= self._lo))
        t0 = (s[keep] + self._base) * SUB + self._phase_sub[pi[keep]]
        out = []
        for j, k in enumerate(keep.tolist()):
            nbytes = 14 if is_long[k] else 7
            tj = int(t0[j])
            out.append(
                _Candidate(
                    t=tj,
                    end=tj + (self._long_len if nbytes == 14 else self._short_len),
                    start=int(s[k]),
                    msg=msgs[k, :nbytes].tobytes(),
                    df=int(df[k]),
                    syn=int(syn[k]),
                    kind=int(kind[k]),
                    confidence=float(conf[k]),
                    level=float(level[k]),
                )
            )
        return out

    def _floor(self, buf: np.ndarray, limit: int) -> np.ndarray:
        """Noise floor at each of the first `limit` samples of `buf`.

        Mean magnitudes of NOISE_SUB-sample pieces are ranked within each window of
        NOISE_WINDOW samples; a low-ranked one (FLOOR_RANK) is the window's floor, so
        replies covering most of a window do not raise it. A sample gets the lower of
        its own window's and the previous window's floor. Windows are aligned to
        absolute sample indices (the buffer always starts on a window boundary) and
        pieces are summed in float64, exact for float32 magnitudes: the floor does not
        depend on how the input was split into blocks.
        """
        nsub = buf.size // NOISE_SUB
        sub = buf[: nsub * NOISE_SUB].reshape(nsub, NOISE_SUB).sum(axis=1, dtype=np.float64)
        per = NOISE_WINDOW // NOISE_SUB
        nwin = -(-nsub // per)
        padded = np.full(nwin * per, np.inf)
        padded[:nsub] = sub
        rank = min(FLOOR_RANK, nsub - 1) if nwin == 1 else FLOOR_RANK
        win = np.partition(padded.reshape(nwin, per), rank, axis=1)[:, rank]
        if not np.isfinite(win[-1]):  # a last window with fewer pieces than the rank
            part = np.sort(padded[(nwin - 1) * per : nsub])
            win[-1] = part[min(FLOOR_RANK, part.size - 1)] if part.size else win[-2]
        low = win.copy()
        low[1:] = np.minimum(win[1:], win[:-1])
        floor = (low / NOISE_SUB).astype(np.float32)
        out = np.repeat(floor, NOISE_WINDOW)
        if out.size < limit:  # samples after the last whole piece: previous floor
            out = np.concatenate((out, np.full(limit - out.size, floor[-1], np.float32)))
        return out[:limit]

    def _rx_time(self, t_sub: int) -> float:
        return self.start_time + t_sub / (SUB * self.sample_rate)

    def _class(self, c: _Candidate) -> int:
        """Class of a candidate given what the verifier knows now (no side effects)."""
        if c.kind != ADDRESSED:
            return c.kind
        icao = int.from_bytes(c.msg[1:4], "big") if c.df == 11 else c.syn
        return ADDRESSED if self.verifier.seen_recently(icao, self._rx_time(c.t)) else INVALID

    def _resolve(self, cands: list[_Candidate], decide: int) -> list[Frame]:
        """Stage 5: in time order, keep the best of overlapping candidates and verify it."""
        frames: list[Frame] = []
        for i, c in enumerate(cands):
            if c.start >= decide:
                break
            if c.t < self._busy_until:
                continue
            cls = self._class(c)
            if cls == INVALID:
                if c.kind == ADDRESSED:
                    self.counts["rejected_address"] += 1
                continue
            rank = (cls, c.confidence)
            better = False
            for d in cands[i + 1 :]:
                if d.t >= c.end:
                    break
                if (self._class(d), d.confidence) > rank:
                    better = True
                    break
            if better:
                self.counts["rejected_overlap"] += 1
                continue
            frame = self._frame(c, cls)
            if frame is None:
                continue
            self._busy_until = c.end
            frames.append(frame)
        return frames

    def _frame(self, c: _Candidate, cls: int) -> Frame | None:
        msg, repaired = c.msg, 0
        if cls == REPAIRED:
            msg = crc.flip_bit(msg, _REPAIR[len(msg) * 8][c.syn])
            repaired = 1
        frame = Frame(
            msg,
            self._rx_time(c.t),
            signal_dbfs=round(20.0 * math.log10(max(c.level, 1e-9)), 1),
            source=self.source,
            repaired_bits=repaired,
        )
        if not self.verifier.check(frame).accepted:
            self.counts["rejected_verifier"] += 1
            return None
        if repaired:
            self.counts["repaired"] += 1
        self.counts[f"accepted_df{frame.df}"] += 1
        return frame
