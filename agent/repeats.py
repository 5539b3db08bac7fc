"""Replies that change nothing need not reach pyModeS.

An aircraft repeats itself: the same DF11 bytes to every interrogator's all-call, the
same DF5 identity to every roll-call, the same identification and status squitters,
often the same velocity, many times a second at a busy site (shared/data/iq/
modes1_2400.uc8: two thirds of its non-position frames are exact repeats within a
second). pyModeS's fields of such a repeat are those of the first copy; the tracker
still sees every frame (message count, last seen, signal). Which frames qualify, and
why their fields are the first copy's:

- DF11 all-call and DF5 identity replies, DF17 identification (TC 1-4), aircraft
  status (TC 28), target state (TC 29) and operational status (TC 31): pyModeS decodes
  them from their bytes alone (ADS-B never reads the aircraft's state), and none of
  their fields enters the per-aircraft state its Comm-B inference reads (speeds,
  track, heading, altitude). Any copy of the same bytes within the window is a repeat.
- DF17 airborne velocity (TC 19): pyModeS checks it against the aircraft's previous
  accepted velocity (its plausibility anchor) and keeps its speed and track for
  Comm-B inference. So a copy is a repeat only of the last velocity decoded for that
  address, when that one passed the check (the anchor then holds its very values), and
  only while nothing else of that aircraft brought a speed, track, heading or airspeed
  (Comm-B 5,0/6,0, surface positions: the entry is dropped when one is decoded).
- Everything else is always decoded: positions (CPR pairing and local references),
  Comm-B (inferred against the aircraft's state), altitude replies (their altitude
  enters the state), surface positions.

What skipping leaves behind in pyModeS: the times it keeps of an aircraft (last seen
and trust of its address, both kept 300 s; the time of its velocity anchor) may lag by
at most the window. The anchor's age widens the next velocity check only past its
floors (2 s for track, 4 s for speed), by at most a second's worth (10 degrees, 5 kt).
"""

from __future__ import annotations

from typing import Any

from agent.frame import Frame

# A repeat further apart than this is decoded again (and the cache stays small).
REPEAT_WINDOW_S = 1.0
# Forget old entries when this many accumulate (a busy site: a few hundred aircraft).
_PRUNE_AT = 4096
_DF5, _DF11, _DF17, _DF18 = 5, 11, 17, 18
_COMM_B_DFS = frozenset((20, 21))
# DF17 type codes decoded from their bytes alone whose fields pyModeS keeps no state of.
_STATELESS_TCS = frozenset((1, 2, 3, 4, 28, 29, 31))
_VELOCITY_TC = 19
# Fields that move pyModeS's velocity state (Comm-B inference, plausibility anchor).
_VELOCITY_FIELDS = (
    "groundspeed",
    "track",
    "true_track",
    "heading",
    "magnetic_heading",
    "indicated_airspeed",
    "true_airspeed",
    "airspeed",
    "mach",
)


# What may be done with a frame, by its first byte (DF and CA/CF) and, for DF17, its
# type code (the fifth byte's top five bits): one lookup a frame instead of a test each.
_NEVER, _STATELESS, _VELOCITY, _MAY_MOVE_VELOCITY = 0, 1, 2, 3


def _kind(msg: bytes) -> int:
    df = msg[0] >> 3
    if df == _DF17:
        tc = msg[4] >> 3
        if tc == _VELOCITY_TC:
            return _VELOCITY
        if tc in _STATELESS_TCS:
            return _STATELESS
        # Surface positions bring a speed and track.
        return _MAY_MOVE_VELOCITY if 5 <= tc <= 8 else _NEVER
    if df == _DF11 or df == _DF5:
        return _STATELESS
    # Comm-B replies (5,0/6,0), DF18 (ADS-R, TIS-B, other emitters: velocities too).
    return _MAY_MOVE_VELOCITY if df in _COMM_B_DFS or df == _DF18 else _NEVER


class RepeatedReplies:
    """Fields of replies decoded in the last REPEAT_WINDOW_S, for their repeats.

    Not thread-safe: the pipeline thread only.
    """

    def __init__(self, window_s: float = REPEAT_WINDOW_S):
        self.window_s = window_s
        # Stateless replies by their bytes: (receive time, fields).
        self._fields: dict[bytes, tuple[float, dict[str, Any]]] = {}
        # The last velocity decoded per address (bytes 1-3): (time, bytes, fields).
        self._velocity: dict[bytes, tuple[float, bytes, dict[str, Any]]] = {}

    def fields(self, frame: Frame) -> dict[str, Any] | None:
        """A private copy of the fields of a repeat, or None (decode it)."""
        msg = frame.msg
        kind = _kind(msg)
        if kind == _STATELESS:
            seen = self._fields.get(msg)
            if seen is None or not 0.0 <= frame.rx_time - seen[0] <= self.window_s:
                return None
            return dict(seen[1])
        if kind == _VELOCITY:
            last = self._velocity.get(msg[1:4])
            if (
                last is None
                or last[1] != msg
                or not 0.0 <= frame.rx_time - last[0] <= self.window_s
            ):
                return None
            return dict(last[2])
        return None

    def remember(self, frame: Frame, fields: dict[str, Any]) -> None:
        """Keep a decoded frame's fields (a copy) for its repeats, and forget a velocity
        that is no longer the last word on the aircraft's speed and track."""
        msg = frame.msg
        kind = _kind(msg)
        if kind == _STATELESS:
            cache = self._fields
            cache[msg] = (frame.rx_time, dict(fields))
            if len(cache) > _PRUNE_AT:
                cutoff = frame.rx_time - self.window_s
                self._fields = {m: v for m, v in cache.items() if v[0] >= cutoff}
        elif kind == _VELOCITY:
            if fields.get("velocity_mismatch"):  # rejected: a repeat may be judged otherwise
                self._velocity.pop(msg[1:4], None)
                return
            velocity = self._velocity
            velocity[msg[1:4]] = (frame.rx_time, msg, dict(fields))
            if len(velocity) > _PRUNE_AT:
                cutoff = frame.rx_time - self.window_s
                self._velocity = {a: v for a, v in velocity.items() if v[0] >= cutoff}
        elif (
            kind == _MAY_MOVE_VELOCITY
            and self._velocity
            and any(fields.get(k) is not None for k in _VELOCITY_FIELDS)
        ):
            icao = fields.get("icao")
            if isinstance(icao, str):
                self._velocity.pop(bytes.fromhex(icao), None)
