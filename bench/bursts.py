"""Band-limited DF17 bursts in noise, as an RTL-SDR would record them (UC8), for sweeps.

Each reply is built at 12 MS/s from its half-bit pattern with a *continuous* random start
time (edges are box-integrated over each 12 MS/s sample, so the timing is not quantised
to the synthesis grid or to the demodulator's phase grid), given a random carrier phase
and a small frequency offset, low-pass filtered (windowed sinc, cut-off CUTOFF x the
output rate) and decimated to 2.0 or 2.4 MS/s. Complex Gaussian noise at a constant floor
is added at the output rate and the result is quantised to unsigned 8-bit I/Q.

SNR = mean burst power (|s|^2 over the reply's 120 us, after filtering) / noise power
(E|n|^2). The amplitude is set from the SNR and the noise floor stays put, as on a real
receiver where a far aircraft is weak and the noise is the receiver's own.

This lives in bench/ (not agent/) because only the benchmark and the sensitivity tests
use it; the project's own simulator (agent/sim) may replace it once it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent import crc

SYNTH_RATE = 12_000_000
# Samples per half-bit (0.5 us) at the synthesis rate.
HALF_BIT = SYNTH_RATE // 2_000_000
FRAME_HALF_BITS = 16 + 2 * 112
# Low-pass cut-off (-6 dB) as a fraction of the output sample rate: just inside Nyquist,
# as an SDR's decimation filter is, so the bursts are as smeared as real ones.
CUTOFF = 0.45
FIR_TAPS = 73  # at 12 MS/s: 6 us, long enough for a sharp transition band
# Receiver noise per I/Q component in ADC units: modes1 measures about 3, phwl about 1.3.
NOISE_SIGMA = 3.0
# Carrier offsets seen on real aircraft: transponders are allowed +/- 1 MHz, most are
# within a few tens of kHz of 1090 MHz.
MAX_FREQ_OFFSET_HZ = 50_000.0
_PREAMBLE = np.zeros(16, dtype=np.float32)
_PREAMBLE[[0, 2, 7, 9]] = 1.0


@dataclass(frozen=True)
class Burst:
    """One transmitted reply: its bytes and start time in output samples (fractional)."""

    msg: bytes
    start: float


def true_ticks(burst: Burst, rate: int) -> float:
    """The burst's arrival on a 12 MHz counter that reads (12 MHz / rate) x m at output
    sample m, as a receiver's sample counter does (Frame.ticks_12mhz).

    One synthesis sample is one tick. Output sample m is the low-pass centred on
    synthesis sample factor x m + (taps - 1) / 2, whose box covers the tick interval
    from there on: the instant it stands for is half a tick later than Burst.start
    counts from.
    """
    return burst.start * SYNTH_RATE / rate - 0.5


def random_df17(rng: np.random.Generator, n: int) -> list[bytes]:
    """`n` DF17 frames (CA 5) with random address and ME, correct parity."""
    body = rng.integers(0, 256, size=(n, 11), dtype=np.uint8)
    body[:, 0] = 0x8D
    out = []
    for row in body:
        data = row.tobytes()
        out.append(data + crc.crc24(data).to_bytes(3, "big"))
    return out


def _fir(rate: int) -> np.ndarray:
    """Windowed-sinc low-pass at the synthesis rate, unit DC gain."""
    fc = CUTOFF * rate / SYNTH_RATE  # cycles per synthesis sample
    k = np.arange(FIR_TAPS) - (FIR_TAPS - 1) / 2
    h = 2 * fc * np.sinc(2 * fc * k) * np.blackman(FIR_TAPS)
    return h / h.sum()


def _half_bits(msg: bytes) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(msg, dtype=np.uint8)).astype(np.float32)
    data = np.empty(2 * bits.size, dtype=np.float32)
    data[0::2], data[1::2] = bits, 1.0 - bits
    return np.concatenate((_PREAMBLE, data))


def _unit_bursts(
    starts12: np.ndarray, msgs: list[bytes], n12: int, rng: np.random.Generator
) -> np.ndarray:
    """Sum of unit-amplitude bursts at the synthesis rate (complex64, n12 samples)."""
    x = np.zeros(n12, dtype=np.complex64)
    span = FRAME_HALF_BITS * HALF_BIT + 2
    t = np.arange(span, dtype=np.float32)
    for s, msg in zip(starts12, msgs, strict=True):
        i0 = int(np.floor(s))
        f = np.float32(s - i0)
        rect = np.zeros(span, dtype=np.float32)
        rect[1 : 1 + FRAME_HALF_BITS * HALF_BIT] = np.repeat(_half_bits(msg), HALF_BIT)
        # Box integration of an edge delayed by f of a sample: a two-tap blend.
        env = (1 - f) * rect
        env[1:] += f * rect[:-1]
        phase = rng.uniform(0, 2 * np.pi)
        df = rng.uniform(-MAX_FREQ_OFFSET_HZ, MAX_FREQ_OFFSET_HZ) * 2 * np.pi / SYNTH_RATE
        x[i0 - 1 : i0 - 1 + span] += env * np.exp(1j * (phase + df * t)).astype(np.complex64)
    return x


def _decimate(x: np.ndarray, h: np.ndarray, factor: int) -> np.ndarray:
    """Filter with `h` and keep every `factor`-th sample, computing only those kept."""
    n = (x.size - h.size) // factor
    y = np.zeros(n, dtype=np.complex64)
    for k, hk in enumerate(h[::-1]):
        y += np.float32(hk) * x[k : k + factor * n : factor]
    return y


@dataclass(frozen=True)
class Clean:
    """Unit-amplitude band-limited bursts at the output rate, before noise.

    Attributes:
        signal: complex64 samples at the output rate.
        bursts: what was sent and when (output samples).
        power: mean burst power of `signal` (|s|^2 over each reply's 120 us).
    """

    signal: np.ndarray
    bursts: list[Burst]
    power: float


def clean(
    rng: np.random.Generator,
    rate: int,
    n_frames: int,
    gap_us: tuple[float, float] = (150.0, 350.0),
) -> Clean:
    """`n_frames` random DF17 bursts with random gaps before each, noise-free.

    Built once per rate and reused at every SNR of a sweep (only the noise is drawn
    again), which keeps a 21-level sweep of 1000 frames each to seconds.

    Args:
        rate: 2_000_000 or 2_400_000 (the synthesis rate must be a multiple).
        gap_us: random quiet time before each burst, uniform in this range.
    """
    if SYNTH_RATE % rate:
        raise ValueError(f"rate {rate} does not divide {SYNTH_RATE}")
    factor = SYNTH_RATE // rate
    h = _fir(rate)
    msgs = random_df17(rng, n_frames)
    frame12 = FRAME_HALF_BITS * HALF_BIT
    gaps12 = rng.uniform(*gap_us, size=n_frames) * SYNTH_RATE / 1e6
    starts12 = np.cumsum(gaps12 + frame12) - frame12 + h.size
    n12 = int(starts12[-1] + frame12 + gap_us[0] * SYNTH_RATE / 1e6) + 2 * h.size
    y = _decimate(_unit_bursts(starts12, msgs, n12, rng), h, factor)
    # Output sample m is the filter centred on synthesis sample factor*m + (taps-1)/2.
    starts = (starts12 - (h.size - 1) / 2) / factor
    idx = np.round(starts).astype(np.int64)
    win = np.arange(int(frame12 / factor))
    power = float(np.mean(np.abs(y[idx[:, None] + win]) ** 2))
    bursts = [Burst(m, float(s)) for m, s in zip(msgs, starts, strict=True)]
    return Clean(y, bursts, power)


def at_snr(
    rng: np.random.Generator, bursts: Clean, snr_db: float, noise_sigma: float = NOISE_SIGMA
) -> bytes:
    """UC8 bytes of `bursts` scaled to `snr_db` over fresh noise of `noise_sigma` ADC units."""
    y = bursts.signal
    amp = np.sqrt(10 ** (snr_db / 10) * 2 * noise_sigma**2 / bursts.power)
    iq = rng.normal(0.0, noise_sigma, size=(y.size, 2)).astype(np.float32)
    iq[:, 0] += y.real * np.float32(amp)
    iq[:, 1] += y.imag * np.float32(amp)
    return np.clip(np.floor(iq + 128.0), 0, 255).astype(np.uint8).tobytes()


def stream(
    rng: np.random.Generator,
    rate: int,
    snr_db: float,
    n_frames: int,
    *,
    gap_us: tuple[float, float] = (150.0, 350.0),
    noise_sigma: float = NOISE_SIGMA,
) -> tuple[bytes, list[Burst]]:
    """UC8 bytes holding `n_frames` random DF17 bursts at `snr_db`, and their truth."""
    c = clean(rng, rate, n_frames, gap_us)
    return at_snr(rng, c, snr_db, noise_sigma), c.bursts


def noise(rng: np.random.Generator, samples: int, noise_sigma: float = NOISE_SIGMA) -> bytes:
    """UC8 bytes of receiver noise only (for counting false frames)."""
    iq = rng.normal(0.0, noise_sigma, size=(samples, 2))
    return np.clip(np.floor(iq + 128.0), 0, 255).astype(np.uint8).tobytes()
