"""Raw IQ bytes -> magnitude (every rate) and complex samples (coherent rates).

Magnitudes are float32 scaled so that 1.0 is full scale (0 dBFS) for one component:
a UC8 byte of 255 or 0 on I with Q at mid-scale, or an SC16 value of +/-32768.

UC8 (RTL-SDR native, offset 127.5) goes through a 64K-entry table indexed by the I/Q
byte *pair*: one gather per sample instead of two subtractions, two squares and a square
root, which is the cost that dominates a numpy demodulator at 2.4 MS/s.
"""

from __future__ import annotations

import numpy as np

UC8_OFFSET = 127.5
SC16_FULL_SCALE = 32768.0


def _build_uc8_table() -> np.ndarray:
    """Magnitude of every (I, Q) byte pair, indexed by the little-endian uint16 I | Q << 8."""
    comp = (np.arange(256, dtype=np.float64) - UC8_OFFSET) / UC8_OFFSET
    i = comp[np.arange(65536) & 0xFF]
    q = comp[np.arange(65536) >> 8]
    return np.sqrt(i * i + q * q).astype(np.float32)


UC8_TABLE = _build_uc8_table()
# Samples converted per pass: ndarray.take makes an intp copy of its indices (8 bytes a
# sample: 4 MB for a 524288-sample block, all of it in the peak RSS), and SC16 needs
# float temporaries; in passes of this many they stay small, at the same speed.
CONVERT_CHUNK = 65536
# The same pairs as complex samples, for the coherent trellis (agent.demod.coherent).
UC8_IQ_TABLE = (
    (np.arange(65536) & 0xFF) + 1j * (np.arange(65536) >> 8) - UC8_OFFSET * (1 + 1j)
).astype(np.complex64) / np.float32(UC8_OFFSET)


def uc8_to_mag(
    raw: bytes | bytearray | memoryview | np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Magnitudes of interleaved unsigned 8-bit I/Q; a trailing odd byte is ignored.

    Args:
        raw: I, Q, I, Q, ... bytes with offset 127.5.
        out: float32 array of len(raw) // 2 to write them into (a new one when None).
    Returns:
        float32 array of len(raw) // 2 magnitudes (1.0 = full scale).
    """
    return _uc8_lookup(UC8_TABLE, raw, out)


def _uc8_lookup(
    table: np.ndarray, raw: bytes | bytearray | memoryview | np.ndarray, out: np.ndarray | None
) -> np.ndarray:
    """table[I | Q << 8] of every UC8 sample, into `out` (new when None), in passes."""
    data = np.frombuffer(raw, dtype=np.uint8)
    pairs = data[: data.size & ~1].view("<u2")
    if out is None:
        out = np.empty(pairs.size, dtype=table.dtype)
    elif out.shape != pairs.shape:
        raise ValueError("out must hold one value per sample")
    # Every uint16 indexes the 64K table, so "wrap" never wraps: it only skips the
    # bounds check, and with `out` the copy that "raise" makes of it (a fifth faster).
    for a in range(0, pairs.size, CONVERT_CHUNK):
        b = a + CONVERT_CHUNK
        table.take(pairs[a:b], out=out[a:b], mode="wrap")
    return out


def sc16_to_mag(
    raw: bytes | bytearray | memoryview | np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Magnitudes of interleaved little-endian signed 16-bit I/Q; a partial sample is ignored.

    Args:
        raw: I, Q, ... as int16 little-endian (4 bytes per sample).
        out: float32 array of len(raw) // 4 to write them into (a new one when None).
    Returns:
        float32 array of len(raw) // 4 magnitudes (1.0 = full scale).
    """
    data = np.frombuffer(raw, dtype=np.uint8)
    values = data[: data.size & ~3].view("<i2")
    n = values.size // 2
    if out is None:
        out = np.empty(n, dtype=np.float32)
    elif out.shape != (n,):
        raise ValueError("out must hold one value per sample")
    for a in range(0, n, CONVERT_CHUNK):
        iq = values[2 * a : 2 * (a + CONVERT_CHUNK)].astype(np.float32)
        i, q = iq[0::2], iq[1::2]
        mag = np.sqrt(i * i + q * q, out=out[a : a + CONVERT_CHUNK])
        mag *= np.float32(1.0 / SC16_FULL_SCALE)
    return out


def uc8_to_iq(raw: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Complex64 samples of interleaved UC8 I/Q (1.0 = full scale), a gather per sample."""
    return _uc8_lookup(UC8_IQ_TABLE, raw, None)


def sc16_to_iq(raw: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Complex64 samples of interleaved little-endian SC16 I/Q (1.0 = full scale)."""
    data = np.frombuffer(raw, dtype=np.uint8)
    iq = data[: data.size & ~3].view("<i2").astype(np.float32)
    iq *= np.float32(1.0 / SC16_FULL_SCALE)
    return iq.view(np.complex64)


BYTES_PER_SAMPLE = {"uc8": 2, "sc16": 4}
CONVERTERS = {"uc8": uc8_to_mag, "sc16": sc16_to_mag}
IQ_CONVERTERS = {"uc8": uc8_to_iq, "sc16": sc16_to_iq}
