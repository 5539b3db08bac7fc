"""Magnitude blocks in, verified Mode S frames out.

Work per block, cheapest first so that per-candidate Python only ever sees a handful:
    1. preamble.screen        every sample: ~15 shifted-array ops, phase-agnostic
    2. preamble.phase_scores  survivors: one matrix product -> SNR of all phases,
                              plus the noise-floor test
    3. slicer (first block)   downlink format of every phase must be acceptable
    4. slicer (all blocks)    every bit of every phase (one matrix product), vectorised
                              CRC syndromes and classes; the best decode per preamble
                              cluster (class, then mean bit margin)
    5. Python, in time order, over those few: overlap resolution, 1-bit (optionally
       2-bit) repair, and the shared FrameVerifier as the final gate.

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
from numpy.lib.stride_tricks import sliding_window_view

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
CLEAN_ES = 5  # DF17/18 with syndrome 0
CLEAN_DF11 = 4  # DF11 with syndrome 0
REPAIRED = 3  # DF11/17/18 after a 1-bit syndrome repair
REPAIRED2 = 2  # DF17/18 after a 2-bit repair (only with repair_bits=2)
ADDRESSED = 1  # address/parity formats (and DF11 with an IID) from a known address
INVALID = 0

_REPAIR = {bits: crc.single_bit_syndromes(bits) for bits in (SHORT_BITS, LONG_BITS)}
_REPAIR_KEYS = {bits: np.array(sorted(t), dtype=np.uint32) for bits, t in _REPAIR.items()}


def _two_bit_table() -> dict[int, tuple[int, int]]:
    """Syndrome -> (bit, bit) for every 2-bit error in a 112-bit frame outside the DF.

    The CRC is linear, so a 2-bit syndrome is the XOR of two 1-bit ones; Mode S's
    generator has distance 6 at 112 bits, so no two such errors share a syndrome and
    none equals a 1-bit syndrome.
    """
    by_bit = {bit: syn for syn, bit in _REPAIR[LONG_BITS].items()}
    bits = sorted(by_bit)
    return {by_bit[a] ^ by_bit[b]: (a, b) for i, a in enumerate(bits) for b in bits[i + 1 :]}


def _aa_flips(table: dict[int, tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted syndromes and, for each, the XOR its repair applies to the address field."""
    keys = np.array(sorted(table), dtype=np.uint32)
    xor = np.zeros(keys.size, dtype=np.int64)
    for i, k in enumerate(keys.tolist()):
        for bit in table[k]:
            if 8 <= bit < 32:
                xor[i] ^= 1 << (31 - bit)
    return keys, xor


_REPAIR2 = _two_bit_table()
_REPAIR2_KEYS = np.array(sorted(_REPAIR2), dtype=np.uint32)
_AA_FLIPS = {
    REPAIRED: _aa_flips({k: (b,) for k, b in _REPAIR[LONG_BITS].items()}),
    REPAIRED2: _aa_flips(_REPAIR2),
}
# Pairs closer than this (SUB units) belong to one preamble: its phases and neighbours.
CLUSTER_GAP = 2 * SUB


def _clusters(starts: np.ndarray) -> int:
    """Number of runs of start samples with gaps of at most 2 samples."""
    return int(starts.size and 1 + np.count_nonzero(np.diff(starts) > 2))


def _classify(df: np.ndarray, syn: np.ndarray, repair_bits: int) -> np.ndarray:
    """Static candidate class of each decode from its DF and CRC syndrome."""
    es = (df == 17) | (df == 18)
    df11 = df == 11
    kind = np.full(df.shape, INVALID, dtype=np.int8)
    kind[_ADDRESS_PARITY_TABLE[df]] = ADDRESSED
    if repair_bits >= 2:
        kind[es & np.isin(syn, _REPAIR2_KEYS)] = REPAIRED2
    kind[df11 & (syn <= DF11_MAX_IID)] = ADDRESSED
    kind[df11 & (syn > DF11_MAX_IID) & np.isin(syn, _REPAIR_KEYS[SHORT_BITS])] = REPAIRED
    kind[es & np.isin(syn, _REPAIR_KEYS[LONG_BITS])] = REPAIRED
    kind[df11 & (syn == 0)] = CLEAN_DF11
    kind[es & (syn == 0)] = CLEAN_ES
    return kind


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
        repair_bits: 1 repairs one bit in DF11/17/18 (readsb's default); 2 also repairs
            two bits in DF17/18, about half a dB more sensitive at the cost of rare false
            frames (bench/demod.py measures both).
    Raises:
        ValueError: unsupported sample rate or repair_bits.
    """

    def __init__(
        self,
        sample_rate: float = 2.4e6,
        *,
        verifier: FrameVerifier | None = None,
        source: str = "iq",
        start_time: float = 0.0,
        repair_bits: int = 1,
    ):
        if repair_bits not in (1, 2):
            raise ValueError("repair_bits must be 1 or 2")
        self.repair_bits = repair_bits
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
        self._keep = 2 * t.window + CONTEXT
        self._plan = preamble.ScreenPlan.for_timing(t)
        self._score_matrix = preamble.score_matrix(t)
        self._block_matrix = t.block_matrix
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
        if final:  # the block slicer reads a few samples past a long reply's end
            buf = np.concatenate((buf, np.zeros(t.window - t.span, dtype=np.float32)))
            n = buf.size
        fit = n - t.window  # starts whose long reply lies wholly inside buf
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
        """Stages 1-4: per preamble cluster, the best (start, phase) decode that could pass."""
        t = self.timing
        floor = self._floor(buf)
        s = preamble.screen(buf, self._plan, fit, floor, NOISE_WINDOW)
        if s.size == 0:
            return []
        # Survivors' samples as contiguous rows: stages 2-4 are matrix products. Stage 2
        # reads only the preamble's samples; whole replies are copied for its passes.
        pre = sliding_window_view(buf, self._score_matrix.shape[0])[s]
        snr, level, pulse = preamble.phase_scores(pre, self._score_matrix, t)
        fl = floor[np.minimum(s // NOISE_WINDOW, floor.size - 1)]
        good = (snr >= preamble.MIN_PREAMBLE_SNR) & (
            pulse > np.float32(preamble.FLOOR_SNR) * fl[:, None]
        )
        rows = np.flatnonzero(good.any(axis=1))
        mine = (s[rows] >= self._lo) & (s[rows] < decide)
        self.counts["preambles"] += _clusters(s[rows][mine])
        s, good, level = s[rows], good[rows], level[rows]
        win = sliding_window_view(buf, t.window)[s]
        # DF from the first data block of every phase, before slicing the rest.
        head = slicer.pack(slicer.block_margins(win, self._block_matrix, t, 8))[..., 0]
        good &= _ACCEPTABLE_DF_TABLE[head >> 3]
        rows = np.flatnonzero(good.any(axis=1))
        self.counts["rejected_df"] += int(np.count_nonzero(mine)) - int(
            np.count_nonzero(mine[rows])
        )
        if rows.size == 0:
            return []
        s, win, good, level, mine = s[rows], win[rows], good[rows], level[rows], mine[rows]
        margins = slicer.block_margins(win, self._block_matrix, t, LONG_BITS)
        msgs = slicer.pack(margins)  # (n, phases, 14)
        df = msgs[:, :, 0] >> 3
        is_long = df >= 16
        flat = msgs.reshape(-1, 14)
        syn = np.where(is_long.ravel(), crc.syndromes(flat), crc.syndromes(flat[:, :7])).reshape(
            df.shape
        )
        kind = _classify(df, syn, self.repair_bits)
        kind[~good] = INVALID
        ok = kind != INVALID
        self.counts["candidates"] += int(np.count_nonzero(mine))
        self.counts["rejected_crc"] += int(np.count_nonzero(mine & ~ok.any(axis=1)))
        self._drop_unknown_addresses(kind, df, syn, msgs, s)
        r, p = np.nonzero(kind != INVALID)  # row-major: ascending time
        if r.size == 0:
            return []
        absm = np.abs(margins[r, p])
        long_r = is_long[r, p]
        conf = np.where(long_r, absm.mean(axis=1), absm[:, :SHORT_BITS].mean(axis=1))
        # One decode per preamble: neighbouring (start, phase) pairs are the same reply.
        tsub = s[r] * SUB + self._phase_sub[p]
        cid = np.concatenate(([0], np.cumsum(np.diff(tsub) > CLUSTER_GAP)))
        order = np.lexsort((conf, kind[r, p], cid))
        last = order[np.flatnonzero(np.append(np.diff(cid[order]) > 0, True))]
        last = last[s[r[last]] >= self._lo]
        out = []
        for k in last.tolist():
            i, ph = int(r[k]), int(p[k])
            tj = int(tsub[k]) + self._base * SUB
            nbytes = 14 if long_r[k] else 7
            out.append(
                _Candidate(
                    t=tj,
                    end=tj + (self._long_len if nbytes == 14 else self._short_len),
                    start=int(s[i]),
                    msg=msgs[i, ph, :nbytes].tobytes(),
                    df=int(df[i, ph]),
                    syn=int(syn[i, ph]),
                    kind=int(kind[i, ph]),
                    confidence=float(conf[k]),
                    level=float(level[i, ph]),
                )
            )
        return out

    def _drop_unknown_addresses(
        self, kind: np.ndarray, df: np.ndarray, syn: np.ndarray, msgs: np.ndarray, s: np.ndarray
    ) -> None:
        """Mark address/parity decodes INVALID unless their address could be known.

        "Could be": trusted by the verifier now (tested at the buffer's earliest time, the
        most permissive), or confirmed by a clean or repaired DF11/17 decode anywhere in
        this buffer. A superset of what _resolve will accept, so the per-cluster choice
        never prefers a decode that is certain to be refused over one that may pass.
        """
        addressed = kind == ADDRESSED
        if not addressed.any():
            return
        aa = (
            (msgs[:, :, 1].astype(np.int64) << 16)
            | (msgs[:, :, 2].astype(np.int64) << 8)
            | msgs[:, :, 3].astype(np.int64)
        )
        repaired = (kind == REPAIRED) | (kind == REPAIRED2)
        confirming = (kind == CLEAN_ES) | (kind == CLEAN_DF11) | (repaired & (df == 17))
        fixed = aa[confirming]
        for cls, (keys, xor) in _AA_FLIPS.items():
            sel = kind[confirming] == cls
            if sel.any():
                at = np.minimum(np.searchsorted(keys, syn[confirming][sel]), keys.size - 1)
                fixed[sel] ^= xor[at]
        icao = np.where(df == 11, aa, syn.astype(np.int64))
        now = self._rx_time((int(s[0]) + self._base) * SUB)
        cand = np.unique(icao[addressed])
        known = [a for a in cand.tolist() if self.verifier.seen_recently(a, now)]
        known_set = np.union1d(np.array(known, dtype=np.int64), fixed)
        kind[addressed & ~np.isin(icao, known_set)] = INVALID

    def _floor(self, buf: np.ndarray) -> np.ndarray:
        """Noise floor (mean magnitude) of each NOISE_WINDOW of `buf`.

        Mean magnitudes of NOISE_SUB-sample pieces are ranked within each window of
        NOISE_WINDOW samples; a low-ranked one (FLOOR_RANK) is the window's floor, so
        replies covering most of a window do not raise it. A window gets the lower of
        its own and the previous window's floor; samples past the last window use the
        last floor. Windows are aligned to absolute sample indices (the buffer always
        starts on a window boundary) and pieces are summed in float64, exact for float32
        magnitudes: the floor does not depend on how the input was split into blocks.
        """
        nsub = buf.size // NOISE_SUB
        if nsub == 0:
            return np.zeros(1, dtype=np.float32)
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
        return (low / NOISE_SUB).astype(np.float32)

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
        elif cls == REPAIRED2:
            for bit in _REPAIR2[c.syn]:
                msg = crc.flip_bit(msg, bit)
            repaired = 2
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
