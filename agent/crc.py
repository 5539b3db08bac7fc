"""Mode S CRC-24 parity (generator 0xFFF409), per frame and vectorised.

The *syndrome* of a frame is the CRC remainder over the whole frame including its
parity field: 0 for a clean DF17/18 or DF11 with interrogator 0, the aircraft address
for the address/parity formats (DF0/4/5/16/20/21), and the interrogator code for DF11.
"""

from __future__ import annotations

import numpy as np

GENERATOR = 0xFFF409
_MASK = 0xFFFFFF


def _build_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):
        c = byte << 16
        for _ in range(8):
            c = ((c << 1) ^ GENERATOR) if c & 0x800000 else (c << 1)
        table[byte] = c & _MASK
    return table


TABLE = _build_table()
_TABLE_LIST = [int(v) for v in TABLE]


def crc24(data: bytes) -> int:
    """CRC remainder of `data` (no parity field) as sent in the last 24 bits."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & _MASK) ^ _TABLE_LIST[((crc >> 16) ^ byte) & 0xFF]
    return crc


def syndrome(msg: bytes) -> int:
    """CRC over the data part XOR the transmitted parity (0 means clean for DF11/17/18)."""
    return crc24(msg[:-3]) ^ int.from_bytes(msg[-3:], "big")


def syndromes(msgs: np.ndarray) -> np.ndarray:
    """Syndromes of many frames at once.

    Args:
        msgs: uint8 array of shape (n, 7) or (n, 14), one frame per row.
    Returns:
        uint32 array of n syndromes.
    """
    n, nbytes = msgs.shape
    crc = np.zeros(n, dtype=np.uint32)
    for col in range(nbytes - 3):
        idx = ((crc >> 16) ^ msgs[:, col]) & 0xFF
        crc = ((crc << 8) & _MASK) ^ TABLE[idx]
    parity = (
        (msgs[:, -3].astype(np.uint32) << 16)
        | (msgs[:, -2].astype(np.uint32) << 8)
        | msgs[:, -1].astype(np.uint32)
    )
    return crc ^ parity


def single_bit_syndromes(nbits: int) -> dict[int, int]:
    """Map syndrome -> bit index for every single-bit error in an `nbits` frame.

    Bits in the first 5 (the DF field) are excluded: a flipped DF changes the frame's
    length and meaning, so repairing it would invent frames.
    """
    nbytes = nbits // 8
    table: dict[int, int] = {}
    for bit in range(5, nbits):
        buf = bytearray(nbytes)
        buf[bit // 8] = 0x80 >> (bit % 8)
        table[syndrome(bytes(buf))] = bit
    return table


def flip_bit(msg: bytes, bit: int) -> bytes:
    """Copy of `msg` with one bit inverted (bit 0 = most significant of byte 0)."""
    buf = bytearray(msg)
    buf[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(buf)
