"""The byte formats the readsb ecosystem reads: Beast binary, AVR text, BaseStation (SBS).

Pure functions of a frame (and, for SBS, its decoded fields), so each is tested
byte for byte without a socket. The layouts are the ones dump1090 and readsb write:

- Beast: 0x1a, a type byte (0x31 Mode A/C, 0x32 Mode S short, 0x33 Mode S long), a
  6-byte big-endian 12 MHz counter, a signal byte, the message; every 0x1a after the
  leading one is doubled.
- AVR: `*HEX;` or, with timestamps, `@` + 12 hex digits of the counter + `HEX;`.
- SBS: `MSG,<type>,1,1,<ICAO>,1,<date>,<time>,<date>,<time>,` then callsign, altitude,
  ground speed, track, lat, lon, vertical rate, squawk, alert, emergency, SPI, on
  ground: 22 comma-separated fields, unknown ones empty, lines ending in CR LF.

The counter is the frame's `ticks_12mhz`: the receiver's for Beast inputs (passed
through unchanged), the demodulator's sample clock for IQ sources. A frame without one
(an untimed AVR input) is sent with counter 0, as dump1090-fa does: mlat-client then
knows it carries no time. Deriving a count from the wall clock would hand it a clock
with millisecond jitter that it would take for a receiver's.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any

from agent.frame import Frame

ESCAPE = 0x1A
_ESCAPE_BYTE = b"\x1a"
_ESCAPED = b"\x1a\x1a"
# Beast type byte by message length in bytes.
BEAST_TYPES = {2: 0x31, 7: 0x32, 14: 0x33}
_TICKS_MASK = (1 << 48) - 1
_EMERGENCY_SQUAWKS = frozenset(("7500", "7600", "7700"))
_AIRBORNE_POSITION_TCS = frozenset(range(9, 19)) | frozenset(range(20, 23))
# BaseStation message type by downlink format (DF17/18 go by type code instead).
_SBS_TYPE_BY_DF = {4: 5, 20: 5, 5: 6, 21: 6, 0: 7, 16: 7, 11: 8}


def signal_byte(signal_dbfs: float | None) -> int:
    """The Beast signal byte for a power in dBFS: sqrt(power) * 255, as readsb sends.

    The inverse of agent.sources.stream.signal_dbfs, so a Beast input re-served by
    the agent keeps its levels byte for byte; unknown is 0 ("not measured").
    """
    if signal_dbfs is None or math.isnan(signal_dbfs):
        return 0
    return max(1, min(255, round(255.0 * 10.0 ** (signal_dbfs / 20.0))))


def beast_frame(frame: Frame) -> bytes:
    """One Beast binary message for `frame` (escaped)."""
    kind = BEAST_TYPES[len(frame.msg)]
    ticks = (frame.ticks_12mhz or 0) & _TICKS_MASK
    body = ticks.to_bytes(6, "big") + bytes((signal_byte(frame.signal_dbfs),)) + frame.msg
    return bytes((ESCAPE, kind)) + body.replace(_ESCAPE_BYTE, _ESCAPED)


def avr_line(frame: Frame, timestamps: bool = False) -> bytes:
    """One AVR line: `*HEX;` or `@TTTTTTTTTTTTHEX;` (dump1090 --mlat)."""
    if timestamps:
        ticks = (frame.ticks_12mhz or 0) & _TICKS_MASK
        return f"@{ticks:012X}{frame.msg.hex().upper()};\n".encode("ascii")
    return f"*{frame.msg.hex().upper()};\n".encode("ascii")


def sbs_type(df: int, typecode: int | None) -> int | None:
    """The BaseStation message type (1-8) of a frame, None when SBS has none for it."""
    if df in (17, 18):
        if typecode is None:
            return None
        if 1 <= typecode <= 4:
            return 1  # identification
        if 5 <= typecode <= 8:
            return 2  # surface position
        if typecode in _AIRBORNE_POSITION_TCS:
            return 3  # airborne position
        if typecode == 19:
            return 4  # velocity
        return None
    return _SBS_TYPE_BY_DF.get(df)


@lru_cache(maxsize=4)
def _second(whole: int) -> tuple[str, str]:
    """Date and hh:mm:ss of one second in local time (lines come many per second)."""
    tm = time.localtime(whole)
    return (
        f"{tm.tm_year:04d}/{tm.tm_mon:02d}/{tm.tm_mday:02d}",
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}",
    )


def _stamp(t: float) -> tuple[str, str]:
    """SBS date and time in local time, as dump1090 writes them."""
    whole = math.floor(t)
    date, hms = _second(whole)
    return date, f"{hms}.{min(int((t - whole) * 1000), 999):03d}"


def _num(value: Any) -> str:
    return "" if value is None else str(round(value))


def _flag(value: bool | None) -> str:
    return "" if value is None else ("-1" if value else "0")


def _on_ground(df: int, typecode: int | None, fields: dict[str, Any]) -> bool | None:
    if typecode is not None and df in (17, 18):
        if 5 <= typecode <= 8:
            return True
        if typecode in _AIRBORNE_POSITION_TCS or typecode == 19:
            return False
    fs = fields.get("flight_status")
    if fs in (1, 3):
        return True
    if fs in (0, 2):
        return False
    return None


def sbs_line(frame: Frame, fields: dict[str, Any], logged: float | None = None) -> bytes | None:
    """The BaseStation line for one decoded frame, or None when SBS has no type for it.

    `fields` are the decoder's (agent.decode.Decoder): lat/lon are present only when
    the decoder accepted a position from this frame. `logged` is when the line is
    written (default now); the generated time is the frame's receive time.
    """
    typecode = fields.get("typecode")
    msg_type = sbs_type(frame.df, typecode)
    icao = fields.get("icao")
    if msg_type is None or not icao:
        return None
    gen_date, gen_time = _stamp(frame.rx_time)
    log_date, log_time = _stamp(time.time() if logged is None else logged)
    callsign = (fields.get("callsign") or "").strip("_ ")
    lat, lon = fields.get("latitude"), fields.get("longitude")
    position = f"{lat:.5f},{lon:.5f}" if lat is not None and lon is not None else ","
    squawk = fields.get("squawk")
    fs = fields.get("flight_status")
    if squawk or fs is not None:
        alert = _flag(fs in (2, 3, 4)) if fs is not None else ""
        emergency = _flag(squawk in _EMERGENCY_SQUAWKS) if squawk else ""
        spi = _flag(fs in (4, 5)) if fs is not None else ""
    else:
        alert = emergency = spi = ""
    parts = (
        f"MSG,{msg_type},1,1,{icao.upper()},1,{gen_date},{gen_time},{log_date},{log_time}",
        callsign,
        _num(fields.get("altitude")),
        _num(fields.get("groundspeed")),
        _num(fields.get("track")),
        position,
        _num(fields.get("vertical_rate")),
        squawk or "",
        alert,
        emergency,
        spi,
        _flag(_on_ground(frame.df, typecode, fields)),
    )
    return (",".join(parts) + "\r\n").encode("ascii", "replace")
