"""Demodulator on synthetic band-limited DF17 bursts (bench/bursts.py): yield, floor, noise.

The bursts are built as bench/demod.py's SNR sweep builds them (12 MS/s, random
sub-sample timing, low-pass, decimated, constant noise floor, UC8), so these tests guard
the figures the benchmark reports without timing anything.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from agent.crc import syndrome
from agent.demod import Demodulator
from agent.demod.iq import uc8_to_mag
from agent.frame import Frame
from bench import bursts

RATES = (2_400_000, 2_000_000)


@cache
def _clean(rate: int, frames: int, seed: int) -> bursts.Clean:
    return bursts.clean(np.random.default_rng(seed), rate, frames)


def _run(raw: bytes, rate: int, repair_bits: int = 1, *, iq: bool = True) -> list[Frame]:
    """Frames from UC8 `raw`: as the sources feed it, or (iq=False) magnitudes only."""
    demod = Demodulator(rate, repair_bits=repair_bits)
    out: list[Frame] = []
    if iq:
        for i in range(0, len(raw), 524288):
            out += demod.process_raw(raw[i : i + 524288])
    else:
        mag = uc8_to_mag(raw)
        for i in range(0, mag.size, 262144):
            out += demod.process(mag[i : i + 262144])
    return out + demod.flush()


def _recovered(
    rate: int, snr_db: float, frames: int = 300, seed: int = 3, *, iq: bool = True
) -> float:
    clean = _clean(rate, frames, seed)
    raw = bursts.at_snr(np.random.default_rng(seed + int(snr_db * 10)), clean, snr_db)
    sent = {b.msg: b.start for b in clean.bursts}
    out = _run(raw, rate, iq=iq)
    assert all(f.msg in sent for f in out), "a frame that was never sent"
    hits = {f.msg for f in out if abs(f.rx_time * rate - sent[f.msg]) < 3}
    return len(hits) / len(sent)


@pytest.mark.parametrize("snr_db", [12.0, 16.0, 20.0])
def test_high_snr_bursts_all_recovered_at_2400(snr_db: float) -> None:
    assert _recovered(2_400_000, snr_db) == 1.0


@pytest.mark.parametrize("snr_db", [14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0])
def test_high_snr_bursts_all_recovered_at_2000(snr_db: float) -> None:
    # Pulses straddling two samples: first-minus-second slicing stopped near 70 % here;
    # the trellis (agent/demod/trellis.py) decides each bit with its neighbour in view,
    # and misreads a few strong replies straddling by about half (one of these 300 at
    # 17 dB): those are decided again from the I/Q.
    assert _recovered(2_000_000, snr_db) == 1.0


def test_sensitivity_floor_at_2400() -> None:
    # Measured 100 % at 10-12 dB (bench/demod.py); 90 % leaves room for noise only.
    assert _recovered(2_400_000, 12.0) >= 0.90


def test_sensitivity_floor_at_2000() -> None:
    # Measured 97 % at 10 dB with the I/Q retry (coherent.py), 1-bit repair.
    assert _recovered(2_000_000, 10.0) >= 0.93


def test_sensitivity_floor_at_2000_from_magnitudes_alone() -> None:
    # Measured 89 % at 12 dB with the magnitude trellis only (50 % before it).
    assert _recovered(2_000_000, 12.0, iq=False) >= 0.80


def test_iq_recovers_weak_straddled_replies_that_magnitudes_lose() -> None:
    # Measured at 8 dB: 75 % with the I/Q retry, 34 % from magnitudes alone.
    with_iq = _recovered(2_000_000, 8.0)
    assert with_iq >= _recovered(2_000_000, 8.0, iq=False) + 0.25


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("repair_bits", [1, 2, 3])
def test_noise_alone_gives_no_frames(rate: int, repair_bits: int) -> None:
    raw = bursts.noise(np.random.default_rng(rate + repair_bits), rate // 2)
    assert _run(raw, rate, repair_bits) == []


@pytest.mark.parametrize("rate", RATES)
def test_weak_bursts_give_only_sent_clean_frames(rate: int) -> None:
    # At 6-8 dB most decodes need repair: every emitted frame must still be one that was
    # sent, CRC-clean after repair, and marked with the bits repaired.
    clean = _clean(rate, 300, 9)
    sent = {b.msg for b in clean.bursts}
    for snr_db in (6.0, 8.0):
        raw = bursts.at_snr(np.random.default_rng(int(snr_db)), clean, snr_db)
        for repair_bits in (1, 2, 3):
            for f in _run(raw, rate, repair_bits):
                assert f.msg in sent, f.hex
                assert syndrome(f.msg) == 0
                assert 0 <= f.repaired_bits <= repair_bits


def test_repair_bits_is_checked() -> None:
    with pytest.raises(ValueError):
        Demodulator(2.4e6, repair_bits=4)
    with pytest.raises(ValueError):
        Demodulator(2.4e6, repair_bits=0)
