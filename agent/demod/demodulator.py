"""Magnitude blocks (and I/Q at 2.0 MS/s) in, verified Mode S frames out.

Work per block, cheapest first so that per-candidate Python only ever sees a handful:
    1. preamble.screen        every sample: ~20 shifted-array ops, phase-agnostic
                              (pulses over the quiet gaps' mean and loudest sample;
                              loud ones need really quiet gaps)
    2. preamble.phase_scores  survivors: one matrix product -> SNR of all phases,
                              plus the noise-floor test (looser for weak preambles);
                              at most PHASES_PER_PREAMBLE phases per start go on
    3. slicer (first block)   downlink format of every phase must be acceptable (or,
                              in a weak reply, one bit from DF17/18)
    4. slicer.pair_margins    every bit of each (start, phase) pair, one matrix product
       or trellis.soft_bits   per phase (2.0 MS/s: a trellis decides every bit with
       or coherent.soft_bits  its neighbours in view, in I/Q when the source gives
                              it, else in magnitudes); vectorised CRC syndromes and
                              classes; repair.find flips up to repair_bits uncertain
                              bits; optionally the trellis again for weak replies
                              slicing could not decode; the best decode per preamble
                              cluster (class, then margin)
    5. Python, in time order, over those few: overlap resolution, then the shared
       FrameVerifier's count and address memory (its rules applied here, from the
       numpy-computed syndromes: no check() per frame).

Blocks are joined with a carried-over tail long enough that every reply, and every
candidate that could overlap it, is seen whole in one buffer; decisions are only taken
for candidates far enough from the buffer end, so the output is the same however the
input is split into blocks (tests/test_demod.py checks this).
"""

from __future__ import annotations

import ctypes
import math
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from agent import crc
from agent.demod import coherent, preamble, repair, slicer, trellis
from agent.demod.iq import BYTES_PER_SAMPLE, CONVERTERS, IQ_CONVERTERS
from agent.demod.timing import BLOCK_BITS, LONG_BITS, SHORT_BITS, Timing
from agent.frame import Frame
from agent.verify import ADDRESS_PARITY_DFS, FrameVerifier, add_accepted

# Candidate time is kept in 40ths of a sample (integers): phases are fifths (2.4 MS/s)
# or eighths (2.0 MS/s) and half-bits 6/5 or 1 sample, so every boundary is exact and
# overlap decisions cannot depend on float rounding or on where a block was split.
SUB = 40
ACCEPTABLE_DFS = frozenset((0, 4, 5, 11, 16, 17, 18, 20, 21))
_ACCEPTABLE_DF_TABLE = np.zeros(32, dtype=bool)
_ACCEPTABLE_DF_TABLE[list(ACCEPTABLE_DFS)] = True
_ADDRESS_PARITY_TABLE = np.zeros(32, dtype=bool)
_ADDRESS_PARITY_TABLE[list(ADDRESS_PARITY_DFS)] = True
# Unacceptable DFs one bit from DF17 or DF18 (1, 2, 19, 22, 25, 26): the only ones a
# weak reply's DF repair (repair.extended_squitter_df) can make worth slicing.
# DFs one bit from DF17 or DF18, acceptable or not: the only ones _repair_df can repair.
_ONE_FROM_ES_TABLE = np.zeros(32, dtype=bool)
_ONE_FROM_ES_TABLE[[d ^ (1 << b) for d in (17, 18) for b in range(5)]] = True
_NEAR_ES_TABLE = _ONE_FROM_ES_TABLE & ~_ACCEPTABLE_DF_TABLE
_SELF_CHECKING_TABLE = np.zeros(32, dtype=bool)
_SELF_CHECKING_TABLE[[11, 17, 18]] = True
# Bit weights of the 5-bit DF field, for a (..., 5) bool @ weights product.
_DF_WEIGHTS = np.array([16, 8, 4, 2, 1], dtype=np.uint8)
# DF11 parity is CRC XOR the interrogator code: a syndrome this small is an IID (accepted
# for known addresses), not a bit error, so it is never "repaired" to IID 0.
DF11_MAX_IID = 0x7F

# Samples of already-decided context carried into the next buffer (> a phase cluster).
CONTEXT = 16
# (start, phase) pairs sliced per start sample, best preamble SNR first (not at the
# trellis-only rates, whose finer phases each carry a different straddle).
PHASES_PER_PREAMBLE = 2
# Data blocks sliced for a long reply (BLOCK_BITS bits each), and for the DF check
# with the trellis (which decides the DF better with the next bits in view).
_LONG_BLOCKS = -(-LONG_BITS // BLOCK_BITS)
_HEAD_BLOCKS = 2
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

# Noise floor (see Demodulator._floor): mean magnitude of NOISE_SUB-sample pieces, the
# FLOOR_RANK-th lowest of each NOISE_WINDOW (0.4-0.5 ms). Rank 8 of 64 is the 1/8
# quantile: low enough to skip replies, high enough not to chase single quiet pieces.
NOISE_SUB = 16
NOISE_WINDOW = 1024
FLOOR_RANK = 8
# Pieces summed per pass in _floor (512 KB of samples: fits the L2 cache).
FLOOR_RUN = 8192

# Candidate classes, best first when two candidates overlap (higher wins).
CLEAN_ES = 5  # DF17/18 with syndrome 0
CLEAN_DF11 = 4  # DF11 with syndrome 0
REPAIRED = 3  # DF11/17/18 after a 1-bit syndrome repair
REPAIRED2 = 2  # DF17/18 after repairing 2 or more bits (repair_bits >= 2)
ADDRESSED = 1  # address/parity formats (and DF11 with an IID) from a known address
INVALID = 0
# Classes whose syndrome is 0 (as decoded or after repair) in a DF11/17/18 frame.
SELF_CHECKED = REPAIRED2

# Pairs closer than this (SUB units) belong to one preamble: its phases and neighbours.
CLUSTER_GAP = 2 * SUB


def _clusters(starts: np.ndarray) -> int:
    """Number of runs of start samples with gaps of at most 2 samples."""
    return int(starts.size and 1 + np.count_nonzero(np.diff(starts) > 2))


def _acceptable_df(
    df: np.ndarray, weak: np.ndarray, df_margins: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Which sliced DFs (one per (start, phase) pair) are worth slicing the rest of the
    reply for, and which of those must be sliced long (112 bits).

    An acceptable DF, or in a weak reply one whose least certain bit, flipped, makes
    DF17/18 (Demodulator._repair_df may repair it; such a reply is sliced long).
    df_margins(idx) gives the (idx.size, 5) margins of the DF bits of entries idx:
    only those few entries need them.
    """
    ok = _ACCEPTABLE_DF_TABLE.take(df)
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


def _runs(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _reserve(store: np.ndarray, tail: np.ndarray, need: int) -> np.ndarray:
    """`store`, or a larger one (at least doubled) with `tail` copied to its front,
    so that `need` samples fit: a buffer kept across calls (a fresh one per block would
    be allocated and faulted in again every time)."""
    if store.size >= need:
        return store
    grown = np.empty(max(need, 2 * store.size), dtype=store.dtype)
    grown[: tail.size] = tail
    return grown


def _best_per_cluster(cluster: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Index of the highest-scored entry of each cluster (cluster ids non-decreasing)."""
    order = np.lexsort((-score, cluster))
    head = np.ones(order.size, dtype=bool)
    head[1:] = cluster[order][1:] != cluster[order][:-1]
    return np.sort(order[head])


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


def _address(msgs: np.ndarray) -> np.ndarray:
    """The 24-bit AA field (bytes 1-3) of each row of msgs, as int64."""
    return (
        (msgs[:, 1].astype(np.int64) << 16)
        | (msgs[:, 2].astype(np.int64) << 8)
        | msgs[:, 3].astype(np.int64)
    )


def _member(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """values in the sorted array keys (np.isin without sorting the keys every call)."""
    at = np.minimum(np.searchsorted(keys, values), keys.size - 1)
    return keys[at] == values


def _classify(df: np.ndarray, syn: np.ndarray) -> np.ndarray:
    """Class of each decode from its DF and CRC syndrome, before any repair."""
    kind = np.full(df.shape, INVALID, dtype=np.int8)
    kind[_ADDRESS_PARITY_TABLE[df]] = ADDRESSED
    kind[(df == 11) & (syn <= DF11_MAX_IID)] = ADDRESSED
    clean = syn == 0
    kind[clean & ((df == 17) | (df == 18))] = CLEAN_ES
    kind[clean & (df == 11)] = CLEAN_DF11
    return kind


@dataclass(frozen=True)  # no slots: the class attributes are the defaults
class DemodOptions:
    """How hard the demodulator works on weak replies (see Demodulator's arguments).

    Set per IQ source from its URL (`repair=1..3`, `retry=0|1`) or on the command line.
    The default repairs up to three bits: 1.0-1.4 dB more sensitive than readsb's
    one-bit repair at 2.4 MS/s for a few per cent more CPU (bench/demod.py). Its false
    matches are rare (bench/demod.py counts them) and harmless downstream: a frame
    repaired in more than one bit only counts for an address another frame has
    confirmed (agent/verify.py).
    """

    repair_bits: int = 3
    retry_weak: bool = False


@dataclass(slots=True)
class _Batch:
    """The best decode of each preamble cluster of one buffer, as parallel lists.

    Plain lists (not one object per candidate): stage 5 is the only per-candidate
    Python and reads them by index.
    """

    t: list[int]  # absolute start time in SUB units of a sample
    end: list[int]  # absolute end time, same units
    start: list[int]  # integer start sample, relative to the current buffer
    rx_time: list[float]
    msg: list[bytes]  # after repair
    repaired: list[int]  # bits repaired
    icao: list[int]  # address a known-address check looks up (ADDRESSED only)
    aa: list[int]  # the AA field (bytes 1-3): the address a clean frame confirms
    df: list[int]
    kind: list[int]  # static part of the class: CLEAN_ES ... ADDRESSED
    confidence: list[float]  # mean |bit margin|: which of two equal-class decodes wins
    dbfs: list[float]  # preamble pulse level in dBFS


# Freed heap glibc keeps for the next block instead of returning it to the kernel.
HEAP_HEADROOM = 16 << 20
_M_TOP_PAD = -2  # mallopt parameter number (glibc malloc.h)
_headroom_done = False


def _keep_heap_headroom() -> None:
    """Ask glibc to keep HEAP_HEADROOM bytes of freed heap (once per process).

    Every block allocates and frees a few MB of numpy temporaries. By default glibc
    returns the freed top of the heap to the kernel and faults it back in on the next
    block: measured, that was about a third of the demodulator's CPU time on a busy
    2.4 MS/s stream (1.7 of 5.7 ms per 256k-sample block). Process-wide, costs at most
    HEAP_HEADROOM of resident memory, and is skipped where there is no glibc.
    """
    global _headroom_done
    if _headroom_done or not sys.platform.startswith("linux"):
        return
    _headroom_done = True
    try:
        ctypes.CDLL(None).mallopt(_M_TOP_PAD, HEAP_HEADROOM)
    except (AttributeError, OSError):  # not glibc (musl has no mallopt)
        pass


class Demodulator:
    """Mode S demodulator for 2.0 or 2.4 MS/s magnitude streams.

    Not thread-safe: feed blocks from one thread, in order. The verifier is shared state
    (recently confirmed addresses); pass the pipeline's own to keep one view of them.

    Args:
        sample_rate: 2.0e6 or 2.4e6.
        verifier: CRC/address gate; a private one is created when None.
        source: name put on every Frame.
        start_time: receive time of the first sample (seconds).
        repair_bits: most bits repaired in one frame (agent/demod/repair.py). 1
            repairs one bit in DF11/17/18 (readsb's default); 2 and 3 also repair two
            or three bits in DF17/18 when all are among the least certain (only in
            weak replies), about 0.6 and 1.0 dB more sensitive at 2.4 MS/s for more
            false frames (bench/demod.py measures each; 3 is DemodOptions' default).
            In weak replies a DF one bit from DF17/18 may be that bit, counted in
            repair_bits.
        retry_weak: at rates where slicing decides first (2.4 MS/s), decide weak
            replies that it could not decode again with the trellis: about 0.2-0.3 dB
            more sensitive for about a fifth more CPU on a busy stream (bench/demod.py).
            At 2.0 MS/s the trellis decides every reply regardless.
    Raises:
        ValueError: unsupported sample rate or repair_bits.

    At COHERENT_RATES, process_raw (or process with `iq`) also has the replies that
    the magnitude trellis could not decode (weak ones, and strong ones that read as
    DF11/17/18) decided from the complex samples (coherent.py); magnitudes alone still
    work, less sensitively.
    """

    def __init__(
        self,
        sample_rate: float = 2.4e6,
        *,
        verifier: FrameVerifier | None = None,
        source: str = "iq",
        start_time: float = 0.0,
        repair_bits: int = DemodOptions.repair_bits,
        retry_weak: bool = False,
    ):
        if not 1 <= repair_bits <= repair.MAX_BITS:
            raise ValueError(f"repair_bits must be 1 to {repair.MAX_BITS}")
        self.repair_bits = repair_bits
        self.retry_weak = retry_weak
        _keep_heap_headroom()
        self.timing = Timing.for_rate(sample_rate)
        self.sample_rate = float(sample_rate)
        self.verifier = verifier if verifier is not None else FrameVerifier()
        self.source = source
        self.start_time = start_time
        self.counts: Counter[str] = Counter()
        self._tail = np.zeros(0, dtype=np.float32)  # a view of the front of _store
        self._store = np.zeros(0, dtype=np.float32)
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
        self._scratch = preamble.Scratch(self._plan)
        self._score_matrix = preamble.score_matrix(t)
        self._block_matrix = t.block_matrix
        # The first block's DF bits, each phase's 5 columns padded with 3 zero ones.
        nph = len(t.phases)
        df_matrix = np.zeros((self._block_matrix.shape[0], nph, 8), dtype=np.float32)
        df_matrix[:, :, :BLOCK_BITS] = self._block_matrix.reshape(-1, nph, BLOCK_BITS)
        self._df_matrix = df_matrix.reshape(-1, nph * 8)
        self._trellis_all = t.rate in TRELLIS_ALL_RATES
        self._coherent = coherent.CoherentModel.for_timing(t) if t.rate in COHERENT_RATES else None
        # I/Q beside the magnitudes (same indices) once a block came with it: tail,
        # store and the buffer being demodulated, as for the magnitudes.
        self._iq_mode: bool | None = None
        self._iq_tail = np.zeros(0, dtype=np.complex64)
        self._iq_store = np.zeros(0, dtype=np.complex64)
        self._iq_buf: np.ndarray | None = None
        # Stage 2's strict preamble SNR: lower where replies straddle samples (2.0 MS/s).
        self._strict_snr = np.float32(
            preamble.MIN_PREAMBLE_SNR_2000 if t.rate == 2_000_000 else preamble.MIN_PREAMBLE_SNR
        )
        self._lo = 0  # first start sample of the buffer not decided by an earlier call

    @property
    def noise_floor_dbfs(self) -> float | None:
        """Median sample magnitude in dBFS (smoothed over blocks); None before any input."""
        if self._noise is None:
            return None
        return 20.0 * math.log10(max(self._noise, 1e-9))

    @cached_property
    def _trellis_model(self) -> trellis.TrellisModel:
        """Built on first use: at 2.4 MS/s only retry_weak needs it (half of start-up)."""
        return trellis.TrellisModel.for_timing(self.timing)

    @property
    def wants_iq(self) -> bool:
        """True where complex samples decide better than magnitudes (COHERENT_RATES)."""
        return self._coherent is not None

    def process_raw(self, raw: bytes | bytearray | memoryview, fmt: str = "uc8") -> list[Frame]:
        """Demodulate raw interleaved I/Q ("uc8" or "sc16"), whole samples only.

        What sources call: it converts to magnitudes, and to complex samples too where
        the demodulator decides in I/Q.
        """
        iq = IQ_CONVERTERS[fmt](raw) if self.wants_iq else None
        # Magnitudes straight into the buffer behind the tail: no block-sized array to
        # allocate, fault in and copy there.
        ntail = self._tail.size
        buf = self._grow(ntail + memoryview(raw).nbytes // BYTES_PER_SAMPLE[fmt])
        CONVERTERS[fmt](raw, out=buf[ntail:])
        return self._process(buf, ntail, iq)

    def process(self, mag: np.ndarray, iq: np.ndarray | None = None) -> list[Frame]:
        """Demodulate one block of magnitudes; returns the frames decided so far.

        Frames near the end of the block are held back until the next call (or flush).

        Args:
            mag: float32 magnitudes (1.0 = full scale).
            iq: the same samples as complex64, used where wants_iq; give it with
                every block or with none (ValueError otherwise).
        """
        mag = np.asarray(mag, dtype=np.float32)
        ntail = self._tail.size
        buf = self._grow(ntail + mag.size)
        buf[ntail:] = mag
        return self._process(buf, ntail, iq)

    def _process(self, buf: np.ndarray, ntail: int, iq: np.ndarray | None) -> list[Frame]:
        """process() of the block buf[ntail:], already behind the tail in buf."""
        mag = buf[ntail:]
        use_iq = iq is not None and self.wants_iq
        if self._iq_mode is None and mag.size:
            self._iq_mode = use_iq
        elif use_iq != self._iq_mode and mag.size:
            raise ValueError("I/Q must come with every block or with none")
        if mag.size == 0:
            return []
        if use_iq and np.shape(iq) != mag.shape:
            raise ValueError("iq and mag must hold the same samples")
        self._track_noise(mag)
        if use_iq:
            self._iq_buf = self._append_iq(np.asarray(iq, dtype=np.complex64))
        return self._run(buf, final=False)

    def _grow(self, need: int) -> np.ndarray:
        """The first `need` samples of the magnitude buffer, the tail in front; the
        caller writes the block behind the tail."""
        self._store = _reserve(self._store, self._tail, need)
        return self._store[:need]

    def _append_iq(self, iq: np.ndarray) -> np.ndarray:
        """The I/Q tail and block side by side, as _grow and process do for magnitudes."""
        ntail = self._iq_tail.size
        self._iq_store = _reserve(self._iq_store, self._iq_tail, ntail + iq.size)
        buf = self._iq_store[: ntail + iq.size]
        buf[ntail:] = iq
        return buf

    def flush(self) -> list[Frame]:
        """Decide everything still held back; call once at end of input."""
        self._iq_buf = self._iq_tail if self._iq_mode else None
        frames = self._run(self._tail, final=True) if self._tail.size else []
        self._base += self._tail.size
        self._tail = np.zeros(0, dtype=np.float32)
        self._iq_tail = np.zeros(0, dtype=np.complex64)
        return frames

    def _track_noise(self, mag: np.ndarray) -> None:
        sample = mag[:: max(1, mag.size // 4096)].copy()
        mid = sample.size // 2
        med = float(np.partition(sample, mid)[mid])  # the upper median: no averaging
        self._noise = med if self._noise is None else 0.8 * self._noise + 0.2 * med

    def _run(self, buf: np.ndarray, *, final: bool) -> list[Frame]:
        t = self.timing
        n = buf.size
        if final:  # the block slicer reads a few samples past a long reply's end
            buf = np.concatenate((buf, np.zeros(t.window - t.span, dtype=np.float32)))
            if self._iq_buf is not None:
                pad = np.zeros(t.window - t.span, dtype=np.complex64)
                self._iq_buf = np.concatenate((self._iq_buf, pad))
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
            if buf.base is self._store:  # the tail moves to the front of the buffer
                self._store[: n - cut] = buf[cut:]  # (overlap-safe: numpy copies via a temporary)
                self._tail = self._store[: n - cut]
            else:
                self._tail = buf[cut:].copy()
            iq = self._iq_buf
            if iq is not None:
                self._iq_store[: n - cut] = iq[cut:]
                self._iq_tail = self._iq_store[: n - cut]
            self._base += cut
        self._iq_buf = None
        return frames

    def _candidates(self, buf: np.ndarray, fit: int, decide: int) -> _Batch | None:
        """Stages 1-4: per preamble cluster, the best (start, phase) decode that could pass."""
        t = self.timing
        floor = self._floor(buf)
        s = preamble.screen(buf, self._plan, fit, floor, NOISE_WINDOW, self._scratch)
        if s.size == 0:
            return None
        # Survivors' preamble samples as contiguous rows: stage 2 is a matrix product.
        pre = slicer.windows(buf, self._score_matrix.shape[0])[s]
        fl = floor[np.minimum(s // NOISE_WINDOW, floor.size - 1)]
        # At most PHASES_PER_PREAMBLE phases per start, best preamble SNR first: the
        # others decode the same reply less cleanly (or not at all) and cost slicing.
        max_phases = 0 if self._trellis_all else PHASES_PER_PREAMBLE
        rows, good, level, weak = preamble.phase_scores(
            pre, self._score_matrix, t, fl, self._strict_snr, max_phases
        )
        s = s[rows]

        mine = (s >= self._lo) & (s < decide)
        self.counts["preambles"] += _clusters(s[mine])
        # From here on one entry per (row, phase) pair that passed stage 2, row-major
        # (ascending time): the DF check works on these (about a third of all phases).
        flat = np.flatnonzero(good)
        nph = good.shape[1]
        r, p = flat // nph, flat % nph
        pair_weak = weak.ravel().take(flat)
        # DF (the first BLOCK_BITS = 5 bits) of every pair before slicing the rest.
        if not self._trellis_all:
            # Each phase's 5 DF bits padded to a byte, packed: one byte (DF << 3) each
            # (every phase of a row in one product: cheaper than one per pair).
            head = slicer.windows(buf, self._df_matrix.shape[0])[s + t.block_base]
            head = head @ self._df_matrix
            head_df = np.packbits(head > 0).take(flat) >> 3
            df_bits = head.reshape(-1, 8)
            ok, long = _acceptable_df(head_df, pair_weak, lambda i: df_bits[flat[i], :BLOCK_BITS])
        else:
            head = self._trellis_bits(buf, s, r, p, level, _HEAD_BLOCKS)
            head_df = (head[:, :BLOCK_BITS] > 0) @ _DF_WEIGHTS
            ok, _ = _acceptable_df(head_df, pair_weak, lambda i: head[i, :BLOCK_BITS])
            long = np.ones_like(ok)  # the trellis decides every bit anyway
        keep = np.flatnonzero(ok)
        r, p, long, weak = r[keep], p[keep], long[keep], pair_weak[keep]
        # The rows with an acceptable pair, and each pair's index among them.
        first, which = _runs(r)
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
        # Bits of every pair (each (start, phase) can be the one that decodes).
        soft = np.empty((r.size, LONG_BITS), dtype=np.float32)
        msgs = np.empty((r.size, 14), dtype=np.uint8)
        df, syn = np.empty(r.size, dtype=np.uint8), np.empty(r.size, dtype=np.uint32)
        is_long = np.empty(r.size, dtype=bool)
        kind, fixed = np.empty(r.size, dtype=np.int8), np.empty(r.size, dtype=np.int8)
        columns = (soft, msgs, df, is_long, syn, kind, fixed)
        # Short formats (DF0/4/5/11) need only 56 bits sliced; the rest stay 0.
        long_rows, short_rows = np.flatnonzero(long), np.flatnonzero(~long)
        soft[short_rows, SHORT_BITS:] = 0
        groups = ((long_rows, LONG_BITS), (short_rows, SHORT_BITS))
        self._slice(buf, s, r, p, level, weak, groups, columns)
        if self.retry_weak and not self._trellis_all:
            # Weak replies that first-minus-second slicing could not decode: again with
            # the trellis, the most confident pair of each cluster with no decode at all.
            # Only formats with their own CRC (a retry is judged by it alone), DF as sliced.
            decoded = _clusters_with(cluster, kind != INVALID)
            retry = np.flatnonzero((kind == INVALID) & _SELF_CHECKING_TABLE[df] & weak & ~decoded)
            if retry.size:
                conf = np.abs(soft[retry]).mean(axis=1)
                retry = retry[_best_per_cluster(cluster[retry], conf)]
                self._slice(buf, s, r, p, level, weak, ((retry, LONG_BITS),), columns, trellis=True)
        if self._iq_buf is not None and self._coherent is not None:
            # The magnitude trellis first: on real recordings it decodes a few replies
            # the coherent one does not (all 18 on phwl_x-1 against 14 in I/Q alone;
            # carrier drift within a reply, perhaps). Then, in I/Q, the weak pairs it
            # could not decode: that is where the coherent trellis gains (about 3 dB,
            # bench/demod.py).
            # And strong pairs that read as DF11/17/18 in a reply nothing decoded: the
            # magnitude trellis misreads a few strong replies that straddle samples by
            # about half (0.1-0.6 % of the 15-19 dB bursts; none lost in I/Q).
            strong = ~_clusters_with(cluster, kind >= SELF_CHECKED) & _SELF_CHECKING_TABLE[df]
            retry = np.flatnonzero((kind == INVALID) & (weak | strong))
            if retry.size:
                groups = ((retry, LONG_BITS),)
                self._slice(buf, s, r, p, level, weak, groups, columns, coherent=True)
        self.counts["candidates"] += int(np.count_nonzero(mine))
        passed = np.zeros(s.size, dtype=bool)
        passed[r[kind != INVALID]] = True
        self.counts["rejected_crc"] += int(np.count_nonzero(mine & ~passed))
        self._drop_unknown_addresses(kind, df, syn, msgs, s[r])
        ok = kind != INVALID
        if not ok.any():
            return None
        r, p, msgs, df, syn, kind, is_long, fixed = (
            x[ok] for x in (r, p, msgs, df, syn, kind, is_long, fixed)
        )
        absm = np.abs(soft[ok])
        # Mean |margin| over the frame's bits: which of two equal-class decodes is cleaner.
        conf = np.where(
            is_long,
            absm.sum(axis=1) / LONG_BITS,
            absm[:, :SHORT_BITS].sum(axis=1) / SHORT_BITS,
        )
        # One decode per preamble: neighbouring (start, phase) pairs are the same reply.
        tsub = s[r] * SUB + self._phase_sub[p]
        last = _best_per_run(np.flatnonzero(np.diff(tsub) > CLUSTER_GAP) + 1, kind, conf)
        last = last[s[r[last]] >= self._lo]
        if last.size == 0:
            return None
        return self._batch(
            s[r[last]],
            tsub[last],
            msgs[last],
            df[last],
            syn[last],
            kind[last],
            fixed[last],
            conf[last],
            is_long[last],
            level[r[last], p[last]],
        )

    def _slice(
        self,
        buf: np.ndarray,
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
        it is, 0). All groups are decoded together: _decode works row by row, and one
        call instead of one per group saves its fixed cost per block.
        """
        for idx, nbits in groups:
            if idx.size == 0:
                continue
            if coherent:
                columns[0][idx] = self._coherent_bits(s, r[idx], p[idx])
            elif trellis or self._trellis_all:
                soft = self._trellis_bits(buf, s, r[idx], p[idx], level, _LONG_BLOCKS)
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
            decoded = self._decode(columns[0], weak, most)
            for whole, part in zip(columns[1:], decoded, strict=True):
                whole[...] = part
            return
        soft = columns[0][idx]
        for whole, part in zip(columns[1:], self._decode(soft, weak[idx], most), strict=True):
            whole[idx] = part

    def _decode(
        self, soft: np.ndarray, weak: np.ndarray, most: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Bytes (repaired), DF, length, syndrome, class and bits repaired per margin row.

        The syndrome of a repaired row is 0; of an ADDRESSED row, the address (or IID).
        `weak` marks rows from weak preambles, the only ones repaired in more than one
        bit; `most` bits at most (the DF bit of _repair_df included).
        """
        msgs = np.packbits(soft > 0, axis=1)  # (k, 14)
        df = msgs[:, 0] >> 3
        is_long = df >= 16
        syn = np.empty(df.size, dtype=np.uint32)
        for rows, nbytes in ((np.flatnonzero(is_long), 14), (np.flatnonzero(~is_long), 7)):
            if rows.size:
                syn[rows] = crc.syndromes(msgs[rows, :nbytes])
        kind = _classify(df, syn)
        fixed = np.zeros(df.size, dtype=np.int8)
        es = (df == 17) | (df == 18)
        for rows, nbits, limit in (
            (np.flatnonzero(es & (kind == INVALID)), LONG_BITS, most),
            (np.flatnonzero((df == 11) & (syn > DF11_MAX_IID)), SHORT_BITS, 1),
        ):
            if rows.size == 0:
                continue
            bits, count = repair.find(syn[rows], soft[rows], nbits, limit, weak[rows])
            done = count > 0
            rows, bits = rows[done], bits[done]
            repair.apply(msgs, rows, bits)
            fixed[rows] = count[done]
            syn[rows] = 0
            kind[rows] = np.where(count[done] == 1, REPAIRED, REPAIRED2)
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
        rows = rows[_ONE_FROM_ES_TABLE.take(df[rows])]
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
        kind[rows] = np.where(fixed[rows] == 1, REPAIRED, REPAIRED2)

    def _trellis_bits(
        self,
        buf: np.ndarray,
        s: np.ndarray,
        r: np.ndarray,
        p: np.ndarray,
        level: np.ndarray,
        nblocks: int,
    ) -> np.ndarray:
        """Trellis margins (k, nblocks * BLOCK_BITS) of the (row r, phase p) pairs."""
        model = self._trellis_model
        first, which = _runs(r)  # r is ascending: branch sums once per distinct row
        sums = trellis.branch_sums(buf, s[r[first]], model, self.timing, nblocks)
        sums = trellis.pair_sums(sums, which, p)
        # Baseline 0 and the preamble's mean pulse as the amplitude: the quiet half-bits
        # of a band-limited preamble catch the pulses' skirts, so their level overstates
        # the baseline (measured: 0 recovers more at 2.0 and 2.4 MS/s than either the
        # quiet level or the noise floor).
        amp = np.maximum(level[r, p], np.float32(1e-6))
        return trellis.soft_bits(sums, p, None, amp, model, nblocks * BLOCK_BITS)

    def _coherent_bits(self, s: np.ndarray, r: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Margins (k, LONG_BITS) of the (row r, phase p) pairs from the buffer's I/Q."""
        assert self._iq_buf is not None and self._coherent is not None
        first, which = _runs(r)
        windows = slicer.windows(self._iq_buf, coherent.WINDOW)[s[r[first]]]
        real = coherent.derotate(windows)[which]  # one carrier estimate per start
        return coherent.soft_bits(real, p, self._coherent)

    def _batch(
        self,
        start: np.ndarray,
        tsub: np.ndarray,
        chosen: np.ndarray,
        df: np.ndarray,
        syn: np.ndarray,
        kind: np.ndarray,
        fixed: np.ndarray,
        conf: np.ndarray,
        is_long: np.ndarray,
        level: np.ndarray,
    ) -> _Batch:
        """The chosen decodes as plain lists, timed and levelled in numpy."""
        syn_out = np.where(kind == ADDRESSED, syn, 0).astype(np.int64)
        aa = _address(chosen)
        icao = np.where(df == 11, aa, syn_out)
        t_abs = tsub + self._base * SUB
        length = np.where(is_long, self._long_len, self._short_len)
        rx = self.start_time + t_abs / (SUB * self.sample_rate)
        dbfs = np.round(20.0 * np.log10(np.maximum(level.astype(np.float64), 1e-9)), 1)
        raw = chosen.tobytes()
        nbytes = np.where(is_long, 14, 7).tolist()
        return _Batch(
            t=t_abs.tolist(),
            end=(t_abs + length).tolist(),
            start=start.tolist(),
            rx_time=rx.tolist(),
            msg=[raw[14 * i : 14 * i + nb] for i, nb in enumerate(nbytes)],
            repaired=fixed.tolist(),
            icao=icao.tolist(),
            aa=aa.tolist(),
            df=df.tolist(),
            kind=kind.tolist(),
            confidence=conf.tolist(),
            dbfs=dbfs.tolist(),
        )

    def _drop_unknown_addresses(
        self, kind: np.ndarray, df: np.ndarray, syn: np.ndarray, msgs: np.ndarray, s: np.ndarray
    ) -> None:
        """Mark address/parity decodes INVALID unless their address could be known.

        "Could be": trusted by the verifier now (tested at the buffer's earliest time, the
        most permissive), or confirmed by a clean or repaired DF11/17 decode anywhere in
        this buffer. A superset of what _resolve will accept, so the per-cluster choice
        never prefers a decode that is certain to be refused over one that may pass.
        """
        addressed = np.flatnonzero(kind == ADDRESSED)
        if addressed.size == 0:
            return
        confirming = np.flatnonzero(
            (kind == CLEAN_ES) | (kind == CLEAN_DF11) | ((kind == REPAIRED) & (df == 17))
        )
        confirmed = _address(msgs[confirming])  # repairs are already applied
        icao = np.where(
            df[addressed] == 11, _address(msgs[addressed]), syn[addressed].astype(np.int64)
        )
        now = self._rx_time((int(s[0]) + self._base) * SUB)
        known = np.array(self.verifier.recent_addresses(now), dtype=np.int64)
        known_set = np.sort(np.concatenate((known, confirmed)))
        if known_set.size == 0:
            kind[addressed] = INVALID
        else:
            kind[addressed[~_member(icao, known_set)]] = INVALID

    def _floor(self, buf: np.ndarray) -> np.ndarray:
        """Noise floor (mean magnitude) of each NOISE_WINDOW of `buf`.

        Mean magnitudes of NOISE_SUB-sample pieces are ranked within each window of
        NOISE_WINDOW samples; a low-ranked one (FLOOR_RANK) is the window's floor, so
        replies covering most of a window do not raise it. A window gets the lower of
        its own and the previous window's floor; samples past the last window use the
        last floor. Windows are aligned to absolute sample indices (the buffer always
        starts on a window boundary) and each piece is summed by the same tree of
        element-wise float32 additions wherever it falls in a buffer: the floor does not
        depend on how the input was split into blocks.
        """
        nsub = buf.size // NOISE_SUB
        if nsub == 0:
            return np.zeros(1, dtype=np.float32)
        # Column by column into one small array: halving the whole buffer pairwise
        # allocated buffer-sized temporaries, whose page faults cost more than the adds.
        # In runs of FLOOR_RUN pieces, so that the sixteen strided passes over a run
        # hit the CPU cache (measured: a fifth less time than passes over the buffer).
        pieces = buf[: nsub * NOISE_SUB].reshape(nsub, NOISE_SUB)
        sub = np.empty(nsub, dtype=np.float32)
        for a in range(0, nsub, FLOOR_RUN):
            run, out = pieces[a : a + FLOOR_RUN], sub[a : a + FLOOR_RUN]
            np.add(run[:, 0], run[:, 1], out=out)
            for c in range(2, NOISE_SUB):
                out += run[:, c]
        per = NOISE_WINDOW // NOISE_SUB
        nwin = -(-nsub // per)
        padded = np.full(nwin * per, np.inf, dtype=np.float32)
        padded[:nsub] = sub
        rank = min(FLOOR_RANK, nsub - 1) if nwin == 1 else FLOOR_RANK
        win = np.partition(padded.reshape(nwin, per), rank, axis=1)[:, rank]
        if not np.isfinite(win[-1]):  # a last window with fewer pieces than the rank
            part = np.sort(padded[(nwin - 1) * per : nsub])
            win[-1] = part[min(FLOOR_RANK, part.size - 1)] if part.size else win[-2]
        low = win.copy()
        low[1:] = np.minimum(win[1:], win[:-1])
        return low * np.float32(1 / NOISE_SUB)

    def _rx_time(self, t_sub: int) -> float:
        return self.start_time + t_sub / (SUB * self.sample_rate)

    def _resolve(self, b: _Batch | None, decide: int) -> list[Frame]:
        """Stage 5: in time order, keep the best of overlapping candidates and verify it.

        A candidate loses to a later one that overlaps it with a better class (or the
        same class and a higher confidence); address/parity decodes only count when the
        verifier knows their address at their own receive time.
        """
        frames: list[Frame] = []
        if b is None:
            return frames
        seen = self.verifier.seen_recently
        confirm = self.verifier.confirm_clean
        counts = self.counts
        t, end, kind, conf, icao, rx = b.t, b.end, b.kind, b.confidence, b.icao, b.rx_time
        # Accepted frames per DF, into the Counters once per batch (not per frame).
        accepted = [0] * 32
        busy = self._busy_until
        n = len(t)
        for i in range(n):
            if b.start[i] >= decide:
                break
            if t[i] < busy:
                continue
            k = kind[i]
            if k == ADDRESSED and not seen(icao[i], rx[i]):
                counts["rejected_address"] += 1
                continue
            e, c = end[i], conf[i]
            j = i + 1
            while j < n and t[j] < e:
                kj = kind[j]
                if (kj > k or (kj == k and conf[j] > c)) and (
                    kj != ADDRESSED or seen(icao[j], rx[j])
                ):
                    break
                j += 1
            else:
                repaired = b.repaired[i]
                frame = Frame(b.msg[i], rx[i], b.dbfs[i], self.source, None, repaired)
                df = b.df[i]
                if k >= SELF_CHECKED:  # the verifier's accept_clean, counted below
                    confirm(df, b.aa[i], repaired, rx[i])
                # Else ADDRESSED, and its address was seen_recently at its own time (above):
                # all that the verifier's check() would ask of it (its length and DF are
                # the decoder's own), so it is counted as accepted without judging it again.
                if repaired:
                    counts["repaired"] += 1
                accepted[df] += 1
                busy = e
                frames.append(frame)
                continue
            counts["rejected_overlap"] += 1
        self.verifier.count_accepted(accepted)
        add_accepted(counts, accepted)
        self._busy_until = busy
        return frames
