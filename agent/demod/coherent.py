"""Coherent bit decisions from I/Q, for replies that straddle samples (2.0 MS/s).

At 2.0 MS/s a half-bit lasts exactly one sample, so a reply that starts half a sample
off the grid puts every sample across two half-bits. In magnitudes that is nearly
hopeless at low SNR: |signal + noise| of a half-lit sample is biased by the noise and a
one-bit change moves the magnitudes little (measured: about 5.5 dB less distance than an
aligned reply). In I/Q the picture is linear: once the carrier's frequency offset and
phase are taken out, the real part of each sample is amplitude x (half-bits filtered by
the front end) + Gaussian noise of half the noise power, and the best bit sequence is a
least-squares fit over a short trellis. This recovers what the magnitude trellis cannot:
90 % of bench/demod.py's 2.0 MS/s bursts at about 8.5 dB instead of 11.4.

The Demodulator uses it as a retry, for weak replies the magnitude trellis could not
decode: on real recordings the magnitude trellis decodes a few replies this one does not
(18 against 14 on phwl_x-1; a carrier that drifts within a reply would do that).

Per candidate (a start sample and its sub-sample phase from the preamble stage):
1. carrier: the reply is on-off keyed, so its spectrum peaks at the carrier offset. A
   256-point FFT of the window finds the bin; the phase drift between the window's two
   halves refines it; the derotated sum gives the phase.
2. amplitude: least squares of the derotated preamble samples against their template.
3. bits: each sample depends on the half-bits of its own bit and its two neighbours
   (the front end's low-pass spreads a half-bit over about three samples), so a 4-state
   min-sum trellis over (previous bit, bit) with a forward and a backward pass gives
   every bit's max-marginal: the sign is the decision, the size its confidence, as the
   slicer's margins are (repair.py ranks bits by them).

The pulse model is a generic one (a half-bit box through a windowed-sinc low-pass at the
Nyquist frequency), not fitted to any one dongle or to the benchmark's bursts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.demod.timing import LONG_BITS, PREAMBLE_HALF_BITS, Timing

# Cut-off of the modelled front-end low-pass, as a fraction of the sample rate.
CUTOFF = 0.5
# Half-width of the modelled low-pass kernel, in samples (Blackman window).
KERNEL_HALF_WIDTH = 3.0
# Where sample j sits in time relative to the preamble stage's grid, in samples: that
# stage treats sample j as integrating [j, j + 1), i.e. centred on j + 1/2.
SAMPLE_TIME = 0.5
# FFT length of the carrier search: covers the window once (zero-padded).
FFT_LEN = 256
# Samples per candidate window: the preamble and 112 bits at one sample per half-bit,
# plus the sample after.
WINDOW = PREAMBLE_HALF_BITS + 2 * LONG_BITS + 2
_BIG = np.float32(1e30)
# combo = 4 * b[i-1] + 2 * b[i] + b[i+1]; the state before bit i is (b[i-1], b[i]).
_COMBO = np.arange(8)
_FROM = _COMBO >> 1  # state a combo leaves
_TO = _COMBO & 3  # state it enters
_ONE = ((_COMBO >> 1) & 1).astype(bool)  # combos with b[i] = 1


def chip_response(t: np.ndarray) -> np.ndarray:
    """Response at time t (samples) to a unit half-bit lit over [0, 1), band-limited."""
    u = (np.arange(64) + 0.5) / 64  # midpoint rule over the half-bit
    x = np.asarray(t, dtype=np.float64)[..., None] - u
    inside = np.abs(x) < KERNEL_HALF_WIDTH
    w = (
        0.42
        + 0.5 * np.cos(np.pi * x / KERNEL_HALF_WIDTH)
        + 0.08 * np.cos(2 * np.pi * x / KERNEL_HALF_WIDTH)
    )
    kernel = 2 * CUTOFF * np.sinc(2 * CUTOFF * x) * np.where(inside, w, 0.0)
    return kernel.mean(axis=-1)


@dataclass(frozen=True)
class CoherentModel:
    """Expected sample levels per phase, derived once from the pulse model.

    Attributes:
        offset: (phases,) offset from the row start of bit 0's first sample.
        level: (3, phases, 2, 8) level of each of a bit's two samples, per unit
            amplitude, for each combo (b[i-1], b[i], b[i+1]); [0] for bit 0 (the
            preamble's quiet tail before it), [1] for bits inside, [2] for bit 111
            (silence after it).
        energy: (3, phases, 8) sum of the squared levels of the two samples.
        preamble: (phases, PREAMBLE_HALF_BITS + 1) the preamble's levels.
    """

    offset: np.ndarray
    level: np.ndarray
    energy: np.ndarray
    preamble: np.ndarray

    @classmethod
    def for_timing(cls, timing: Timing) -> CoherentModel:
        if timing.half_bit != 1:
            raise ValueError("the coherent trellis needs one sample per half-bit (2.0 MS/s)")
        phi = np.array([float(p) for p in timing.phases])
        # Sample j is at time j + SAMPLE_TIME - phi from the reply's start; it belongs
        # to the half-bit under it: bit 0's first sample is PREAMBLE_HALF_BITS + o.
        o = np.ceil(phi - SAMPLE_TIME - 1e-9)
        offset = (PREAMBLE_HALF_BITS + o).astype(np.int64)
        pulses = np.zeros(PREAMBLE_HALF_BITS)
        pulses[[0, 2, 7, 9]] = 1.0
        t = np.arange(PREAMBLE_HALF_BITS + 1)[None, :] + SAMPLE_TIME - phi[:, None]
        pre = chip_response(t[:, :, None] - np.arange(PREAMBLE_HALF_BITS)) @ pulses
        # The six half-bits of (b[i-1], b[i], b[i+1]) for each combo, and as seen by
        # bit 0 (the preamble's quiet half-bits before it) and bit 111 (nothing after).
        combo = np.arange(8)
        bits = np.stack(((combo >> 2) & 1, (combo >> 1) & 1, combo & 1), axis=1)
        chips = np.stack((bits, 1 - bits), axis=2).reshape(8, 6).astype(np.float64)
        chips = np.stack((chips, chips, chips))  # (which, combo, half-bit)
        chips[0, :, :2] = 0.0
        chips[2, :, 4:] = 0.0
        # Bit i's two samples against its half-bits, chips 2 and 3 of the six.
        tk = 2 + np.arange(2)[None, :] + (o + SAMPLE_TIME - phi)[:, None]  # (phases, 2)
        response = chip_response(tk[:, :, None] - np.arange(6))  # (phases, 2, 6)
        level = np.einsum("pkc,wbc->wpkb", response, chips)
        energy = (level**2).sum(axis=2)
        return cls(
            offset,
            level.astype(np.float32),
            energy.astype(np.float32),
            pre.astype(np.float32),
        )


def _phasors(freq: np.ndarray, phase: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin (float32, (n, width)) of 2 pi (freq t) + phase, t = 0 .. width - 1.

    The angle is reduced to whole turns in float64 and the trigonometry done in float32
    (numpy vectorises float32 sin and cos): a complex128 exp of every sample cost about
    three times as much.
    """
    turns = freq[:, None] * np.arange(width) + (phase / (2 * np.pi))[:, None]
    turns -= np.round(turns)
    angle = (turns * (2 * np.pi)).astype(np.float32)
    return np.cos(angle), np.sin(angle)


def _turned(z: np.ndarray, freq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts (float32) of z exp(-2j pi freq t)."""
    cos, sin = _phasors(freq, np.zeros_like(freq), z.shape[1])
    re, im = z.real, z.imag
    return re * cos + im * sin, im * cos - re * sin


def carrier(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each window's carrier: frequency offset (cycles per sample) and phase.

    Args:
        z: complex64 (n, width) samples from each candidate's start.
    Returns:
        (freq, phase): float64 (n,) each; z[t] ~ |z[t]| exp(2j pi (freq t) + 1j phase).
    """
    n, width = z.shape
    spec = np.abs(np.fft.fft(z, FFT_LEN, axis=1))
    k = np.argmax(spec, axis=1)
    rows = np.arange(n)
    a, b, c = spec[rows, k - 1], spec[rows, k], spec[rows, (k + 1) % FFT_LEN]
    denom = a - 2 * b + c
    frac = np.where(denom < 0, 0.5 * (a - c) / np.where(denom < 0, denom, -1.0), 0.0)
    freq = (k + frac) / FFT_LEN
    freq = (freq + 0.5) % 1.0 - 0.5
    re, im = _turned(z, freq)
    half = width // 2
    first = re[:, :half].sum(axis=1) + 1j * im[:, :half].sum(axis=1)
    second = re[:, half : 2 * half].sum(axis=1) + 1j * im[:, half : 2 * half].sum(axis=1)
    freq += np.angle(second * np.conj(first)) / (2 * np.pi * half)
    re, im = _turned(z, freq)
    return freq, np.arctan2(im.sum(axis=1), re.sum(axis=1))


def derotate(z: np.ndarray) -> np.ndarray:
    """Real part of each window after removing its carrier offset and phase.

    Args:
        z: complex64 (n, WINDOW) samples from each candidate's start.
    Returns:
        float32 (n, WINDOW): the in-phase component, pulses positive.
    """
    n, width = z.shape
    if n == 0:
        return np.zeros((0, width), dtype=np.float32)
    freq, phase = carrier(z)
    cos, sin = _phasors(freq, phase, width)
    real = z.real * cos
    real += z.imag * sin
    return real


def soft_bits(r: np.ndarray, phase: np.ndarray, model: CoherentModel) -> np.ndarray:
    """Max-marginal margins of all LONG_BITS bits of k derotated windows.

    Args:
        r: float32 (k, WINDOW) from derotate, one row per (candidate, phase) pair.
        phase: (k,) phase index of each row.
    Returns:
        float32 (k, LONG_BITS): positive means 1; the size is the squared-error gap
        between the best sequences with the bit at 0 and at 1, over the amplitude (so
        in the units of r).
    """
    k = phase.size
    if k == 0:
        return np.zeros((0, LONG_BITS), dtype=np.float32)
    amp = (r[:, : PREAMBLE_HALF_BITS + 1] * model.preamble[phase]).sum(axis=1)
    amp /= (model.preamble[phase] ** 2).sum(axis=1)
    amp = np.maximum(amp, np.float32(1e-6)).astype(np.float32)
    cols = model.offset[phase][:, None] + np.arange(2 * LONG_BITS)
    samples = np.take_along_axis(r, cols, axis=1).reshape(k, LONG_BITS, 2)
    # Squared error up to a per-bit constant: amp^2 E - 2 amp (r . level), per combo.
    m = np.empty((LONG_BITS, 8, k), dtype=np.float32)
    amp2 = amp * amp
    s0, s1 = samples[:, :, 0].T[:, None, :], samples[:, :, 1].T[:, None, :]  # (bits, 1, k)
    for which, bits in ((0, slice(0, 1)), (1, slice(1, LONG_BITS - 1)), (2, slice(-1, None))):
        # amp^2 E - 2 amp (r . level) as three products of (bits, 1, k) and (8, k): the
        # dot product has two terms, too few for a matrix product to pay.
        lv = model.level[which][phase] * (-2 * amp)[:, None, None]  # (k, 2, 8)
        out = m[bits]
        np.multiply(s0[bits], lv[:, 0].T, out=out)
        out += s1[bits] * lv[:, 1].T
        out += model.energy[which][phase].T * amp2
    # Before bit 0 the state's first bit is a placeholder: only b[-1] = 0 is allowed.
    f = np.zeros((4, k), dtype=np.float32)
    f[2:] = _BIG
    fwd = np.empty((LONG_BITS, 4, k), dtype=np.float32)
    for i in range(LONG_BITS):
        fwd[i] = f
        t = f[_FROM] + m[i]
        f = np.minimum(t[:4], t[4:])
    g = np.zeros((4, k), dtype=np.float32)
    back = np.empty((LONG_BITS, 4, k), dtype=np.float32)
    for i in range(LONG_BITS - 1, -1, -1):
        back[i] = g
        g = (m[i] + g[_TO]).reshape(4, 2, k).min(axis=1)
    total = fwd[:, _FROM] + m + back[:, _TO]  # (bits, 8, k)
    margin = total[:, ~_ONE].min(axis=1) - total[:, _ONE].min(axis=1)
    return (margin / amp).T
