"""Finding where replies may start: a cheap screen over every sample, then exact scores.

Stage 1 (`screen`) runs over the whole buffer and is the only per-sample work besides
the magnitude itself, so it is kept to about ten shifted-array operations and does not
depend on the sub-sample phase. A pulse of 1 or 1.2 samples starting anywhere in
[o, o + 1) lies mostly inside one of the two 2-sample windows starting at o or o + 1,
so "the better of those two windows" (one max over a 2-sample running sum) measures
each preamble pulse for every phase at once. The four pulses come as two identical
pairs (half-bits 0/2 and 7/9), so one min builds the pair and a second min the four.
They are compared with the samples that lie in the preamble's quiet gaps whatever the
phase. Pulse-position data is never quiet for more than two half-bits, so the same test
rejects positions inside a reply. Last, near the noise floor, a hit must pass stage 2's
own floor test from above (_peak_pulse: no half-bit's mean exceeds its largest sample):
a window sum flatters flat noise, and this drops most of a quiet site's hits while
provably dropping none that stage 2 would keep.

Stage 2 (`phase_scores`) looks only at the survivors: one matrix product gives the 16
half-bit energies of every phase, and the pulses are measured against the quiet
half-bits of the same preamble, i.e. against the local noise floor, so a weak reply in a
quiet stretch and a strong one beside interference are held to the same standard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agent.demod.timing import PREAMBLE_HALF_BITS, PULSE_HALF_BITS, QUIET_HALF_BITS, Timing

# Stage 1: mean amplitude of the second-weakest pulse's best 2-sample window over the mean
# amplitude of the quiet samples. Loose on purpose (a reply well under 6 dB SNR must
# pass; 1.8 lost 11 % of 6 dB bursts here, 1.6 loses 5 %); stage 2 and the CRC decide.
SCREEN_RATIO = 1.6
# Stage 2: second-weakest pulse amplitude over the noise floor (Demodulator._floor).
FLOOR_SNR = 3.0
# Stage 2: second-weakest pulse energy over the mean of all 12 quiet half-bits.
MIN_PREAMBLE_SNR = 2.2
# The same at 2.0 MS/s, where a reply straddling samples puts half of each pulse's
# energy into the quiet half-bits beside it: 2.2 lost up to 28 % of such replies even
# at 17-19 dB (bench/demod.py), 1.8 none.
MIN_PREAMBLE_SNR_2000 = 1.8
# Stage 2 for weak preambles (mean pulse under WEAK_LEVEL noise floors): both tests
# looser. Near the sensitivity limit most lost replies were lost here (of the 6 dB bursts
# of bench/bursts.py the screen finds, 37 % pass the tests above, 97 % pass these);
# strong preambles, which are most of a busy stream and most of its false starts, keep
# the strict tests.
WEAK_FLOOR_SNR = 2.2
WEAK_PREAMBLE_SNR = 1.5
WEAK_LEVEL = 8.0
# Stage 1: no sample of the preamble's quiet gaps may reach this fraction of the
# second-weakest pulse's half-bit amplitude (its best 2-sample window over the half-bit
# length). A data pulse inside the gaps fills a sample to about the pulse amplitude: this
# rejects most start positions inside a reply, which pass the mean-based test because
# pulse-position data is half high. Weak replies in noise were measured up to about 0.6.
MAX_QUIET_SAMPLE = 0.72
# Stage 1 for pulses over STRONG_FLOORS times what the noise-floor test asks (about
# 10 dB above the weakest preambles): the MAX_QUIET_SAMPLE test at this tighter
# fraction. Measured on modes1_2400 repeated (bench/demod.py's stream): about 5 % less
# CPU, no frame lost; the sweep's bursts are found as before at every level.
STRONG_FLOORS = 8.0
STRONG_MAX_QUIET = 0.4
# Samples screened per strip. A strip costs about 30 numpy calls whatever its size
# (some 20 us), so fewer strips per block pay until the temporaries crowd the cache.
# With four reused temporaries (Scratch, 4 * 4 * STRIP bytes), measured in the
# demodulator on the busy capture and on noise: 131072 about 5 % less screen time
# than 65536, 196608 about 10 % (but 1.3 MB more Scratch, against the run's RSS
# target), 262144 less than 196608. The hits do not depend on it
# (tests/test_screen.py): the floor test's level is per FLOOR_SPAN.
STRIP = 131072
# Strip lengths are rounded up to this many samples (256 bytes: whole cache lines).
STRIP_ROUND = 64
# Starts that share the lowest noise floor of their windows as the screen's floor-test
# level (the strips' length before strips and spans were separate).
FLOOR_SPAN = 65536
# Scratch buffers start on a cache line. numpy's vector loops store whole 32-byte lanes,
# and the heap's arrays are only 16-byte aligned: an output starting mid-lane measured
# 10-30 % slower per operation, about 5 % of the screen.
SCRATCH_ALIGN = 64
# Quiet gaps of the preamble (half-bits 3-6 and 10-15) as [start, end) in half-bits.
_QUIET_GAPS = ((3, 7), (10, 16))
# Stage 2's pulse is a weighted mean computed in float32 (the matrix product): a hit is
# dropped for its pulses' peak samples (see _peak_pulse) only when that bound is this
# much under the noise-floor test's level, so rounding can never drop a passing start.
BOUND_SLACK = 0.999


@dataclass(frozen=True)
class ScreenPlan:
    """Stage-1 geometry, derived once per rate from the half-bit length.

    Attributes:
        pair: samples from pulse 0's window to pulse 2's (and 7's to 9's).
        shift: samples from the first pulse pair's windows to the second's.
        quiet: (offset, length) runs of samples that are quiet for every phase.
        nquiet: number of quiet samples.
        reach: samples needed after a start sample.
        max_scale: factor putting the loudest quiet sample on the scale of the quiet
            sum for the MAX_QUIET_SAMPLE test.
        pulses_at: offset of each pulse's first window (the first of the three
            samples any phase of it covers).
    """

    pair: int
    shift: int
    quiet: tuple[tuple[int, int], ...]
    nquiet: int
    reach: int
    max_scale: np.float32
    pulses_at: tuple[int, ...]

    @classmethod
    def for_timing(cls, timing: Timing) -> ScreenPlan:
        h = timing.half_bit
        # Pulse n starts in [n*h, n*h + 1) for phases in [0, 1): window floor(n*h) or +1.
        o = [math.floor(n * h) for n in PULSE_HALF_BITS]
        if o[1] - o[0] != o[3] - o[2]:
            raise ValueError("preamble pulse pairs do not repeat on the sample grid")
        # Sample k is quiet for every phase when [k, k+1) lies inside the gap for phases
        # up to 1 (start) and from 0 (end).
        samples = [
            k for a, b in _QUIET_GAPS for k in range(math.ceil(a * h + 1), math.floor(b * h))
        ]
        runs: list[tuple[int, int]] = []
        for k in samples:  # greedy runs of up to 3 consecutive samples
            if runs and runs[-1][0] + runs[-1][1] == k and runs[-1][1] < 3:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((k, 1))
        reach = max(o[3] + 3, samples[-1] + 1)
        # qmax < MAX_QUIET_SAMPLE * second / h  <=>  qmax * scale < second * nq / (2 R).
        nq = len(samples)
        scale = np.float32(nq * float(h) / (2 * SCREEN_RATIO * MAX_QUIET_SAMPLE))
        # A half-bit starts in [o, o + 2) (o + frac + phase, both under 1) and is at most
        # 1.2 samples long; at these rates frac + phase + h stays under 3.
        if any(n * h - math.floor(n * h) + max(timing.phases) + h > 3 for n in PULSE_HALF_BITS):
            raise ValueError("a preamble pulse can cover more than three samples")
        return cls(o[1] - o[0], o[2] - o[0], tuple(runs), nq, reach, scale, tuple(o))


def screen(
    mag: np.ndarray,
    plan: ScreenPlan,
    limit: int,
    floor: np.ndarray,
    window: int,
    scratch: Scratch | None = None,
) -> np.ndarray:
    """Start samples in [0, limit) that may hold a preamble at some phase.

    The buffer is screened in strips of STRIP samples so that the temporaries stay
    small and are reused (Scratch): on whole 2.4 MS/s buffers numpy spends most of its
    time faulting in fresh pages for temporaries, not computing.

    Args:
        mag: magnitude buffer; must hold at least limit + plan.reach samples.
        limit: number of start positions to test.
        floor: noise floor (mean magnitude) per `window` samples of `mag`. Each
            FLOOR_SPAN of starts uses the lowest floor it touches, so this test only
            ever passes more than stage 2's exact floor test would.
        scratch: temporaries to reuse (Scratch(plan)); fresh ones when None.
    Returns:
        int64 array of start samples, ascending.
    """
    if limit <= 0:
        return np.zeros(0, dtype=np.int64)
    if scratch is None:
        scratch = Scratch(plan)
    # Stage 2 wants the second-weakest pulse > FLOOR_SNR * floor; a 2-sample window holds
    # at least half of a pulse, so the window mean must beat half that. As a quiet level:
    to_quiet = np.float32(min(FLOOR_SNR, WEAK_FLOOR_SNR) * 0.5 * plan.nquiet / SCREEN_RATIO)
    # Far above the floor, the quiet gaps of a real preamble hold only the pulses'
    # skirts: a loud sample there is another reply's pulse (Mode A/C trains, most of a
    # busy channel's false starts). Judged against each hit's own window floor (not the
    # span's lowest) so that the result does not depend on the blocks. Per window
    # once here: per hit it was most of the screen's time outside the strips.
    loud_level = floor * to_quiet * np.float32(STRONG_FLOORS)
    quiet_ratio = np.float32(STRONG_MAX_QUIET / MAX_QUIET_SAMPLE)
    # The noise-floor test's level: the lowest floor of each FLOOR_SPAN of starts.
    span_level = np.array(
        [
            floor[
                lo // window : min((min(lo + FLOOR_SPAN, limit) - 1) // window + 1, floor.size)
            ].min()
            for lo in range(0, limit, FLOOR_SPAN)
        ],
        dtype=np.float32,
    )
    span_level *= to_quiet
    # Stage 2's second-weakest pulse must beat the looser noise-floor test at some
    # phase; the level its bound (_peak_pulse) is held to, per window, a little lower.
    floor_level = floor * np.float32(min(FLOOR_SNR, WEAK_FLOOR_SNR) * BOUND_SLACK)
    last = floor.size - 1
    # The bound is at least half a window's sum, so windows over twice the level pass
    # for sure (on the scale of the screen's pulses; a little over, for rounding).
    near_scale = np.float32(plan.nquiet / (2 * SCREEN_RATIO) * 2 * 1.001)
    found = []
    # Strips of equal length (whole cache lines): a block's short last strip cost the
    # same 30 calls as a whole one.
    nstrips = -(-limit // STRIP)
    strip = min(-(-limit // nstrips // STRIP_ROUND) * STRIP_ROUND, STRIP)
    for lo in range(0, limit, strip):
        hits, pulses, qmax, peaks = _screen_strip(mag, plan, lo, min(lo + strip, limit), scratch)
        at = hits + lo
        window_of = np.minimum(at // window, last)
        # The noise-floor test and the loud-quiet-sample test, on the hits only.
        keep = pulses > span_level.take(at // FLOOR_SPAN)
        keep &= (pulses <= loud_level.take(window_of)) | (qmax < pulses * quiet_ratio)
        keep = np.flatnonzero(keep)
        # Stage 2's own noise-floor test, from above: a window sum overstates a pulse by
        # up to its weaker sample (noise is flat: most of a quiet site's hits), so near
        # the floor each hit's peak samples and own window's floor decide.
        level = floor_level.take(window_of.take(keep))
        drop = pulses.take(keep) <= level * near_scale  # near the floor, for now
        near = np.flatnonzero(drop)
        if near.size:
            bound = _peak_pulse(peaks, hits.take(keep.take(near)), plan)
            drop[near] = bound <= level.take(near)
            keep = keep[~drop]  # (np.delete took twice as long)
        found.append(at.take(keep))
    return np.concatenate(found)


def _peak_pulse(peaks: np.ndarray, starts: np.ndarray, plan: ScreenPlan) -> np.ndarray:
    """Per start, at least stage 2's second-weakest pulse (mean magnitude) at any phase.

    A half-bit's mean is a weighted mean of the two or three samples it covers, all of
    them among the three from its pulse's first window on, so it is at most their
    largest (`peaks`: the 3-sample maxima of the strip); the second-weakest of the four
    pulses' peaks is then at least the second-weakest pulse, whichever phase.
    """
    a, b, c, d = (peaks.take(starts + k) for k in plan.pulses_at)
    return _second_lowest(a, b, c, d)


class Scratch:
    """Preallocated temporaries of `screen` (keep one across calls: no page faults).

    Four strip-sized buffers, each reused once its value is dead (see _screen_strip):
    with a buffer per temporary (twelve) a strip's working set outgrew the L2 cache,
    and fewer buffers let a strip be longer for the same memory.
    """

    def __init__(self, plan: ScreenPlan):
        size = STRIP + plan.reach
        self.buf = [_aligned_empty(size, np.float32) for _ in range(4)]
        # Whole 8-byte words (see _set_indices): rounded up, plus a spare word.
        self.hits = _aligned_empty(-(-size // 8) * 8 + 8, np.bool_)
        self.word_starts = np.arange(0, self.hits.size, 8, dtype=np.intp)


def _aligned_empty(size: int, dtype: type[np.generic]) -> np.ndarray:
    """An uninitialised array of `size` items whose data starts on SCRATCH_ALIGN bytes."""
    nbytes = size * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + SCRATCH_ALIGN, dtype=np.uint8)
    skip = -raw.ctypes.data % SCRATCH_ALIGN
    return raw[skip : skip + nbytes].view(dtype)


def _screen_strip(
    mag: np.ndarray, plan: ScreenPlan, lo: int, hi: int, w: Scratch
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hits (relative to lo) of one strip's ratio tests, with their scaled pulse and
    loudest quiet sample (on the scale of MAX_QUIET_SAMPLE's test), and the strip's
    3-sample maxima (valid until the next strip: they live in the Scratch)."""
    n = hi - lo
    length = n + plan.reach
    seg = mag[lo : lo + length]
    length = seg.size
    b0, b1, b2, b3 = w.buf
    # The quiet sum, the pulses, then the loudest quiet sample, each phase in the
    # buffers the one before no longer needs: four live buffers.
    s2 = np.add(seg[:-1], seg[1:], out=b0[: length - 1])  # 2-sample windows
    c3 = np.add(s2[:-1], seg[2:], out=b1[: length - 2])  # 3-sample windows
    quiet = b2[:n]
    runs = [(seg, s2, c3)[ln - 1][k : k + n] for k, ln in plan.quiet]
    np.add(runs[0], runs[1], out=quiet)
    for run in runs[2:]:
        quiet += run
    # Second-weakest of the four pulses: all four strong rejects lone interference
    # pulses (Mode A/C, DME), allowing one weak pulse keeps replies whose preamble is
    # partly covered by the end of another reply. The pairs repeat, so the low and high
    # member of each pair are computed once and the network's last stage three times.
    m2 = np.maximum(s2[:-1], s2[1:], out=b1[: length - 2])  # better of j, j+1
    npair = length - 2 - plan.pair
    lo_ = np.minimum(m2[:npair], m2[plan.pair : plan.pair + npair], out=b0[:npair])
    hi_ = np.maximum(m2[:npair], m2[plan.pair : plan.pair + npair], out=b3[:npair])
    # (Not out=hi_: numpy would copy an input that overlaps the output with a shift.)
    top = np.minimum(hi_[:n], hi_[plan.shift : plan.shift + n], out=b1[:n])
    pulses = np.maximum(lo_[:n], lo_[plan.shift : plan.shift + n], out=b3[:n])
    np.minimum(pulses, top, out=pulses)
    # The loudest quiet sample: runs of one or two samples from seg and the 2-sample
    # maxima, then those become the 3-sample maxima in place (the same memory in and
    # out, which numpy does not copy) for the runs of three.
    x2 = np.maximum(seg[:-1], seg[1:], out=b0[: length - 1])
    qmax = b1[:n]
    short = [(seg, x2)[ln - 1][k : k + n] for k, ln in plan.quiet if ln < 3]
    for i, top_run in enumerate(short):
        np.maximum(qmax if i else top_run, top_run, out=qmax)
    x3 = np.maximum(x2[:-1], seg[2:], out=x2[:-1])
    tops = [x3[k : k + n] for k, ln in plan.quiet if ln == 3]
    if not short:
        np.maximum(tops[0], tops[1], out=qmax)
        tops = tops[2:]
    for top_run in tops:
        np.maximum(qmax, top_run, out=qmax)
    # Both tests as one compare: pulses must beat the mean quiet level (SCREEN_RATIO)
    # and the loudest quiet sample (MAX_QUIET_SAMPLE), both scaled to the quiet sum.
    qmax *= plan.max_scale
    np.maximum(quiet, qmax, out=quiet)
    # second-weakest pulse / 2 > SCREEN_RATIO * quiet / nquiet, as one multiply and compare.
    pulses *= np.float32(plan.nquiet / (2 * SCREEN_RATIO))
    np.greater(pulses, quiet, out=w.hits[:n])
    hits = _set_indices(w.hits, n, w.word_starts)
    return hits, pulses.take(hits), qmax.take(hits), x3


def _set_indices(mask: np.ndarray, n: int, word_starts: np.ndarray) -> np.ndarray:
    """np.flatnonzero(mask[:n]) for a sparse mask, by 8-byte words.

    flatnonzero costs about 0.5 ns per entry, set or not; on the screen's masks (about
    one entry in 15 set, in runs) finding the nonzero words first and then the set
    bytes of those few words took 60 % of its time. `mask` (a Scratch buffer) must be
    8-byte aligned with room to round n up to a whole word; the padding is cleared.
    `word_starts` is np.arange(0, mask.size, 8) (Scratch.word_starts).
    """
    whole = -(-n // 8) * 8
    mask[n:whole] = False
    words = mask[:whole].view(np.uint64)
    nonzero = np.flatnonzero(words != 0)  # on a bool array: flatnonzero's fast path
    at = np.flatnonzero(words.take(nonzero).view(np.bool_))
    # A set byte's index among the taken words' bytes, plus how far its word moved in
    # the take: two operations per set entry fewer than rebuilding word and byte.
    moved = nonzero << 3
    moved -= word_starts[: nonzero.size]
    return at + moved.take(at >> 3)


def score_matrix(timing: Timing) -> np.ndarray:
    """Stage-2 weights: matrix @ window gives, per phase, every quantity stage 2 needs.

    Rows, each a block of one row per phase: the 4 pulse energies (one block per
    pulse) and the mean quiet energy (linear in the samples, so one more row). The
    layout makes every later step a contiguous slice; the matrix is stored row-major
    as the product reads it (a transposed view measured 15 % slower).
    """
    pre = timing.preamble_matrix  # (width, phases * 16), phase-major
    nph = len(timing.phases)
    per_phase = pre.reshape(pre.shape[0], nph, PREAMBLE_HALF_BITS)
    cols = [per_phase[:, :, n] for n in PULSE_HALF_BITS]
    cols.append(per_phase[:, :, list(QUIET_HALF_BITS)].mean(axis=2))
    return np.ascontiguousarray(np.concatenate(cols, axis=1).T, dtype=np.float32)


def phase_scores(
    win: np.ndarray,
    matrix: np.ndarray,
    timing: Timing,
    floor: np.ndarray,
    strict_snr: float,
    max_phases: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stage 2: which phases of each candidate pass the preamble tests, for the
    candidates where some phase does.

    A phase passes the strict tests (second-weakest pulse energy at least `strict_snr`
    times the mean quiet energy, its magnitude FLOOR_SNR times the noise floor) or,
    when its mean pulse is under WEAK_LEVEL floors, the weak ones (WEAK_PREAMBLE_SNR,
    WEAK_FLOOR_SNR). Every test runs over all candidates in the transposed layout of
    the product, where each (quantity, phase) is one contiguous row: testing loosely
    first and gathering the survivors' scores (about half of them pass) cost twice as
    much as the tests themselves.

    Args:
        win: (n, >= matrix.shape[1]) magnitudes from each candidate's start sample.
        matrix: score_matrix(timing).
        floor: (n,) noise floor (mean magnitude) at each candidate.
        max_phases: when > 0, of the phases that pass only this many per candidate
            are kept, those of the highest SNR (second-weakest pulse energy over the
            mean quiet energy; ties all kept).
    Returns:
        (rows, good, level, weak): the candidates kept (indices into win), and
        (kept, phases) arrays: `good` which phases pass; `level` (float32) the mean
        pulse magnitude (full scale = 1); `weak` whether level is under WEAK_LEVEL
        noise floors.
    """
    nph = len(timing.phases)
    e = matrix @ win[:, : matrix.shape[1]].T
    a, b, c, d = (e[k * nph : (k + 1) * nph] for k in range(4))
    second = _second_lowest(a, b, c, d)
    h = timing.inverse_half_bit
    snr = np.maximum(e[4 * nph :], np.float32(1e-6))
    np.divide(second, snr, out=snr)
    pulse = np.multiply(second, h, out=second)
    level = np.add(a, b)
    level += np.add(c, d, out=a)  # a is not needed any more
    level *= h / 4
    weak = level < np.float32(WEAK_LEVEL) * floor
    good = snr >= np.float32(strict_snr)
    good &= pulse > np.float32(FLOOR_SNR) * floor
    loose = snr >= np.float32(WEAK_PREAMBLE_SNR)
    loose &= pulse > np.float32(WEAK_FLOOR_SNR) * floor
    loose &= weak
    good |= loose
    rows = np.flatnonzero(np.logical_or.reduce(good, axis=0))
    # The kept columns, still one row per phase (contiguous), then one transposing
    # copy per dtype into the (candidate, phase) rows the caller indexes.
    level = np.take(level, rows, axis=1)
    flags = np.empty((2, nph, rows.size), dtype=bool)
    np.take(good, rows, axis=1, out=flags[0])
    np.take(weak, rows, axis=1, out=flags[1])
    if 0 < max_phases < nph:
        score = np.where(flags[0], np.take(snr, rows, axis=1), np.float32(-1))
        flags[0] &= score >= _kth_largest(score, max_phases)
    good, weak = flags.transpose(0, 2, 1).copy()
    return rows, good, level.T.copy(), weak


def _kth_largest(cols: np.ndarray, k: int) -> np.ndarray:
    """Per column of `cols` (phases, n; no NaN), its k-th largest value, ties counted
    (-inf when there are fewer than k rows).

    A running top-k over the few rows, kept sorted by element-wise min/max (np.partition
    over rows of five costs a call per row): the first k rows fill it, each later one is
    inserted (max/min down the list), and the last place needs only a max.
    """
    top: list[np.ndarray] = []
    for x in cols:
        last = len(top) == k
        for i in range(len(top) - 1 if last else len(top)):
            hi = np.maximum(top[i], x)
            x = np.minimum(top[i], x)
            top[i] = hi
        if last:
            np.maximum(top[k - 1], x, out=top[k - 1])
        else:
            top.append(x)
    if len(top) < k:
        return np.full(cols.shape[1], -np.inf, dtype=cols.dtype)
    return top[k - 1]


def _second_lowest(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Element-wise second smallest of four arrays (a 4-input sorting-network fragment)."""
    lo1, hi1 = np.minimum(a, b), np.maximum(a, b)
    lo2, hi2 = np.minimum(c, d), np.maximum(c, d)
    np.maximum(lo1, lo2, out=lo1)
    np.minimum(hi1, hi2, out=hi1)
    return np.minimum(lo1, hi1, out=lo1)
