"""Timed Mode S frames -> complex baseband IQ as an RTL-SDR records it (UC8 or SC16).

Why this shape: a demodulator is only as good as the hardest real signal it was tested
on, and the hard part of real signals is timing and bandwidth, not noise alone. So each
reply is built at 12 MS/s with a *continuous* random start time (pulse edges are
box-integrated over each 12 MS/s sample, so the timing is quantised neither to the
synthesis grid nor to the output grid), low-pass filtered with a windowed-sinc FIR whose
cut-off sits just inside the output Nyquist band (as the dongle's decimation filter is),
decimated to 2.0 or 2.4 MS/s, rotated to a random carrier phase and summed with any
reply it overlaps. Complex Gaussian noise at a constant floor is added at the output
rate, as on a receiver whose noise is its own and whose far aircraft are just weaker.

SNR (per reply) = mean |s|^2 over the reply's own duration (8 us preamble + 56 or
112 us of data), measured on the filtered output-rate waveform, divided by the noise
power E|n|^2. Full scale is amplitude 1.0 per component (UC8 127.5 counts, SC16 32768).

PPM: preamble pulses at 0, 1, 3.5 and 4.5 us (0.5 us each); bit n occupies
8 + n .. 9 + n us with its pulse in the first half for 1 and the second half for 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.frame import frame_bits

SYNTH_RATE = 12_000_000
HALF_BIT = SYNTH_RATE // 2_000_000  # synthesis samples per 0.5 us chip
PREAMBLE_CHIPS = (1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0)
MAX_CHIPS = len(PREAMBLE_CHIPS) + 2 * 112
# Low-pass cut-off as a fraction of the output rate (complex: passband +/- 0.45 fs):
# just inside Nyquist, so pulses come out as smeared as a dongle makes them.
CUTOFF = 0.45
FIR_TAPS = 73  # 6 us at 12 MS/s: a sharp enough transition band, short tails
# Receiver noise: about 3 UC8 counts per component on a real dongle (modes1), i.e.
# E|n|^2 = 2 * (3 / 127.5)^2 of full scale.
NOISE_DBFS = 10.0 * math.log10(2.0 * (3.0 / 127.5) ** 2)
# Output-rate margin on each side of a reply, for the filter tails (FIR half-length is
# 36 synthesis samples = 7.2 output samples at 2.4 MS/s, 6 at 2.0).
_PAD = 8
# Replies rendered per batch: bounds the (rows x samples x taps) working set.
_BATCH = 256
# Output samples per chunk when adding noise and quantising.
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Burst:
    """One reply on air: start time (s from the first output sample), bytes and SNR."""

    t: float
    msg: bytes
    snr_db: float


def snr_db_for_level(level_dbfs: float, noise_dbfs: float = NOISE_DBFS) -> float:
    """SNR of a reply whose pulses peak at `level_dbfs` (amplitude re full scale).

    About half the chips of a reply carry a pulse, so its mean power is about 3 dB
    below the pulse power; the exact figure depends on the bits and the filter, which
    is why bursts are specified by SNR and this is only for scenarios that think in
    received levels.
    """
    return level_dbfs - 3.0 - noise_dbfs


def _decimation(sample_rate: float) -> int:
    dec = SYNTH_RATE / sample_rate
    if abs(dec - round(dec)) > 1e-9 or round(dec) < 2:
        raise ValueError(f"sample rate {sample_rate} must divide 12 MS/s (2.0e6 or 2.4e6)")
    return round(dec)


def _fir(sample_rate: float) -> np.ndarray:
    """Windowed-sinc low-pass at the synthesis rate, unity DC gain."""
    fc = CUTOFF * sample_rate / SYNTH_RATE  # cycles per synthesis sample
    n = np.arange(FIR_TAPS) - (FIR_TAPS - 1) / 2
    h = 2 * fc * np.sinc(2 * fc * n) * np.blackman(FIR_TAPS)
    return (h / h.sum()).astype(np.float32)


def _chips(msgs: Sequence[bytes]) -> np.ndarray:
    """(n, MAX_CHIPS) 0/1 half-bit pulse pattern of each reply, zero-padded when short."""
    chips = np.zeros((len(msgs), MAX_CHIPS), dtype=np.float32)
    chips[:, : len(PREAMBLE_CHIPS)] = PREAMBLE_CHIPS
    for row, msg in enumerate(msgs):
        bits = np.unpackbits(np.frombuffer(msg, dtype=np.uint8)).astype(np.float32)
        base = len(PREAMBLE_CHIPS)
        chips[row, base : base + 2 * bits.size : 2] = bits
        chips[row, base + 1 : base + 2 * bits.size : 2] = 1.0 - bits
    return chips


@dataclass(frozen=True, slots=True)
class _Rendered:
    """Output-rate complex waveforms of replies, each placed from sample `first[i]`."""

    first: np.ndarray  # int64 (n,): output index of column 0
    waves: np.ndarray  # complex64 (n, width)


def _render_bursts(
    bursts: Sequence[Burst],
    sample_rate: float,
    noise_power: float,
    rng: np.random.Generator,
    freq_offset_hz: float,
) -> _Rendered:
    dec = _decimation(sample_rate)
    h = _fir(sample_rate)
    half = (FIR_TAPS - 1) // 2
    out_len = 2 * _PAD + math.ceil(MAX_CHIPS * HALF_BIT / dec) + 2
    syn_len = out_len * dec
    wave_len = MAX_CHIPS * HALF_BIT + 1
    n = len(bursts)
    first = np.zeros(n, dtype=np.int64)
    waves = np.zeros((n, out_len), dtype=np.complex64)
    for lo in range(0, n, _BATCH):
        batch = bursts[lo : lo + _BATCH]
        m = len(batch)
        start_syn = np.array([b.t for b in batch], dtype=np.float64) * SYNTH_RATE
        whole = np.floor(start_syn).astype(np.int64)
        frac = (start_syn - whole).astype(np.float32)[:, None]
        k0 = whole // dec
        rem = whole - k0 * dec
        first[lo : lo + m] = k0 - _PAD
        # Box-integrated pulses: a chip spanning [c + f, c + 6 + f) covers its first
        # synthesis sample by 1 - f and spills f into the sample after its last.
        up = np.repeat(_chips([b.msg for b in batch]), HALF_BIT, axis=1)
        wave = np.zeros((m, wave_len), dtype=np.float32)
        wave[:, :-1] = (1.0 - frac) * up
        wave[:, 1:] += frac * up
        syn = np.zeros((m, syn_len + 2 * half), dtype=np.float32)
        cols = (half + _PAD * dec + rem)[:, None] + np.arange(wave_len)[None, :]
        syn[np.arange(m)[:, None], cols] = wave
        windows = np.lib.stride_tricks.sliding_window_view(syn, FIR_TAPS, axis=1)
        filtered = windows[:, :syn_len:dec, :] @ h  # (m, out_len), zero-phase
        # Amplitude from the SNR: unit-pulse mean power over the reply's own span.
        dur = np.array([(16 + 2 * frame_bits(b.msg[0] >> 3)) * HALF_BIT for b in batch])
        s0 = _PAD + (rem + frac[:, 0]) / dec  # reply start, output samples from column 0
        idx = np.arange(out_len)[None, :]
        inside = (idx >= np.ceil(s0)[:, None]) & (idx < (s0 + dur / dec)[:, None])
        power = (filtered**2 * inside).sum(axis=1) / inside.sum(axis=1)
        snr = np.array([10.0 ** (b.snr_db / 10.0) for b in batch])
        amp = np.sqrt(snr * noise_power / power)
        phase = rng.uniform(0.0, 2.0 * np.pi, size=m)
        rot = np.exp(1j * phase)[:, None]
        if freq_offset_hz:
            f = rng.uniform(-freq_offset_hz, freq_offset_hz, size=m)[:, None]
            t_out = (first[lo : lo + m, None] + idx) / sample_rate
            rot = rot * np.exp(2j * np.pi * f * t_out)
        waves[lo : lo + m] = (amp[:, None] * rot * filtered).astype(np.complex64)
    return _Rendered(first=first, waves=waves)


def _add_bursts(out: np.ndarray, base: int, r: _Rendered, order: np.ndarray) -> None:
    """Sum every rendered reply that overlaps out[0:len] (global indices base..)."""
    width = r.waves.shape[1]
    lo = np.searchsorted(r.first[order], base - width, side="right")
    hi = np.searchsorted(r.first[order], base + out.size, side="left")
    for i in order[lo:hi]:
        a = int(r.first[i]) - base
        s, e = max(a, 0), min(a + width, out.size)
        if s < e:
            out[s:e] += r.waves[i, s - a : e - a]


def render_complex(
    bursts: Sequence[Burst],
    duration_s: float,
    *,
    sample_rate: float = 2.4e6,
    noise_dbfs: float | None = NOISE_DBFS,
    rng: np.random.Generator,
    freq_offset_hz: float = 0.0,
) -> np.ndarray:
    """Complex64 baseband (full scale 1.0) before quantisation; for short stretches.

    noise_dbfs None renders the replies alone (their SNR still refers to NOISE_DBFS).
    """
    n_out = round(duration_s * sample_rate)
    noise_power = 10.0 ** ((NOISE_DBFS if noise_dbfs is None else noise_dbfs) / 10.0)
    r = _render_bursts(bursts, sample_rate, noise_power, rng, freq_offset_hz)
    out = np.zeros(n_out, dtype=np.complex64)
    if noise_dbfs is not None:
        sigma = math.sqrt(noise_power / 2.0)
        out.real = rng.normal(0.0, sigma, n_out)
        out.imag = rng.normal(0.0, sigma, n_out)
    _add_bursts(out, 0, r, np.argsort(r.first, kind="stable"))
    return out


def render(
    bursts: Sequence[Burst],
    duration_s: float,
    *,
    sample_rate: float = 2.4e6,
    fmt: str = "uc8",
    noise_dbfs: float = NOISE_DBFS,
    rng: np.random.Generator,
    freq_offset_hz: float = 0.0,
) -> tuple[bytes, list[tuple[int, bytes]]]:
    """IQ bytes for `duration_s` of air with `bursts` on it, and the truth.

    Args:
        bursts: replies with start times in seconds from the first sample.
        fmt: "uc8" (unsigned 8-bit I/Q, offset 127.5, clipped 0..255) or "sc16"
            (little-endian signed 16-bit I/Q, full scale 32768, clipped).
        noise_dbfs: noise power E|n|^2 relative to full scale.
        freq_offset_hz: each reply gets a uniform random carrier offset up to this.
    Returns:
        (interleaved I/Q bytes, [(output sample index of the reply start, frame)]
        in time order, for replies that start inside the stretch).
    """
    if fmt not in ("uc8", "sc16"):
        raise ValueError(f"unknown IQ format {fmt!r} (uc8 or sc16)")
    n_out = round(duration_s * sample_rate)
    noise_power = 10.0 ** (noise_dbfs / 10.0)
    sigma = math.sqrt(noise_power / 2.0)
    r = _render_bursts(bursts, sample_rate, noise_power, rng, freq_offset_hz)
    order = np.argsort(r.first, kind="stable")
    bytes_per = 2 if fmt == "uc8" else 4
    raw = np.empty(n_out * bytes_per, dtype=np.uint8)
    for base in range(0, n_out, _CHUNK):
        size = min(_CHUNK, n_out - base)
        iq = rng.standard_normal(2 * size, dtype=np.float32)
        iq *= np.float32(sigma)
        chunk = iq.view(np.complex64)
        _add_bursts(chunk, base, r, order)
        if fmt == "uc8":
            # Round to nearest of 127.5 + 127.5 x, clipped: truncation of x + 128.
            iq *= np.float32(127.5)
            iq += np.float32(128.0)
            np.clip(iq, 0.0, 255.999, out=iq)
            raw[2 * base : 2 * (base + size)] = iq.astype(np.uint8)
        else:
            iq *= np.float32(32768.0)
            np.rint(iq, out=iq)
            np.clip(iq, -32768.0, 32767.0, out=iq)
            raw[4 * base : 4 * (base + size)] = iq.astype("<i2").view(np.uint8)
    truth = sorted(
        (round(b.t * sample_rate), b.msg) for b in bursts if 0 <= b.t * sample_rate < n_out
    )
    return raw.tobytes(), truth
