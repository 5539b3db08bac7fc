"""How the running agent is judged: green, amber or red per component.

A pure judgement over readings (counters of the sources, the pipeline's stats, each
output's link state) taken every few seconds by the service monitor; it keeps only
what it needs to see change (when a source last moved, since when a link is down). The
status file, `adsb-agent status`, systemd's STATUS= line and the technician's page all
show what it decides, so they never disagree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.outputs.base import LinkState

# Status file colours, best to worst.
GREEN, AMBER, RED = "green", "amber", "red"
_RANK = {GREEN: 0, AMBER: 1, RED: 2}
# A source with no frames for this long is amber (alive but nothing heard).
QUIET_S = 90.0
# The broker link may be down this long before it turns red (a cellular hiccup is amber).
LINK_RED_S = 300.0
# Source counters that name frames, for per-source frame rates.
_FRAME_KEYS = ("frames",)
_FRAME_PREFIXES = ("accepted_df",)
# Source counters that count failed attempts to reach the input.
_FAILURE_KEYS = ("connect_failed", "open_failed", "device_lost", "disconnects")
# Source counters of failed opens and of opens (devices; network feeds).
_OPEN_FAILED_KEYS = ("open_failed", "connect_failed")
_OPENED_KEYS = ("opens", "connects")
# A source that failed to open and never opened is red this long after start (a dongle
# still enumerating at boot may fail its first open; amber until then).
NEVER_OPENED_RED_S = 15.0
# How long a link stays amber after the broker refused a record that was set aside.
SET_ASIDE_AMBER_S = 3600.0


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
    # Outputs without a broker link that show something (raw feeds): name -> (colour,
    # message), from `Output.component()`.
    outputs: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class _SourceState:
    last_change: float
    last_frames: float
    prev: dict[str, int] = field(default_factory=dict)


class HealthJudge:
    """Turns successive Readings into the status document (see the module docstring).

    Not thread-safe: the service monitor's thread calls it.

    Args:
        site: site name written into the document.
        stall_s: no progress for this long is red (the watchdog's window).
        started: the monitor clock's value at start.
        link_red_s: how long a link may be down before it is red.
    """

    def __init__(self, site: str, stall_s: float, started: float, link_red_s: float = LINK_RED_S):
        self.site = site
        self.stall_s = stall_s
        self.link_red_s = link_red_s
        self._started = started
        self._sources: dict[str, _SourceState] = {}
        self._link_down_since: dict[str, float] = {}
        self._set_aside_seen: dict[str, tuple[int, float]] = {}  # count, when it grew
        self._prev_stats: dict[str, int] = {}
        self._prev_at = started

    def status(
        self,
        reading: Reading,
        now: float,
        idle: float,
        *,
        stalled: bool,
        wall: float,
        expires_s: float,
        watchdog_s: float | None,
    ) -> dict[str, Any]:
        """The status document for `reading` at monitor time `now` and wall time `wall`."""
        dt = max(now - self._prev_at, 1e-3)
        rate = _rates(reading.stats, self._prev_stats, dt)
        self._prev_stats, self._prev_at = reading.stats, now
        components: dict[str, dict[str, Any]] = {}
        for name, counts in reading.sources.items():
            components[f"source {name}"] = self._source_component(name, counts, now, dt)
        for endpoint, link in reading.links.items():
            components[endpoint] = self._link_component(endpoint, link, now)
        for name, (colour, message) in reading.outputs.items():
            components[name] = {"state": colour, "message": message}
        pipeline_colour = RED if idle > self.stall_s else GREEN
        components["pipeline"] = {
            "state": pipeline_colour,
            "message": (
                f"no progress for {seconds_text(idle)}"
                if pipeline_colour == RED
                else f"{rate['frames_per_s']:.1f} frames/s, "
                f"{rate['positions_per_s']:.2f} positions/s, {reading.aircraft} aircraft"
            ),
        }
        worst = max((c["state"] for c in components.values()), key=_RANK.__getitem__)
        summary = (
            f"STALLED: no progress for {seconds_text(idle)}"
            if stalled
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
            "expires": round(wall + expires_s, 3),
            "uptime_s": round(now - self._started, 1),
            "state": worst,
            "summary": summary,
            "rates": rate,
            "aircraft": reading.aircraft,
            "watchdog_s": watchdog_s,
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
        open_failed = sum(counts.get(k, 0) for k in _OPEN_FAILED_KEYS)
        if open_failed and not any(counts.get(k, 0) for k in _OPENED_KEYS):
            # Counters move with every failed attempt: without this it looked alive.
            started = now - self._started
            return {
                "state": RED if started >= NEVER_OPENED_RED_S else AMBER,
                "message": f"not open: {open_failed} attempts failed in "
                f"{seconds_text(started)}, none succeeded (the log says why)",
            }
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
            colour = RED if down > self.link_red_s else AMBER
            return {
                "state": colour,
                "message": f"not connected for {down:.0f} s{why}; {depth} records wait",
            }
        self._link_down_since.pop(endpoint, None)
        message = f"connected, outbox {depth}"
        count, grew = self._set_aside_seen.get(endpoint, (0, now))
        if link.set_aside != count:
            count, grew = link.set_aside, now
            self._set_aside_seen[endpoint] = (count, grew)
        if count:
            message += (
                f"; {count} records refused by the broker and set aside"
                f" (last: {link.set_aside_last})"
            )
            if now - grew < SET_ASIDE_AMBER_S:
                return {"state": AMBER, "message": message}
        return {"state": GREEN, "message": message}


def seconds_text(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


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


def worst(states: list[str]) -> str:
    """The worst of some colours."""
    return max(states, key=_RANK.__getitem__)
