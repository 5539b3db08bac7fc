"""Stage 1 (preamble.screen) and the noise floor against plain whole-buffer definitions.

The screen works in strips with reused buffers and a word-wise index search, the floor
in runs of strided column sums: both are checked here against straightforward numpy
written from their docstrings, with the same float32 operations in the same order, so
that the results must be equal to the bit, on a real capture and on receiver noise.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from agent.demod import noise, preamble, slicer
from agent.demod.iq import uc8_to_mag
from agent.demod.noise import NOISE_WINDOW
from agent.demod.timing import Timing
from tests.conftest import shared_data

CAPTURES = {2_400_000: "iq/modes1_2400.uc8", 2_000_000: "iq/modes1.bin"}


@cache
def _streams(rate: int) -> dict[str, np.ndarray]:
    """The rate's real capture and as many samples of UC8 receiver noise."""
    busy = uc8_to_mag(shared_data(CAPTURES[rate]).read_bytes())
    rng = np.random.default_rng(15)
    iq = np.clip(np.rint(127.5 + 6.0 * rng.standard_normal(2 * busy.size)), 0, 255)
    return {"busy": busy, "noise": uc8_to_mag(iq.astype(np.uint8).tobytes())}


def _reference_floor(buf: np.ndarray) -> np.ndarray:
    """noise.floor's docstring, directly: every piece summed left to right in float32."""
    sub, per = noise.NOISE_SUB, NOISE_WINDOW // noise.NOISE_SUB
    nsub = buf.size // sub
    if nsub == 0:
        return np.zeros(1, dtype=np.float32)
    pieces = buf[: nsub * sub].reshape(nsub, sub)
    sums = pieces[:, 0].copy()
    for c in range(1, sub):
        sums = sums + pieces[:, c]
    ranks = []
    for w in range(0, nsub, per):
        ranked = np.sort(sums[w : w + per])
        ranks.append(ranked[min(noise.FLOOR_RANK, ranked.size - 1)])
    win = np.array(ranks, dtype=np.float32)
    low = win.copy()
    low[1:] = np.minimum(win[1:], win[:-1])
    return low * np.float32(1 / sub)


def _reference_screen(
    mag: np.ndarray, plan: preamble.ScreenPlan, limit: int, floor: np.ndarray
) -> np.ndarray:
    """preamble.screen over the whole buffer at once, second-weakest pulse by sorting."""
    n = limit
    seg = mag[: n + plan.reach]
    s2 = seg[:-1] + seg[1:]
    sums = {1: seg, 2: s2, 3: s2[:-1] + seg[2:]}
    x2 = np.maximum(seg[:-1], seg[1:])
    tops = {1: seg, 2: x2, 3: np.maximum(x2[:-1], seg[2:])}
    (k0, l0), *rest = plan.quiet
    quiet, qmax = sums[l0][k0 : k0 + n], tops[l0][k0 : k0 + n]
    for k, ln in rest:
        quiet = quiet + sums[ln][k : k + n]
        qmax = np.maximum(qmax, tops[ln][k : k + n])
    m2 = np.maximum(s2[:-1], s2[1:])
    offsets = (0, plan.pair, plan.shift, plan.shift + plan.pair)
    second = np.sort(np.stack([m2[o : o + n] for o in offsets]), axis=0)[1]
    pulses = second * np.float32(plan.nquiet / (2 * preamble.SCREEN_RATIO))
    qmax = qmax * plan.max_scale
    hit = pulses > np.maximum(quiet, qmax)
    # Noise floor: each FLOOR_SPAN's lowest window floor; loud quiet sample: the own window's.
    to_quiet = np.float32(
        min(preamble.FLOOR_SNR, preamble.WEAK_FLOOR_SNR) * 0.5 * plan.nquiet / preamble.SCREEN_RATIO
    )
    windows = np.minimum(np.arange(n) // NOISE_WINDOW, floor.size - 1)
    span = preamble.FLOOR_SPAN
    strip_low = np.array(
        [floor[windows[lo : lo + span]].min() for lo in range(0, n, span)],
        dtype=np.float32,
    )
    hit &= pulses > strip_low[np.arange(n) // span] * to_quiet
    loud = floor[windows] * to_quiet * np.float32(preamble.STRONG_FLOORS)
    ratio = np.float32(preamble.STRONG_MAX_QUIET / preamble.MAX_QUIET_SAMPLE)
    hit &= (pulses <= loud) | (qmax < pulses * ratio)
    # Stage 2's noise-floor test from above: the pulses' peak samples over the own floor.
    peak = np.sort(np.stack([tops[3][k : k + n] for k in plan.pulses_at]), axis=0)[1]
    level = np.float32(min(preamble.FLOOR_SNR, preamble.WEAK_FLOOR_SNR) * preamble.BOUND_SLACK)
    hit &= peak > floor[windows] * level
    return np.flatnonzero(hit)


@pytest.mark.parametrize("rate", sorted(CAPTURES))
@pytest.mark.parametrize("stream", ["busy", "noise"])
@pytest.mark.parametrize("strip", [preamble.STRIP, 5000])
def test_screen_equals_whole_buffer_definition(
    rate: int, stream: str, strip: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same hits whatever the strip size (the floor test's spans are not strips)."""
    monkeypatch.setattr(preamble, "STRIP", strip)
    mag = _streams(rate)[stream]
    plan = preamble.ScreenPlan.for_timing(Timing.for_rate(rate))
    scratch = preamble.Scratch(plan)
    # Several buffers (the scratch reused), longer than a strip and a floor span and
    # not a multiple of either, and short ones.
    for start, size in ((0, 300_000 + 1234), (777, 40_000), (5, 1000)):
        buf = mag[start : start + size]
        floor = noise.floor(buf)
        limit = buf.size - plan.reach
        found = preamble.screen(buf, plan, limit, floor, NOISE_WINDOW, scratch)
        expected = _reference_screen(buf, plan, limit, floor)
        assert expected.size > 0
        np.testing.assert_array_equal(found, expected)


def test_set_indices_equals_flatnonzero() -> None:
    rng = np.random.default_rng(3)
    plan = preamble.ScreenPlan.for_timing(Timing.for_rate(2_400_000))
    scratch = preamble.Scratch(plan)
    for n in (0, 1, 7, 8, 9, 1000, 65_000, preamble.STRIP):
        # Sparse entries, runs of them, and whole set words; garbage beyond n.
        mask = scratch.hits
        mask[:] = rng.random(mask.size) < 0.5
        mask[:n] = rng.random(n) < 0.05
        runs = rng.integers(0, max(n, 1), size=20)
        for r in runs:
            mask[r : min(r + int(rng.integers(1, 30)), n)] = True
        expected = np.flatnonzero(mask[:n])
        found = preamble._set_indices(mask, n, scratch.word_starts)
        np.testing.assert_array_equal(found, expected)


@pytest.mark.parametrize("stream", ["busy", "noise"])
def test_floor_equals_definition(stream: str) -> None:
    mag = _streams(2_400_000)[stream]
    # Whole windows, a short last window (fewer pieces than the rank, and more), a
    # single window, fewer samples than one piece.
    for size in (524_288, 524_288 + 2400, 1024 * 5 + 16 * 3, 1024 + 16 * 20, 500, 15, 0):
        buf = np.resize(mag[1000:], size)
        np.testing.assert_array_equal(noise.floor(buf), _reference_floor(buf))


@pytest.mark.parametrize("rate", sorted(CAPTURES))
@pytest.mark.parametrize("stream", ["busy", "noise"])
def test_peak_pulse_bounds_every_phase(rate: int, stream: str) -> None:
    """The screen's pulse bound is at least stage 2's second-weakest pulse (mean
    magnitude) at every phase, at every start of a real capture and of noise."""
    timing = Timing.for_rate(rate)
    plan = preamble.ScreenPlan.for_timing(timing)
    mag = _streams(rate)[stream][:60_000]
    starts = np.arange(mag.size - 64)
    x2 = np.maximum(mag[:-1], mag[1:])
    peaks = np.maximum(x2[:-1], mag[2:])
    bound = preamble._peak_pulse(peaks, starts, plan)
    matrix = preamble.score_matrix(timing)
    nph = len(timing.phases)
    e = matrix @ slicer.gather(mag, starts, matrix.shape[1]).T
    second = np.sort(e[: 4 * nph].reshape(4, nph, -1), axis=0)[1] * timing.inverse_half_bit
    worst = (second.max(axis=0) / np.maximum(bound, 1e-9)).max()
    assert worst <= 1 + 1e-5
    assert worst > 0.99  # tight somewhere: the bound is the real pulse at some phase


@pytest.mark.parametrize("rate", sorted(CAPTURES))
@pytest.mark.parametrize("stream", ["busy", "noise"])
def test_floor_bound_drops_only_starts_stage_2_rejects(
    rate: int, stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the pulse bound removes from the screen's hits, stage 2 would have rejected:
    the same frames, fewer starts scored (most of noise's)."""
    timing = Timing.for_rate(rate)
    plan = preamble.ScreenPlan.for_timing(timing)
    buf = _streams(rate)[stream][:300_000]
    floor = noise.floor(buf)
    limit = buf.size - plan.reach
    kept = preamble.screen(buf, plan, limit, floor, NOISE_WINDOW)
    monkeypatch.setattr(preamble, "BOUND_SLACK", 0.0)  # every bound passes: no bound
    unbounded = preamble.screen(buf, plan, limit, floor, NOISE_WINDOW)
    assert np.isin(kept, unbounded).all()
    dropped = np.setdiff1d(unbounded, kept)
    assert dropped.size > kept.size / 10
    matrix = preamble.score_matrix(timing)
    win = slicer.gather(buf, dropped, matrix.shape[1])
    fl = floor.take(dropped // NOISE_WINDOW, mode="clip")
    for snr in (preamble.MIN_PREAMBLE_SNR, preamble.MIN_PREAMBLE_SNR_2000):
        rows, *_ = preamble.phase_scores(win, matrix, timing, fl, np.float32(snr))
        assert rows.size == 0
