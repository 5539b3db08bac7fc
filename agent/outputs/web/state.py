"""What the page shows, kept in memory and bounded: the aircraft with short trails, the
last events, the coverage outline and 24 h of rates and signal levels.

`WebState` is an output like the others (agent.outputs.base): the pipeline hands it
every accepted frame (`on_frame`: message rate, signal histogram, strong share) and
every record (`publish`: the events list). What the tracker knows of every aircraft,
selected or not, it reads through a `PipelineView` of read-only callables, never the
pipeline's internals. A sampler thread calls `sample()` once a second; the web
server's threads call the `*_json` methods. The pipeline thread only increments
integers here, so it never waits on the web.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.geo import bearing_deg, haversine_km
from agent.outputs.base import LinkState, Output
from agent.outputs.web import health
from agent.sources.base import noise_floor_dbfs
from agent.sources.gain import STRONG_DBFS

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.frame import Frame
    from agent.track import Aircraft

# Signal histogram: 1 dB bins from HIST_LOW_DBFS up to +3 dBFS (both I and Q at full
# scale); anything weaker counts in the first bin.
HIST_LOW_DBFS = -45
HIST_BINS = 49
# Coverage outline: the furthest position per bearing sector, kept per hour for 24 h
# (tar1090's range outline).
COVERAGE_SECTORS = 360
COVERAGE_HOURS = 24
# The strong-signal share is judged over this many seconds.
STRONG_WINDOW_S = 60


@dataclass(frozen=True)
class PipelineView:
    """Read-only looks into the running pipeline.

    aircraft: every aircraft the tracker holds (a list copy).
    selections: address -> tags of the tracks the filter kept (a copy).
    stats: the pipeline's counters (Pipeline.stats()).
    """

    aircraft: Callable[[], list[Aircraft]]
    selections: Callable[[], dict[str, tuple[str, ...]]]
    stats: Callable[[], dict[str, int]]


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class _Bucket:
    """One history step: sums over the seconds sampled in it."""

    start: float
    seconds: int = 0
    frames: int = 0
    positions: int = 0
    aircraft_sum: int = 0
    noise_sum: float = 0.0
    noise_n: int = 0
    hist: list[int] | None = None

    def as_row(self) -> list[Any]:
        s = max(self.seconds, 1)
        noise = round(self.noise_sum / self.noise_n, 1) if self.noise_n else None
        return [
            round(self.start),
            round(self.frames / s, 2),
            round(self.positions / s, 3),
            round(self.aircraft_sum / s, 1),
            noise,
        ]


class WebState(Output):
    """The page's memory (see the module docstring).

    Args:
        cfg: the agent configuration (site, geofences, [http] bounds).
        view: the pipeline's read-only view.
        status: the service monitor's latest status dict (ServiceMonitor.last_status).
        sources: the open sources (noise floor and gain of IQ inputs).
        links: the link state of outputs with a broker link (outbox depth, oldest age).
        wall: the wall clock.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        view: PipelineView,
        *,
        status: Callable[[], dict[str, Any] | None] | None = None,
        sources: Sequence[Any] = (),
        links: Callable[[], list[LinkState]] | None = None,
        wall: Callable[[], float] = time.time,
    ):
        self.cfg = cfg
        self.http = cfg.http
        self.view = view
        self.status = status or (lambda: None)
        self.sources = list(sources)
        self.links = links or list
        self.wall = wall
        self.counts: Counter[str] = Counter()
        self.site = cfg.site.position
        # Written by the pipeline thread only.
        self.frames = 0
        self.levels = 0
        self.strong = 0
        self.hist = [0] * HIST_BINS
        self._events: deque[dict[str, Any]] = deque(maxlen=self.http.events)
        self._event_seq = 0
        # Written by the sampler thread, read by the server threads under _lock.
        self._lock = threading.Lock()
        self._trails: dict[str, deque[tuple[float, float]]] = {}
        self._last_pos: dict[str, float] = {}
        self._coverage: dict[int, list[tuple[float, float, float] | None]] = {}
        steps = max(1, int(self.http.history_h * 3600 / self.http.history_step_s))
        self._history: deque[_Bucket] = deque(maxlen=steps)
        self._hist_history: deque[list[int]] = deque(maxlen=steps)
        self._prev: tuple[int, int, int, list[int]] | None = None
        self._prev_positions = 0
        self._strong_window: deque[tuple[int, int]] = deque(maxlen=STRONG_WINDOW_S)
        self._rates = {"messages_per_s": 0.0, "positions_per_s": 0.0}
        self._links: list[LinkState] = []
        self._links_due = 0.0
        self.checks = health.SlowChecks(cfg.state_dir, cfg.outbox.max_mb)

    # -- the pipeline thread ----------------------------------------------------------

    def on_frame(self, frame: Frame) -> None:
        self.frames += 1
        level = frame.signal_dbfs
        if level is not None:
            self.levels += 1
            if level > STRONG_DBFS:
                self.strong += 1
            self.hist[min(max(math.floor(level) - HIST_LOW_DBFS, 0), HIST_BINS - 1)] += 1

    def publish(self, record: dict[str, Any]) -> None:
        if record.get("type") != "event":
            return
        self._event_seq += 1
        self._events.append(
            {
                "n": self._event_seq,
                "ts": record["ts"],
                "event": record["event"],
                "icao": record["icao"],
                "callsign": record.get("callsign"),
                "lat": record.get("lat"),
                "lon": record.get("lon"),
                "agl_ft": record.get("agl_ft"),
                "tags": record.get("tags", []),
            }
        )
        self.counts["events"] += 1

    # -- the sampler thread -----------------------------------------------------------

    def sample(self, now: float | None = None) -> None:
        """Once a second: trails, coverage, rates, the history bucket, slow checks."""
        now = self.wall() if now is None else now
        aircraft = self.view.aircraft()
        stats = self.view.stats()
        positions = stats.get("pipeline.positions_decoded", 0)
        frames, levels, strong, hist = self.frames, self.levels, self.strong, list(self.hist)
        noise = self._noise_floor()
        with self._lock:
            self._sample_tracks(aircraft, now)
            if self._prev is not None:
                d_frames = frames - self._prev[0]
                d_levels, d_strong = levels - self._prev[1], strong - self._prev[2]
                d_hist = [a - b for a, b in zip(hist, self._prev[3], strict=True)]
                d_pos = max(positions - self._prev_positions, 0)
                self._rates = {"messages_per_s": float(d_frames), "positions_per_s": float(d_pos)}
                self._strong_window.append((d_strong, d_levels))
                self._add_to_history(now, d_frames, d_pos, len(aircraft), noise, d_hist)
            self._prev = (frames, levels, strong, hist)
            self._prev_positions = positions
        if now >= self._links_due:
            self._links_due = now + 5.0
            self._links = self.links()
        self.checks.refresh()
        self.counts["samples"] += 1

    def _noise_floor(self) -> float | None:
        floors = (noise_floor_dbfs(src) for src in self.sources)
        return next((value for value in floors if value is not None), None)

    def _sample_tracks(self, aircraft: list[Aircraft], now: float) -> None:
        seen = set()
        hour = int(now // 3600)
        for ac in aircraft:
            seen.add(ac.icao)
            if ac.lat is None or ac.lon is None or ac.position_time is None:
                continue
            if self._last_pos.get(ac.icao) == ac.position_time:
                continue
            self._last_pos[ac.icao] = ac.position_time
            if self.http.trail_points:
                trail = self._trails.setdefault(ac.icao, deque(maxlen=self.http.trail_points))
                trail.append((round(ac.lat, 5), round(ac.lon, 5)))
            if self.site is not None:
                self._extend_coverage(hour, ac.lat, ac.lon)
        for icao in [k for k in self._trails if k not in seen]:
            del self._trails[icao]
        for icao in [k for k in self._last_pos if k not in seen]:
            del self._last_pos[icao]
        for old in [h for h in self._coverage if h <= hour - COVERAGE_HOURS]:
            del self._coverage[old]

    def _extend_coverage(self, hour: int, lat: float, lon: float) -> None:
        assert self.site is not None
        km = haversine_km(self.site[0], self.site[1], lat, lon)
        sector = int(bearing_deg(self.site[0], self.site[1], lat, lon)) % COVERAGE_SECTORS
        ring = self._coverage.setdefault(hour, [None] * COVERAGE_SECTORS)
        best = ring[sector]
        if best is None or km > best[0]:
            ring[sector] = (km, lat, lon)

    def _add_to_history(
        self,
        now: float,
        frames: int,
        positions: int,
        aircraft: int,
        noise: float | None,
        hist: list[int],
    ) -> None:
        step = self.http.history_step_s
        start = now - now % step
        if not self._history or self._history[-1].start != start:
            self._history.append(_Bucket(start))
            self._hist_history.append([0] * HIST_BINS)
        b = self._history[-1]
        b.seconds += 1
        b.frames += frames
        b.positions += positions
        b.aircraft_sum += aircraft
        if noise is not None:
            b.noise_sum += noise
            b.noise_n += 1
        total = self._hist_history[-1]
        for i, n in enumerate(hist):
            total[i] += n

    # -- the server threads -----------------------------------------------------------

    def aircraft_json(self) -> dict[str, Any]:
        """Every aircraft the tracker holds, fresh (not from the last sample)."""
        now = self.wall()
        selections = self.view.selections()
        elevation = self.cfg.site.elevation_ft
        with self._lock:
            trails = {k: list(v) for k, v in self._trails.items()}
            rates = dict(self._rates)
        rows = []
        for ac in self.view.aircraft():
            tags = selections.get(ac.icao)
            km = ac.distance_km(self.site)
            agl = ac.height_above_ft(elevation)
            rows.append(
                {
                    "icao": ac.icao,
                    "callsign": ac.callsign,
                    "category": ac.category,
                    "squawk": ac.squawk,
                    "lat": _r(ac.lat, 5),
                    "lon": _r(ac.lon, 5),
                    "alt_ft": ac.alt_baro_ft if ac.alt_baro_ft is not None else ac.alt_gnss_ft,
                    "agl_ft": None if agl is None else round(agl),
                    "gs_kt": _r(ac.gs_kt, 0),
                    "track_deg": _r(ac.track_deg, 0),
                    "distance_km": _r(km, 1),
                    "signal_dbfs": _r(ac.signal_dbfs, 1),
                    "messages": ac.messages,
                    "age_s": round(max(now - ac.last_seen, 0.0), 1),
                    "selected": tags is not None,
                    "why": list(tags or ()),
                    "trail": trails.get(ac.icao, []),
                }
            )
        rows.sort(
            key=lambda r: (not r["selected"], r["distance_km"] is None, r["distance_km"] or 0)
        )
        return {"now": round(now, 3), "rates": rates, "aircraft": rows}

    def events_json(self, after: int = 0) -> dict[str, Any]:
        events = [e for e in list(self._events) if e["n"] > after]
        return {"events": events[::-1]}

    def status_json(self) -> dict[str, Any]:
        """Every badge, worst first within its group, and the monitor's summary."""
        now = self.wall()
        status = self.status()
        with self._lock:
            strong = sum(s for s, _ in self._strong_window)
            levels = sum(n for _, n in self._strong_window)
            rates = dict(self._rates)
        badges = health.status_badges(status, now)
        badges += health.link_badges(self._links)
        badges += health.source_badges(self.sources)
        badges.append(health.strong_badge(strong, levels))
        badges += [
            self.checks.badges[k]
            for k in ("clock", "disk", "power", "temperature")
            if k in self.checks.badges
        ]
        states = [b.state for b in badges]
        worst = next((s for s in (health.RED, health.AMBER) if s in states), health.GREEN)
        return {
            "now": round(now, 3),
            "site": self.cfg.site.name,
            "state": worst,
            "summary": None if status is None else status.get("summary"),
            "status_age_s": None if status is None else round(now - status.get("updated", now), 1),
            "rates": rates,
            "badges": [b.as_dict() for b in badges],
        }

    def coverage_json(self) -> dict[str, Any]:
        """The furthest position per degree of bearing over the last 24 h."""
        with self._lock:
            rings = list(self._coverage.values())
        best: list[tuple[float, float, float] | None] = [None] * COVERAGE_SECTORS
        for ring in rings:
            for i, p in enumerate(ring):
                if p is not None and (best[i] is None or p[0] > best[i][0]):  # type: ignore[index]
                    best[i] = p
        points = [
            {"bearing": i, "km": round(p[0], 1), "lat": round(p[1], 4), "lon": round(p[2], 4)}
            for i, p in enumerate(best)
            if p is not None
        ]
        return {"hours": COVERAGE_HOURS, "points": points}

    def history_json(self) -> dict[str, Any]:
        """Rows [start, messages/s, positions/s, aircraft, noise dBFS] per step, and the
        signal histogram (counts per 1 dB bin) summed over the whole history."""
        with self._lock:
            rows = [b.as_row() for b in self._history]
            hist = (
                [sum(col) for col in zip(*self._hist_history, strict=True)]
                if self._hist_history
                else []
            )
        return {
            "step_s": self.http.history_step_s,
            "columns": ["t", "messages_per_s", "positions_per_s", "aircraft", "noise_dbfs"],
            "rows": rows,
            "histogram": {"low_dbfs": HIST_LOW_DBFS, "bin_db": 1, "counts": hist},
        }
