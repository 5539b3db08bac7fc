"""Backoff and quiet logging for a local device that comes and goes (dongle, serial port).

In the field a USB receiver disappears for ordinary reasons: a loose cable, brown-out on
the Pi's USB power, a technician swapping ports. The source must keep the process alive
and reopen the device when it returns, without filling the journal while it is away:
one warning when it goes, one info line when it is back (with how long it was gone),
retries at debug level only. Same policy as tcp.TcpStream, for devices.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter


class Reopener:
    """State-change logging and capped, jittered exponential backoff between opens.

    Not thread-safe; one per source, used by the thread that opens the device.

    Args:
        name: label in log lines.
        stop: every wait returns early when it is set.
        log: logger of the owning source.
        counts: the source's counter (open_failed, device_lost, opens are added).
        backoff: first and largest wait (seconds). After the n-th failure in a row the
            wait is random in [c/2, c], c = min(largest, first * 2**(n-1)).
    """

    def __init__(
        self,
        name: str,
        stop: threading.Event,
        log: logging.Logger,
        counts: Counter[str],
        backoff: tuple[float, float] = (0.5, 30.0),
    ):
        backoff_min, backoff_max = backoff
        if not 0 < backoff_min <= backoff_max:
            raise ValueError("need 0 < backoff_min <= backoff_max")
        self.name = name
        self.stop = stop
        self.log = log
        self.counts = counts
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self._failures = 0
        self._down_since: float | None = None
        self._rng = random.Random()

    def opened(self, detail: str) -> None:
        """The device is open: log it (as a recovery when it was down) and reset backoff."""
        self.counts["opens"] += 1
        if self._down_since is not None:
            gone = time.monotonic() - self._down_since
            self.log.info("%s: reopened after %.1f s: %s", self.name, gone, detail)
            self._down_since = None
        else:
            self.log.info("%s: opened: %s", self.name, detail)

    def open_failed(self, reason: str) -> bool:
        """An open failed: log on the first failure only, wait; False when `stop` was set."""
        self.counts["open_failed"] += 1
        self._failures += 1
        self._down(f"cannot open: {reason}")
        return not self.stop.wait(self._backoff())

    def lost(self, reason: str, *, delivered: bool) -> bool:
        """An open device went away; wait before reopening. False when `stop` was set.

        Args:
            reason: why, for the log.
            delivered: the session produced data, so the backoff starts over (a device
                that worked is likely to be back soon: a replug, not a dead dongle).
        """
        self.counts["device_lost"] += 1
        self._failures = 1 if delivered else self._failures + 1
        self._down(f"lost: {reason}")
        return not self.stop.wait(self._backoff())

    def _down(self, what: str) -> None:
        if self._down_since is not None:
            self.log.debug("%s: %s; still retrying", self.name, what)
            return
        self._down_since = time.monotonic()
        self.log.warning(
            "%s: %s; reopening with backoff up to %g s, logging only recovery",
            self.name,
            what,
            self.backoff_max,
        )

    def _backoff(self) -> float:
        n = max(self._failures, 1)
        ceiling = min(self.backoff_max, self.backoff_min * 2 ** min(n - 1, 30))
        return self._rng.uniform(ceiling / 2, ceiling)
