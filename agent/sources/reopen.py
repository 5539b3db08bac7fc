"""Backoff and quiet logging for an input that comes and goes (dongle, serial port, feed).

In the field a USB receiver disappears for ordinary reasons: a loose cable, brown-out on
the Pi's USB power, a technician swapping ports; a network feed when readsb restarts or
the Wi-Fi drops. The source must keep the process alive and reopen the input when it
returns, without filling the journal while it is away: one warning when it goes, one
info line when it is back (with how long it was gone), retries at debug level only.
Devices (rtlsdr, serial_port) and tcp.TcpStream share this; only the words differ.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Wording:
    """Counter names and log phrases of one kind of input.

    The templates are str.format()ed with name, detail (what was opened), gone (seconds
    down), what (why it is down) and most (the largest wait).
    """

    opens: str = "opens"
    failures: str = "open_failed"
    losses: str = "device_lost"
    cannot: str = "cannot open"
    lost: str = "lost"
    up: str = "{name}: opened: {detail}"
    up_again: str = "{name}: reopened after {gone:.1f} s: {detail}"
    down: str = "{name}: {what}; reopening with backoff up to {most:g} s, logging only recovery"


DEVICE = Wording()


class Reopener:
    """State-change logging and capped, jittered exponential backoff between opens.

    Not thread-safe; one per source, used by the thread that opens the device.

    Args:
        name: label in log lines.
        stop: every wait returns early when it is set.
        log: logger of the owning source.
        counts: the source's counter (wording's opens, failures and losses are added).
        backoff: first and largest wait (seconds). After the n-th failure in a row the
            wait is random in [c/2, c], c = min(largest, first * 2**(n-1)).
        wording: counter names and log phrases (DEVICE unless given).
    """

    def __init__(
        self,
        name: str,
        stop: threading.Event,
        log: logging.Logger,
        counts: Counter[str],
        backoff: tuple[float, float] = (0.5, 30.0),
        wording: Wording = DEVICE,
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
        self.words = wording
        self._failures = 0
        self._down_since: float | None = None
        self._rng = random.Random()
        # The wait the last open_failed/lost chose (seconds).
        self.pause_s = 0.0

    def opened(self, detail: str) -> None:
        """The input is open: log it (as a recovery when it was down)."""
        self.counts[self.words.opens] += 1
        if self._down_since is not None:
            gone = time.monotonic() - self._down_since
            self.log.info(self.words.up_again.format(name=self.name, gone=gone, detail=detail))
            self._down_since = None
        else:
            self.log.info(self.words.up.format(name=self.name, detail=detail))

    def open_failed(self, reason: str, *, wait: bool = True) -> bool:
        """An open failed: log on the first failure only, wait; False when `stop` was set.

        With `wait` false the caller waits `pause_s` itself (a source that keeps giving
        the pipeline empty batches meanwhile: rtlsdr.RtlSdrSource.batches).
        """
        self.counts[self.words.failures] += 1
        self._failures += 1
        self._down(f"{self.words.cannot}: {reason}")
        return self._pause(wait)

    def lost(self, reason: str, *, delivered: bool, wait: bool = True) -> bool:
        """An open device went away; wait before reopening. False when `stop` was set.

        Args:
            reason: why, for the log.
            delivered: the session produced data, so the backoff starts over (a device
                that worked is likely to be back soon: a replug, not a dead dongle).
            wait: as for open_failed.
        """
        self.counts[self.words.losses] += 1
        self._failures = 1 if delivered else self._failures + 1
        self._down(f"{self.words.lost}: {reason}")
        return self._pause(wait)

    def _pause(self, wait: bool) -> bool:
        self.pause_s = self._backoff()
        if wait:
            return not self.stop.wait(self.pause_s)
        return not self.stop.is_set()

    def _down(self, what: str) -> None:
        if self._down_since is not None:
            self.log.debug("%s: %s; still retrying", self.name, what)
            return
        self._down_since = time.monotonic()
        self.log.warning(self.words.down.format(name=self.name, what=what, most=self.backoff_max))

    def _backoff(self) -> float:
        return self.wait_s(self._failures)

    def wait_s(self, failures: int) -> float:
        """The wait after `failures` failures in a row (at least one is assumed)."""
        n = max(failures, 1)
        ceiling = min(self.backoff_max, self.backoff_min * 2 ** min(n - 1, 30))
        return self._rng.uniform(ceiling / 2, ceiling)
