"""All-call replies that change nothing need not reach pyModeS.

An aircraft answers every interrogator's all-call with the same DF11 bytes (address,
capability, interrogator code), many times a second at a busy site: a quarter of the
frames of a real capture (shared/data/iq/modes1_2400.uc8), nearly all exact repeats
within a second. pyModeS's decode of a DF11 is a function of its bytes alone, so a
repeat's fields are those of the first copy; the tracker still sees every frame
(message count, last seen, signal). Other formats are always decoded: their fields
may depend on pyModeS's per-aircraft state (CPR pairs, Comm-B inference, validation).
"""

from __future__ import annotations

from typing import Any

from agent.frame import Frame

# A repeat further apart than this is decoded again (and the cache stays small).
REPEAT_WINDOW_S = 1.0
# Forget old entries when this many accumulate (a busy site: a few hundred aircraft).
_PRUNE_AT = 4096
_DF11 = 11


class RepeatedReplies:
    """Fields of DF11 replies decoded in the last REPEAT_WINDOW_S, by their bytes.

    Not thread-safe: the pipeline thread only.
    """

    def __init__(self, window_s: float = REPEAT_WINDOW_S):
        self.window_s = window_s
        self._fields: dict[bytes, tuple[float, dict[str, Any]]] = {}

    def fields(self, frame: Frame) -> dict[str, Any] | None:
        """A private copy of the fields of an exact repeat, or None (decode it)."""
        if frame.msg[0] >> 3 != _DF11:
            return None
        seen = self._fields.get(frame.msg)
        if seen is None or not 0.0 <= frame.rx_time - seen[0] <= self.window_s:
            return None
        return dict(seen[1])

    def remember(self, frame: Frame, fields: dict[str, Any]) -> None:
        """Keep a decoded DF11's fields (a copy) for its repeats."""
        if frame.msg[0] >> 3 != _DF11:
            return
        cache = self._fields
        cache[frame.msg] = (frame.rx_time, dict(fields))
        if len(cache) > _PRUNE_AT:
            cutoff = frame.rx_time - self.window_s
            self._fields = {m: v for m, v in cache.items() if v[0] >= cutoff}
