"""The coherent (I/Q) trellis: its pulse model, carrier removal and phase convention."""

from __future__ import annotations

import numpy as np
import pytest

from agent.demod import coherent
from agent.demod.timing import Timing
from bench import bursts

RATE = 2_000_000


def _window_and_phase(b: bursts.Burst, signal: np.ndarray) -> tuple[np.ndarray, int]:
    """The candidate the preamble stage would hand over for burst `b`.

    bursts.py puts sample k at time k; the preamble stage treats sample j as integrating
    [j, j + 1), centred on j + 1/2: in its terms the reply starts half a sample later.
    """
    start = b.start + 0.5
    row = int(np.floor(start))
    phase = round((start - row) * 8)
    if phase == 8:
        row, phase = row + 1, 0
    return signal[row : row + coherent.WINDOW], phase


def _bits(msg: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(msg, dtype=np.uint8)) == 1


def test_clean_band_limited_bursts_decode_exactly_at_every_offset() -> None:
    # 60 bursts: random sub-sample starts, carrier phases and offsets up to 50 kHz.
    clean = bursts.clean(np.random.default_rng(4), RATE, 60)
    model = coherent.CoherentModel.for_timing(Timing.for_rate(RATE))
    windows, phases = zip(*(_window_and_phase(b, clean.signal) for b in clean.bursts), strict=True)
    real = coherent.derotate(np.array(windows))
    soft = coherent.soft_bits(real, np.array(phases), model)
    for b, row in zip(clean.bursts, soft, strict=True):
        assert np.array_equal(row > 0, _bits(b.msg)), b.msg.hex()


@pytest.mark.parametrize("offset_hz", [-400_000.0, 3_000.0, 120_000.0])
def test_carrier_offset_and_phase_are_found(offset_hz: float) -> None:
    # Transponders may be up to 1 MHz off 1090 MHz; the FFT search covers the band.
    rng = np.random.default_rng(int(offset_hz) % 1000)
    half_bits = np.zeros(coherent.WINDOW - 2)
    half_bits[[0, 2, 7, 9]] = 1
    data = rng.integers(0, 2, 112)
    half_bits[16::2], half_bits[17::2] = data, 1 - data
    t = np.arange(coherent.WINDOW)
    pulses = coherent.chip_response(t[:, None] + 0.3 - np.arange(half_bits.size)) @ half_bits
    phase = rng.uniform(-np.pi, np.pi)
    z = pulses * np.exp(1j * (2 * np.pi * offset_hz / RATE * t + phase))
    noisy = z + 0.05 * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size))
    freq, found = coherent.carrier(noisy[None, :].astype(np.complex64))
    assert abs(freq[0] * RATE - offset_hz) < 1_000
    assert abs(np.angle(np.exp(1j * (found[0] - phase)))) < 0.1
    real = coherent.derotate(noisy[None, :].astype(np.complex64))[0]
    assert np.abs(real - pulses).max() < 0.3


def test_margins_are_smallest_where_noise_hides_a_bit() -> None:
    # The margins rank bits for repair.py: a bit buried in noise must rank weakest.
    clean = bursts.clean(np.random.default_rng(2), RATE, 1)
    b = clean.bursts[0]
    window, phase = _window_and_phase(b, clean.signal.copy())
    window = window.copy()
    bit = 60
    first = coherent.CoherentModel.for_timing(Timing.for_rate(RATE)).offset[phase] + 2 * bit
    window[first : first + 2] = np.mean(window[first : first + 2])  # both halves alike
    soft = coherent.soft_bits(
        coherent.derotate(window[None, :]),
        np.array([phase]),
        coherent.CoherentModel.for_timing(Timing.for_rate(RATE)),
    )
    assert np.argmin(np.abs(soft[0])) in (bit - 1, bit, bit + 1)


def test_only_one_sample_per_half_bit_is_modelled() -> None:
    with pytest.raises(ValueError, match=r"2\.0 MS/s"):
        coherent.CoherentModel.for_timing(Timing.for_rate(2_400_000))


def test_no_windows_give_no_bits() -> None:
    model = coherent.CoherentModel.for_timing(Timing.for_rate(RATE))
    empty = coherent.derotate(np.zeros((0, coherent.WINDOW), dtype=np.complex64))
    assert coherent.soft_bits(empty, np.zeros(0, dtype=np.int64), model).shape == (0, 112)
