"""`--write-json DIR`: aircraft.json, receiver.json and stats.json in readsb/dump1090's
format, so tar1090, graphs1090 and the many scripts written for them read the agent
unchanged.

The tracker is not thread-safe, so its aircraft are read on the pipeline thread: at
most once per interval (of the clock, or of frame time when a recording is replayed
faster than real time) a frame tap copies them (through the read-only `aircraft`
callable) into a snapshot of plain dicts, with this period's message counts. The
`json-writer` thread serialises the latest snapshot and writes the files every
interval (temporary name, then rename: a reader never sees half a file), ageing
`seen` against the clock, so a silent feed still shows as silent. Writing to disk
(an SD card may stall for seconds) is never done on the pipeline thread.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.errors import ConfigError
from agent.outputs.base import Output
from agent.status import write_atomically

if TYPE_CHECKING:
    from agent.config import NetConfig
    from agent.frame import Frame
    from agent.track import Aircraft

log = logging.getLogger("agent.outputs.json")

# dump1090's "strong signal" threshold for stats.json.
STRONG_SIGNAL_DBFS = -3.0
# stats.json periods are whole minutes; last15min needs fifteen of them.
_PERIOD_S = 60.0
_MINUTES_KEPT = 15


class _Period:
    """Message counts over one stretch of time, dump1090's stats.json unit."""

    def __init__(self, start: float):
        self.start = start
        self.end = start
        self.local = 0  # frames judged by our own demodulator (IQ sources)
        self.remote = 0  # frames from network and serial inputs
        self.power_sum = 0.0
        self.power_n = 0
        self.peak_dbfs: float | None = None
        self.strong = 0

    def add(self, other: _Period) -> None:
        self.start = min(self.start, other.start)
        self.end = max(self.end, other.end)
        self.local += other.local
        self.remote += other.remote
        self.power_sum += other.power_sum
        self.power_n += other.power_n
        self.strong += other.strong
        if other.peak_dbfs is not None:
            self.peak_dbfs = max(self.peak_dbfs or other.peak_dbfs, other.peak_dbfs)

    def as_json(self) -> dict[str, Any]:
        local: dict[str, Any] = {"accepted": [self.local, 0], "strong_signals": self.strong}
        if self.power_n:
            local["signal"] = round(10.0 * math.log10(self.power_sum / self.power_n), 1)
        if self.peak_dbfs is not None:
            local["peak_signal"] = round(self.peak_dbfs, 1)
        return {
            "start": round(self.start, 1),
            "end": round(self.end, 1),
            "messages": self.local + self.remote,
            "local": local,
            "remote": {"accepted": [self.remote, 0]},
        }


class JsonFilesOutput(Output):
    """Writes the three files into `cfg.json_dir` every `cfg.json_interval_s`.

    Args:
        cfg: the `[net]` table.
        site: the receiver's (lat, lon), if known, for receiver.json.
        expire_s: aircraft silent longer than this are left out (the tracker's TTL).
        aircraft: the tracker's current aircraft; called on the pipeline thread.
        selected: with `selected_only`, whether an address is selected.
        clock: wall clock (tests may pass their own).
    """

    def __init__(
        self,
        cfg: NetConfig,
        *,
        site: tuple[float, float] | None,
        expire_s: float,
        aircraft: Callable[[], Iterable[Aircraft]],
        selected: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        assert cfg.json_dir is not None
        self.dir = Path(cfg.json_dir)
        self.interval = cfg.json_interval_s
        self.expire_s = expire_s
        self.aircraft = aircraft
        self.selected = selected if cfg.selected_only else None
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self.messages = 0
        self.error: str | None = None
        self._latest_rx = 0.0
        self._next_snapshot = 0.0  # monotonic
        self._next_snapshot_rx = 0.0  # frame time
        now = clock()
        self._current = _Period(now)
        self._minutes: deque[_Period] = deque(maxlen=_MINUTES_KEPT)
        self._total = _Period(now)
        # (aircraft dicts, stats dict), replaced whole by the pipeline thread.
        self._snapshot: tuple[list[dict[str, Any]], dict[str, Any]] = ([], self._stats(now))
        receiver: dict[str, Any] = {
            "version": f"adsb-agent {__version__}",
            "refresh": round(self.interval * 1000),
            "history": 0,
        }
        if site is not None:
            receiver["lat"], receiver["lon"] = site
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_atomically(self.dir / "receiver.json", json.dumps(receiver) + "\n")
        except OSError as err:
            raise ConfigError([f"net.json_dir: cannot write {self.dir}: {err.strerror}"]) from None
        self._write()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="json-writer", daemon=True)

    def start(self) -> JsonFilesOutput:
        """Start the `json-writer` thread (the files exist already: written at init)."""
        self._thread.start()
        return self

    def publish(self, record: dict[str, Any]) -> None:
        """Records are not what these files show (the tracker's aircraft are)."""

    def on_frame(self, frame: Frame) -> None:
        self.messages += 1
        period = self._current
        if frame.accepted is None:
            period.remote += 1
        else:
            period.local += 1
        dbfs = frame.signal_dbfs
        if dbfs is not None:
            period.power_sum += 10.0 ** (dbfs / 10.0)
            period.power_n += 1
            if period.peak_dbfs is None or dbfs > period.peak_dbfs:
                period.peak_dbfs = dbfs
            if dbfs > STRONG_SIGNAL_DBFS:
                period.strong += 1
        if frame.rx_time > self._latest_rx:
            self._latest_rx = frame.rx_time
        # Due by the clock (live) or by frame time (a recording replayed faster).
        if time.monotonic() >= self._next_snapshot or frame.rx_time >= self._next_snapshot_rx:
            self._next_snapshot = time.monotonic() + self.interval
            self._next_snapshot_rx = frame.rx_time + self.interval
            self._take_snapshot()

    def _take_snapshot(self) -> None:
        """Copy what the files show (pipeline thread)."""
        now = self.clock()
        period = self._current
        period.end = now
        if now - period.start >= _PERIOD_S:
            self._minutes.append(period)
            self._total.add(period)
            self._current = _Period(now)
        planes = []
        for ac in self.aircraft():
            if self.selected is not None and not self.selected(ac.icao):
                continue
            entry: dict[str, Any] = {"hex": ac.icao.lower()}
            if ac.callsign:
                entry["flight"] = ac.callsign
            if ac.on_ground:
                entry["alt_baro"] = "ground"
            elif ac.alt_baro_ft is not None:
                entry["alt_baro"] = ac.alt_baro_ft
            optional = (
                ("alt_geom", ac.alt_gnss_ft),
                ("gs", ac.gs_kt),
                ("track", ac.track_deg),
                ("baro_rate", ac.vrate_fpm),
                ("squawk", ac.squawk),
                ("category", ac.category),
            )
            entry.update((k, v) for k, v in optional if v is not None)
            if ac.lat is not None and ac.lon is not None and ac.position_time is not None:
                entry["lat"], entry["lon"] = ac.lat, ac.lon
                entry["_position_time"] = ac.position_time
            entry["_last_seen"] = ac.last_seen
            entry["messages"] = ac.messages
            entry["rssi"] = ac.signal_dbfs if ac.signal_dbfs is not None else -49.5
            planes.append(entry)
        self._snapshot = (planes, self._stats(now))

    def _stats(self, now: float) -> dict[str, Any]:
        last5, last15 = _Period(now), _Period(now)
        for i, minute in enumerate(reversed(self._minutes)):
            if i < 5:
                last5.add(minute)
            last15.add(minute)
        total = _Period(self._total.start)
        total.add(self._total)
        total.add(self._current)
        last1 = self._minutes[-1] if self._minutes else _Period(now)
        return {
            "now": round(now, 1),
            "latest": self._current.as_json(),
            "last1min": last1.as_json(),
            "last5min": last5.as_json(),
            "last15min": last15.as_json(),
            "total": total.as_json(),
        }

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._write()

    def _write(self) -> None:
        """Render the latest snapshot against the clock and write both files (writer)."""
        planes, stats = self._snapshot
        now = max(self.clock(), self._latest_rx)
        aircraft = []
        for entry in planes:
            seen = max(now - entry["_last_seen"], 0.0)
            if seen > self.expire_s:
                continue
            out = {k: v for k, v in entry.items() if not k.startswith("_")}
            if "_position_time" in entry:
                out["seen_pos"] = round(max(now - entry["_position_time"], 0.0), 1)
            out["seen"] = round(seen, 1)
            out["mlat"], out["tisb"] = [], []
            aircraft.append(out)
        doc = {"now": round(now, 1), "messages": self.messages, "aircraft": aircraft}
        try:
            write_atomically(self.dir / "aircraft.json", json.dumps(doc) + "\n")
            write_atomically(self.dir / "stats.json", json.dumps(stats) + "\n")
            self.counts["writes"] += 1
            if self.error is not None:
                log.info("writing %s again", self.dir)
            self.error = None
        except OSError as err:
            self.counts["write_errors"] += 1
            if err.strerror != self.error:
                log.warning("cannot write %s: %s", self.dir, err.strerror)
            self.error = err.strerror or str(err)

    def component(self) -> tuple[str, str, str]:
        if self.error is not None:
            return "json", "red", f"cannot write {self.dir}: {self.error}"
        if self._thread.ident is not None and not self._thread.is_alive():
            if not self._stop.is_set():
                return "json", "red", "writer thread stopped"
        n = len(self._snapshot[0])
        return "json", "green", f"{self.dir} every {self.interval:g} s, {n} aircraft"

    def close(self) -> None:
        """Stop the writer and write once more: stats with every frame, the aircraft of
        the last snapshot (the tracker may already be emptied by the end of input: the
        last view stays). Called on the pipeline thread once it stopped."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self._snapshot = (self._snapshot[0], self._stats(self.clock()))  # every frame counted
        self._write()
