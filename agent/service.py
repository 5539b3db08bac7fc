"""The service monitor: a watchdog that only pings while work gets done, the status file
that `adsb-agent status` reads, and systemd's STATUS= line.

The unit is `Type=notify` with `WatchdogSec=`. A ping that a timer thread sends
whatever happens would keep a wedged agent alive forever, so `ServiceMonitor` pings
only while counters that prove progress move: samples, bytes or frames from a source
(dump1090/readsb send a Beast/AVR heartbeat every 60 s even under a quiet sky; a
dongle delivers samples without aircraft), reconnect attempts (the reader is alive;
restarting would not fix the far end), frames through the pipeline, or records acked
by the broker. When nothing moved for the stall window, pings stop, systemd kills
the agent and `Restart=on-failure` starts a fresh one.

What each component's colour is: agent/health.py. How systemd is told: agent/notify.py.
Where the status file is written: agent/status.py.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.health import RED, HealthJudge, Reading, seconds_text
from agent.notify import Notifier
from agent.outputs.base import LinkState
from agent.stats import copy_counts
from agent.status import write_atomically

log = logging.getLogger("agent.service")

# Seconds between status rewrites (and watchdog checks when no watchdog is set).
STATUS_INTERVAL_S = 5.0
# The status file is stale this many intervals after it was written: a reader that
# finds an expired file knows the agent is gone or wedged, not merely quiet.
EXPIRY_INTERVALS = 3
# Without a systemd watchdog, how long without progress before a component is red.
# Above dump1090's 60 s heartbeat so a quiet sky is never called a stall.
DEFAULT_STALL_S = 150.0
# Counters that prove the publishers move records (suffixes of pipeline.stats() keys).
_OUTPUT_PROGRESS = (".acked", ".published", ".sent")


def pipeline_probe(pipeline: Any, sources: Sequence[Any]) -> Callable[[], Reading]:
    """A probe over a running `Pipeline` and its sources (only counters, `stats()`,
    `tracker.aircraft` and the outputs' `link_state()` and `component()` are read)."""

    def probe() -> Reading:
        links: dict[str, LinkState] = {}
        outputs: dict[str, tuple[str, str]] = {}
        for out in list(pipeline.publishers):
            state = out.link_state()
            if state is not None:
                links["mqtt" if not links else f"mqtt #{len(links) + 1}"] = state
            shown = out.component()
            if shown is not None:
                name, colour, message = shown
                outputs[name] = (colour, message)
        return Reading(
            sources={src.name: copy_counts(src.counts) for src in sources},
            stats=pipeline.stats(),
            aircraft=len(pipeline.tracker.aircraft),
            links=links,
            outputs=outputs,
        )

    return probe


class ServiceMonitor:
    """The `service-monitor` thread: watchdog pings, STATUS= and the status file.

    Every `interval` seconds (half of WatchdogSec when systemd set one, else
    STATUS_INTERVAL_S) it takes a `Reading`, decides whether the agent made progress
    within the stall window (WatchdogSec, or DEFAULT_STALL_S), pings only if it did,
    and rewrites the status file. It stops when `stop` is set.

    Args:
        probe: returns a fresh Reading (called from this thread only).
        stop: the agent's shared stop event.
        notifier: where READY/WATCHDOG/STATUS/STOPPING go.
        site: site name written into the status file.
        status_path: the JSON status file, or None for none.
        interval, stall_s: override the values derived from the watchdog (tests).
        clock: monotonic clock (tests may pass their own).
        wall: wall clock for the times written into the status file.
    """

    def __init__(
        self,
        probe: Callable[[], Reading],
        stop: threading.Event,
        notifier: Notifier,
        *,
        site: str = "site",
        status_path: str | Path | None = None,
        interval: float | None = None,
        stall_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ):
        wd = notifier.watchdog_s
        self.probe = probe
        self.stop = stop
        self.notifier = notifier
        self.site = site
        self.status_path = Path(status_path) if status_path else None
        self.interval = interval or (min(STATUS_INTERVAL_S, wd / 2) if wd else STATUS_INTERVAL_S)
        self.stall_s = stall_s or (max(wd, self.interval * 2) if wd else DEFAULT_STALL_S)
        self.clock = clock
        self.wall = wall  # the App's wall clock, for the status file's times
        self.pings = 0
        self.stalled = False
        self._thread = threading.Thread(target=self._run, name="service-monitor", daemon=True)
        self._started = clock()
        self._last_progress = self._started
        self._progress_key: tuple[int, ...] | None = None
        self.judge = HealthJudge(site, self.stall_s, self._started)
        self._status_error: str | None = None
        # The latest status document (for readers in other threads: the web page).
        self.last_status: dict[str, Any] | None = None

    def start(self, ready_status: str = "started") -> ServiceMonitor:
        """Say READY=1 (sources open, config valid, publishers made) and start checking."""
        self.notifier.ready(ready_status)
        self._thread.start()
        return self

    def close(self) -> None:
        """Say STOPPING=1, stop the thread (sets `stop`), mark the status file stopped."""
        self.notifier.stopping()
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        if self.status_path is not None:
            now = self.wall()
            self._write(
                {
                    "v": 1,
                    "site": self.site,
                    "pid": os.getpid(),
                    "updated": round(now, 3),
                    "expires": round(now, 3),
                    "state": RED,
                    "summary": "stopped",
                    "components": {},
                }
            )
        self.notifier.close()

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # the monitor must outlive a bad reading
                log.exception("service monitor check failed; trying again next interval")

    def check(self) -> dict[str, Any]:
        """One round: ping if progress, STATUS=, status file. Returns the status dict."""
        now = self.clock()
        reading = self.probe()
        key = _progress_key(reading)
        if key != self._progress_key:
            if self.stalled:
                log.warning(
                    "progress again after %s without any", seconds_text(now - self._last_progress)
                )
                self.stalled = False
            self._progress_key = key
            self._last_progress = now
        idle = now - self._last_progress
        if idle <= self.stall_s:
            if self.notifier.watchdog():
                self.pings += 1
        elif not self.stalled:
            self.stalled = True
            action = (
                "systemd's watchdog will restart the agent"
                if self.notifier.watchdog_s
                else "no watchdog is set: restart it by hand"
            )
            log.error(
                "no progress for %s (no samples, frames or acknowledgements); %s",
                seconds_text(idle),
                action,
            )
        status = self.judge.status(
            reading,
            now,
            idle,
            stalled=self.stalled,
            wall=self.wall(),
            expires_s=EXPIRY_INTERVALS * self.interval,
            watchdog_s=self.notifier.watchdog_s,
        )
        self.last_status = status
        self.notifier.status(status["summary"])
        if self.status_path is not None:
            self._write(status)
        return status

    def _write(self, status: dict[str, Any]) -> None:
        assert self.status_path is not None
        try:
            write_atomically(self.status_path, json.dumps(status, indent=1) + "\n")
            self._status_error = None
        except OSError as err:
            if err.strerror != self._status_error:
                log.warning("cannot write status file %s: %s", self.status_path, err.strerror)
                self._status_error = err.strerror


def _progress_key(reading: Reading) -> tuple[int, ...]:
    """Numbers that change only when work is done (see the module docstring)."""
    source_total = sum(sum(c.values()) for c in reading.sources.values())
    output = sum(v for k, v in reading.stats.items() if k.endswith(_OUTPUT_PROGRESS))
    return (source_total, reading.stats.get("pipeline.frames", 0), output)
