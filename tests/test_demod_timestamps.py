"""12 MHz arrival ticks of demodulated frames (Frame.ticks_12mhz), for multilateration.

Truth comes from bench/bursts.py: band-limited DF17 bursts synthesised at 12 MS/s (one
synthesis sample is one tick) with continuous random start times, then decimated. On
real samples, dump1090-mutability's `--mlat` output is the reference (Debian package;
CI installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache

import numpy as np
import pytest

from agent.demod import Demodulator
from agent.demod.resolve import TICK_MASK
from bench import bursts
from tests.conftest import shared_data
from tests.helpers import demodulate

MODES1_24 = "iq/modes1_2400.uc8"
MODES1_20 = "iq/modes1.bin"
DUMP1090 = "dump1090-mutability"


def _tick_errors(rate: int, snr_db: float, n: int, seed: int) -> np.ndarray:
    """Our ticks minus the true arrival, per sent burst we decoded."""
    rng = np.random.default_rng(seed)
    raw, sent = bursts.stream(rng, rate, snr_db, n)
    truth = {b.msg: bursts.true_ticks(b, rate) for b in sent}
    frames = [f for f in demodulate(raw, rate) if f.msg in truth]
    assert len(frames) >= 0.5 * n, "most bursts decoded"
    assert all(f.ticks_12mhz is not None for f in frames)
    return np.array([f.ticks_12mhz - truth[f.msg] for f in frames])


@pytest.mark.parametrize("snr_db", [8.0, 10.0, 14.0, 20.0])
def test_ticks_within_two_of_the_truth_at_2400(snr_db: float) -> None:
    err = _tick_errors(2_400_000, snr_db, 500, seed=int(snr_db))
    within = np.mean(np.abs(err) <= 2)
    assert within >= 0.99, f"{within:.3f} within 2 ticks; errors {np.unique(err)}"
    assert abs(err.mean()) < 1.0  # no offset hiding in the 2-tick tolerance


def test_ticks_within_two_of_the_truth_at_2000() -> None:
    # Eighths of a sample, 0.75 tick: finer than at 2.4 MS/s, but the trellis choosing
    # among phases that all decode picks the right one less tightly (bench/bursts.py).
    err = _tick_errors(2_000_000, 10.0, 500, seed=3)
    assert np.mean(np.abs(err) <= 2) >= 0.97
    assert abs(err.mean()) < 1.0


@cache
def _raw(relpath: str) -> bytes:
    return shared_data(relpath).read_bytes()


@pytest.mark.parametrize(("relpath", "rate"), [(MODES1_24, 2.4e6), (MODES1_20, 2.0e6)])
def test_ticks_do_not_depend_on_the_block_split(relpath: str, rate: float) -> None:
    raw = _raw(relpath)
    whole = [(f.msg, f.ticks_12mhz) for f in demodulate(raw, rate)]
    assert len(whole) > 300 and len({t for _, t in whole}) == len(whole)
    for block in (100_003, 7919):
        assert [(f.msg, f.ticks_12mhz) for f in demodulate(raw, rate, block)] == whole


def test_skipped_samples_advance_the_ticks() -> None:
    raw = _raw(MODES1_24)
    alone = demodulate(raw, 2.4e6)
    demod = Demodulator(2.4e6)
    first = demod.process_raw(raw) + demod.skip_samples(1_000_001)
    later = demod.process_raw(raw) + demod.flush()
    # What follows the gap is demodulated as if it started a stream, only later.
    shift = 5 * (len(raw) // 2 + 1_000_001)
    assert [f.msg for f in first] == [f.msg for f in alone]
    assert [(f.msg, f.ticks_12mhz) for f in later] == [
        (f.msg, (f.ticks_12mhz + shift) & TICK_MASK) for f in alone
    ]
    assert later[0].rx_time == pytest.approx(alone[0].rx_time + shift / 12e6)


def test_a_new_epoch_is_marked_and_the_held_back_frames_keep_the_old_one() -> None:
    raw = _raw(MODES1_24)
    # The first stream ends just after a reply: too close to its end to be decided
    # before the stream is known to have ended.
    end = round(demodulate(raw, 2.4e6)[100].rx_time * 2.4e6) + 400
    demod = Demodulator(2.4e6)
    before = demod.process_raw(raw[: 2 * end])
    held = demod.new_epoch()
    after = demod.process_raw(raw) + demod.flush()
    assert held, "the end of the first stream was held back until the new epoch"
    assert {f.ticks_epoch for f in before + held} == {0}
    assert {f.ticks_epoch for f in after} == {1}
    assert len(before + held) == 101
    assert after[0].ticks_12mhz > held[-1].ticks_12mhz


def test_ticks_wrap_at_48_bits() -> None:
    raw = _raw(MODES1_24)
    alone = demodulate(raw, 2.4e6)
    demod = Demodulator(2.4e6)
    demod.skip_samples((1 << 48) // 5 - 100_000)  # the counter wraps inside the recording
    frames = demod.process_raw(raw) + demod.flush()
    ticks = [f.ticks_12mhz for f in frames]
    assert all(0 <= t <= TICK_MASK for t in ticks)
    assert min(ticks) < 1 << 24 < TICK_MASK - (1 << 24) < max(ticks)
    shift = 5 * ((1 << 48) // 5 - 100_000)
    assert ticks == [(f.ticks_12mhz + shift) & TICK_MASK for f in alone]


def _mutability_mlat(path: str) -> list[tuple[int, bytes]]:
    exe = shutil.which(DUMP1090)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(f"{DUMP1090} is not installed (CI installs it: .ci/run)")
        pytest.skip(f"{DUMP1090} is not installed")
    out = subprocess.run(
        [exe, "--ifile", path, "--raw", "--mlat"], capture_output=True, text=True, check=True
    ).stdout
    lines = [line for line in out.split() if line.startswith("@") and line.endswith(";")]
    return [(int(line[1:13], 16), bytes.fromhex(line[13:-1])) for line in lines]


def test_tick_intervals_agree_with_dump1090_mutability() -> None:
    path = shared_data(MODES1_24)
    theirs = _mutability_mlat(str(path))
    ours = [(f.ticks_12mhz, f.msg) for f in demodulate(_raw(MODES1_24), 2.4e6)]

    def unique(frames: list[tuple[int | None, bytes]]) -> dict[bytes, int]:
        seen: dict[bytes, list[int]] = {}
        for t, m in frames:
            assert t is not None
            seen.setdefault(m, []).append(t)
        return {m: ts[0] for m, ts in seen.items() if len(ts) == 1}

    a, b = unique(ours), unique(theirs)
    common = sorted(set(a) & set(b), key=a.__getitem__)
    assert len(common) >= 100, "both find most of the recording's frames"
    ours_t = np.array([a[m] for m in common], dtype=np.int64)
    theirs_t = np.array([b[m] for m in common], dtype=np.int64)
    # The same order, and the same time between consecutive common frames: the two
    # counters differ by a constant only (where each puts a frame's reference point).
    assert np.all(np.diff(theirs_t) > 0)
    gaps = np.diff(ours_t) - np.diff(theirs_t)
    assert np.abs(gaps).max() <= 3, np.abs(gaps).max()
    offset = theirs_t - ours_t
    assert offset.max() - offset.min() <= 3


def test_demod_command_prints_ticks_with_mlat(capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    path = str(shared_data(MODES1_24))
    assert main(["demod", "--mlat", path]) == 0
    lines = capsys.readouterr().out.split()
    frames = demodulate(_raw(MODES1_24), 2.4e6)
    assert lines == [f"@{f.ticks_12mhz:012X}{f.hex};" for f in frames]
    assert main(["demod", path]) == 0  # without --mlat, as before
    assert capsys.readouterr().out.split() == [f"*{f.hex};" for f in frames]
