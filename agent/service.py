"""systemd integration: sd_notify, a watchdog that only pings while work gets done, and
the local status file that `adsb-agent status` reads.

The unit is `Type=notify` with `WatchdogSec=`. A ping that a timer thread sends
whatever happens would keep a wedged agent alive forever, so `ServiceMonitor` pings
only while counters that prove progress move: samples, bytes or frames from a source
(dump1090/readsb send a Beast/AVR heartbeat every 60 s even under a quiet sky; a
dongle delivers samples without aircraft), reconnect attempts (the reader is alive;
restarting would not fix the far end), frames through the pipeline, or records acked
by the broker. When nothing moved for the stall window, pings stop, systemd kills
the agent and `Restart=on-failure` starts a fresh one.

sd_notify is a datagram of `KEY=value` lines on the unix socket named by
$NOTIFY_SOCKET (a leading `@` means the abstract namespace); no library is needed.
Without $NOTIFY_SOCKET every notification is a no-op, so `run` behaves the same by
hand and under systemd.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.outputs.base import LinkState

log = logging.getLogger("agent.service")

# Status file colours, best to worst.
GREEN, AMBER, RED = "green", "amber", "red"
_RANK = {GREEN: 0, AMBER: 1, RED: 2}
# Seconds between status rewrites (and watchdog checks when no watchdog is set).
STATUS_INTERVAL_S = 5.0
# The status file is stale this many intervals after it was written: a reader that
# finds an expired file knows the agent is gone or wedged, not merely quiet.
EXPIRY_INTERVALS = 3
# Without a systemd watchdog, how long without progress before a component is red.
# Above dump1090's 60 s heartbeat so a quiet sky is never called a stall.
DEFAULT_STALL_S = 150.0
# A source with no frames for this long is amber (alive but nothing heard).
QUIET_S = 90.0
# The broker link may be down this long before it turns red (a cellular hiccup is amber).
LINK_RED_S = 300.0
# Counters that prove the publishers move records (suffixes of pipeline.stats() keys).
_OUTPUT_PROGRESS = (".acked", ".published", ".sent")
# Source counters that name frames, for per-source frame rates.
_FRAME_KEYS = ("frames",)
_FRAME_PREFIXES = ("accepted_df",)
# Source counters that count failed attempts to reach the input.
_FAILURE_KEYS = ("connect_failed", "open_failed", "device_lost", "disconnects")


class Notifier:
    """Sends sd_notify datagrams to $NOTIFY_SOCKET; a no-op when it is not set.

    Never raises: a notification that cannot be sent is logged once, since the agent
    must keep receiving even if the service manager went away.
    Thread-safe (one datagram per call).
    """

    def __init__(self, environ: Mapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        if address is not None and address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address
        self.watchdog_s = _watchdog_seconds(env)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send `KEY=value` lines as one datagram; True when it was delivered."""
        if self.address is None:
            return False
        data = "\n".join(a.replace("\n", " ") for a in assignments).encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.sendto(data, self.address)
                return True
            except OSError as err:
                if not self._warned:
                    log.warning("cannot notify systemd at %s: %s", self.address, err.strerror)
                    self._warned = True
                return False

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self, status: str = "stopping") -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """WatchdogSec as systemd passes it (WATCHDOG_USEC, for WATCHDOG_PID if set)."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None


@dataclass(frozen=True)
class Reading:
    """One look at the running agent, taken from the monitor thread.

    sources: each source's counters (a copy); stats: `Pipeline.stats()`;
    aircraft: aircraft tracked; links: the link state of each output that has a link,
    named "mqtt", "mqtt #2", ... in the pipeline's order.
    """

    sources: dict[str, dict[str, int]]
    stats: dict[str, int]
    aircraft: int = 0
    links: dict[str, LinkState] = field(default_factory=dict)


def pipeline_probe(pipeline: Any, sources: Sequence[Any]) -> Callable[[], Reading]:
    """A probe over a running `Pipeline` and its sources (only counters, `stats()`,
    `tracker.aircraft` and the outputs' `link_state()` are read)."""

    def probe() -> Reading:
        links: dict[str, LinkState] = {}
        for out in list(pipeline.publishers):
            state = out.link_state()
            if state is not None:
                links["mqtt" if not links else f"mqtt #{len(links) + 1}"] = state
        return Reading(
            sources={src.name: _copy_counts(src.counts) for src in sources},
            stats=pipeline.stats(),
            aircraft=len(pipeline.tracker.aircraft),
            links=links,
        )

    return probe


def _copy_counts(counts: Mapping[str, int]) -> dict[str, int]:
    for _ in range(5):  # the reader thread may add a key while we copy
        try:
            return dict(counts.items())
        except RuntimeError:
            continue
    return {}


@dataclass
class _SourceState:
    last_change: float
    last_frames: float
    prev: dict[str, int] = field(default_factory=dict)


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
        self.pings = 0
        self.stalled = False
        self._thread = threading.Thread(target=self._run, name="service-monitor", daemon=True)
        self._started = clock()
        self._last_progress = self._started
        self._progress_key: tuple[int, ...] | None = None
        self._sources: dict[str, _SourceState] = {}
        self._link_down_since: dict[str, float] = {}
        self._prev_stats: dict[str, int] = {}
        self._prev_at = self._started
        self._status_error: str | None = None

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
            now = time.time()
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
                log.warning("progress again after %s without any", _secs(now - self._last_progress))
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
                _secs(idle),
                action,
            )
        status = self._status(reading, now, idle)
        self.notifier.status(status["summary"])
        if self.status_path is not None:
            self._write(status)
        return status

    def _status(self, reading: Reading, now: float, idle: float) -> dict[str, Any]:
        dt = max(now - self._prev_at, 1e-3)
        rate = _rates(reading.stats, self._prev_stats, dt)
        self._prev_stats, self._prev_at = reading.stats, now
        components: dict[str, dict[str, Any]] = {}
        for name, counts in reading.sources.items():
            components[f"source {name}"] = self._source_component(name, counts, now, dt)
        for endpoint, link in reading.links.items():
            components[endpoint] = self._link_component(endpoint, link, now)
        pipeline_colour = RED if idle > self.stall_s else GREEN
        components["pipeline"] = {
            "state": pipeline_colour,
            "message": (
                f"no progress for {_secs(idle)}"
                if pipeline_colour == RED
                else f"{rate['frames_per_s']:.1f} frames/s, "
                f"{rate['positions_per_s']:.2f} positions/s, {reading.aircraft} aircraft"
            ),
        }
        worst = max((c["state"] for c in components.values()), key=_RANK.__getitem__)
        wall = time.time()
        summary = (
            f"STALLED: no progress for {_secs(idle)}"
            if self.stalled
            else f"{rate['frames_per_s']:.1f} frames/s, {rate['positions_per_s']:.2f} positions/s, "
            f"{rate['events_per_s'] * 60:.1f} events/min, {reading.aircraft} aircraft"
            + "".join(
                f", mqtt {'up' if link.connected else 'down'} outbox {link.outbox_depth}"
                for link in reading.links.values()
            )
        )
        return {
            "v": 1,
            "site": self.site,
            "pid": os.getpid(),
            "updated": round(wall, 3),
            "expires": round(wall + EXPIRY_INTERVALS * self.interval, 3),
            "uptime_s": round(now - self._started, 1),
            "state": worst,
            "summary": summary,
            "rates": rate,
            "aircraft": reading.aircraft,
            "watchdog_s": self.notifier.watchdog_s,
            "components": components,
        }

    def _source_component(
        self, name: str, counts: dict[str, int], now: float, dt: float
    ) -> dict[str, Any]:
        st = self._sources.setdefault(name, _SourceState(self._started, self._started))
        frames = _frames(counts)
        if counts != st.prev:
            st.last_change = now
        if frames != _frames(st.prev):
            st.last_frames = now
        failures = sum(counts.get(k, 0) - st.prev.get(k, 0) for k in _FAILURE_KEYS)
        fps = (frames - _frames(st.prev)) / dt  # counters start at 0 with the agent
        st.prev = counts
        silent = now - st.last_change
        quiet = now - st.last_frames
        if silent > self.stall_s:
            return {"state": RED, "message": f"nothing from the source for {silent:.0f} s"}
        if failures and quiet > QUIET_S:
            return {"state": RED, "message": f"cannot open or connect ({failures} failures)"}
        if quiet > QUIET_S:
            return {"state": AMBER, "message": f"alive, but no frames for {quiet:.0f} s"}
        return {"state": GREEN, "message": f"{fps:.1f} frames/s"}

    def _link_component(self, endpoint: str, link: LinkState, now: float) -> dict[str, Any]:
        depth = link.outbox_depth
        if link.refused:
            return {"state": RED, "message": f"broker refuses: {link.refused}"}
        if link.outbox_problem:
            return {"state": RED, "message": f"outbox: {link.outbox_problem}"}
        if not link.connected:
            since = self._link_down_since.setdefault(endpoint, now)
            down = now - since
            why = f": {link.connect_error}" if link.connect_error else ""
            colour = RED if down > LINK_RED_S else AMBER
            return {
                "state": colour,
                "message": f"not connected for {down:.0f} s{why}; {depth} records wait",
            }
        self._link_down_since.pop(endpoint, None)
        return {"state": GREEN, "message": f"connected, outbox {depth}"}

    def _write(self, status: dict[str, Any]) -> None:
        assert self.status_path is not None
        try:
            write_atomically(self.status_path, json.dumps(status, indent=1) + "\n")
            self._status_error = None
        except OSError as err:
            if err.strerror != self._status_error:
                log.warning("cannot write status file %s: %s", self.status_path, err.strerror)
                self._status_error = err.strerror


def write_atomically(path: Path, text: str) -> None:
    """Write then rename, so a reader sees the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _secs(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def _progress_key(reading: Reading) -> tuple[int, ...]:
    """Numbers that change only when work is done (see the module docstring)."""
    source_total = sum(sum(c.values()) for c in reading.sources.values())
    output = sum(v for k, v in reading.stats.items() if k.endswith(_OUTPUT_PROGRESS))
    return (source_total, reading.stats.get("pipeline.frames", 0), output)


def _frames(counts: Mapping[str, int]) -> int:
    return sum(v for k, v in counts.items() if k in _FRAME_KEYS or k.startswith(_FRAME_PREFIXES))


def _rates(stats: dict[str, int], prev: dict[str, int], dt: float) -> dict[str, float]:
    def rate(key: str) -> float:
        return round(max(stats.get(key, 0) - prev.get(key, 0), 0) / dt, 2)

    return {
        "frames_per_s": rate("pipeline.frames"),
        "positions_per_s": rate("pipeline.records_position"),
        "events_per_s": rate("pipeline.records_event"),
    }


def default_status_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """$RUNTIME_DIRECTORY/status.json under systemd (RuntimeDirectory=adsb-agent)."""
    env = os.environ if environ is None else environ
    runtime = env.get("RUNTIME_DIRECTORY")
    return Path(runtime.split(":")[0]) / "status.json" if runtime else None
