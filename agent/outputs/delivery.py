"""Which outbox rows the MQTT output sends next.

After an outage the outbox holds a backlog. Live data must keep flowing while the
backlog drains at a capped rate (a satellite link must not be flooded), and each
aircraft's records must still arrive in order. So: rows committed since the link came
up are *live* and go at once, unless their aircraft still has backlog rows, in which
case they wait behind them; backlog rows go oldest first at `drain_rate` per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from agent.outbox import Outbox, Row

# Backlog tokens may accumulate for at most this long (a burst after an idle moment).
_BURST_S = 1.0


class DeliveryQueue:
    """Single-threaded scheduler over an Outbox (used by the MQTT publisher thread)."""

    def __init__(
        self, outbox: Outbox, drain_rate: float, clock: Callable[[], float] = time.monotonic
    ):
        if drain_rate <= 0:
            raise ValueError("drain_rate must be > 0")
        self.outbox = outbox
        self.drain_rate = drain_rate
        self.clock = clock
        self.reset(())

    def reset(self, in_flight: Collection[int]) -> None:
        """Start over from the outbox contents (after every (re)connect)."""
        self._live_start = self.outbox.next_seq
        self._backlog_last = self.outbox.last_seq_by_icao(self._live_start)
        self._backlog_cursor = 0
        self._live_cursor = self._live_start - 1
        self._held: list[tuple[int, str]] = []
        self._tokens = 0.0
        self._last_refill = self.clock()
        self._skip = set(in_flight)

    @property
    def backlog_aircraft(self) -> int:
        return len(self._backlog_last)

    def next_rows(self, room: int, exclude: Collection[int] = ()) -> list[Row]:
        """Up to `room` rows to publish now, in the order to publish them."""
        out: list[Row] = []
        if room <= 0:
            return out
        ready = [seq for seq, icao in self._held if icao not in self._backlog_last][:room]
        if ready:
            taken = set(ready)
            self._held = [h for h in self._held if h[0] not in taken]
            out.extend(self.outbox.rows(ready))
        if len(out) < room:
            for row in self.outbox.rows_after(self._live_cursor, room - len(out)):
                self._live_cursor = row.seq
                if row.icao in self._backlog_last:
                    self._held.append((row.seq, row.icao))
                else:
                    out.append(row)
        if len(out) < room and (self._backlog_last or self._backlog_cursor < self._live_start):
            out.extend(self._backlog(room - len(out), exclude))
        return out

    def _backlog(self, room: int, exclude: Collection[int]) -> list[Row]:
        now = self.clock()
        self._tokens = min(
            self._tokens + (now - self._last_refill) * self.drain_rate,
            max(1.0, self.drain_rate * _BURST_S),
        )
        self._last_refill = now
        want = min(room, int(self._tokens))
        if want <= 0:
            return []
        rows = self.outbox.rows_after(self._backlog_cursor, want, below=self._live_start)
        out = []
        for row in rows:
            self._backlog_cursor = row.seq
            if self._backlog_last.get(row.icao) == row.seq:
                del self._backlog_last[row.icao]
            if row.seq in self._skip or row.seq in exclude:
                continue
            out.append(row)
        self._tokens -= len(out)
        if len(rows) < want:  # reached the live boundary: nothing older remains
            self._backlog_last.clear()
            self._backlog_cursor = self._live_start
        return out
