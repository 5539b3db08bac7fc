"""The unit every source hands to the rest of the pipeline.

A leaf module: it imports nothing from the package, so sources, the demodulator,
the simulator and the decoder can all share it without cycles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, fields
from itertools import repeat

# Downlink formats whose 56-bit form is short; everything with DF >= 16 is 112 bits.
SHORT_BITS = 56
LONG_BITS = 112


def frame_bits(df: int) -> int:
    """Length in bits implied by the downlink format (first 5 bits)."""
    return LONG_BITS if df >= 16 else SHORT_BITS


@dataclass(frozen=True, slots=True)
class Frame:
    """One Mode S reply as received, before any CRC judgement.

    Attributes:
        msg: 7 or 14 raw bytes.
        rx_time: receive time in seconds (Unix epoch for live sources; for replays,
            the recording's own clock so that tracks age the same way).
        signal_dbfs: signal level in dBFS (0 = full scale), None when unknown (AVR).
        source: name of the source that produced it, for counters and logs.
        ticks_12mhz: Beast/MLAT 12 MHz counter when the source provides one.
        repaired_bits: bits corrected by the demodulator's syndrome repair.
        accepted: the pipeline's verifier's verdict when the source already had the
            frame judged by it (an IQ source's demodulator, through verify.SourceGate,
            which also counted it); None when it is still to be judged. The pipeline
            judges only frames with None.
        ticks_epoch: ticks_12mhz of frames with the same epoch (and source) are on one
            clock; a new epoch (a reopened receiver) starts another.
    """

    msg: bytes
    rx_time: float
    signal_dbfs: float | None = None
    source: str = ""
    ticks_12mhz: int | None = None
    repaired_bits: int = 0
    accepted: bool | None = None
    ticks_epoch: int = 0

    @property
    def df(self) -> int:
        return self.msg[0] >> 3

    @property
    def hex(self) -> str:
        return self.msg.hex().upper()


# Each field's slot setter (bypasses the frozen __setattr__, as the generated __init__
# does with object.__setattr__) and default, for frames_from_columns.
_SETTERS = {name: getattr(Frame, name).__set__ for name in Frame.__slots__}
_DEFAULTS = {f.name: f.default for f in fields(Frame)}


def frames_from_columns(n: int, **columns: Iterable[object]) -> list[Frame]:
    """n Frames from per-field columns (iterables of n values; absent fields take their
    defaults): equal to Frame(...) per frame, at about a third of its cost.

    A demodulator makes thousands of Frames a second and the generated __init__ (one
    object.__setattr__ per field) was a third of its per-frame Python; here each
    field is set for all frames in one C-level map.
    """
    unknown = columns.keys() - _SETTERS.keys()
    if unknown:
        raise TypeError(f"unknown Frame fields: {sorted(unknown)}")
    frames = list(map(object.__new__, repeat(Frame, n)))
    for name, set_slot in _SETTERS.items():
        values = columns.get(name)
        if values is None:
            if _DEFAULTS[name] is MISSING:
                raise TypeError(f"Frame field {name} has no default")
            values = repeat(_DEFAULTS[name])
        deque(map(set_slot, frames, values), maxlen=0)
    return frames
