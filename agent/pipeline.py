"""Wires the stages: frame -> dedup -> verify -> decode -> track -> height -> filter ->
events -> limiter -> records -> publishers.

`Pipeline.handle` is the hub (dump1090's `useModesMessage`): read it top to bottom to
see where a frame goes next. `run_sources` is the only place with threads: one reader
thread per source when there are several (or one live network or serial feed), feeding
a hand-off bounded in frames and bytes whose overflow is counted, never silent
(agent/handoff.py). A lone dongle or recording is demodulated in the pipeline's thread.

No record leaves for an aircraft the filter cannot judge yet: a new track whose
category is unknown (its first position often comes before its identification) is
held, its records kept back in order, until the category arrives or `filter.hold_s`
of receive time has passed; then the filter judges with what is known and the held
records are published, or discarded with nothing published at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from agent.config import AgentConfig
from agent.decode import Decoder
from agent.dedup import DuplicateFilter
from agent.errors import OutputClosed
from agent.filter import Verdict, judge
from agent.frame import Frame
from agent.handoff import FrameHandoff
from agent.intel.aerodromes import Aerodromes
from agent.intel.events import TrackAnalyst
from agent.intel.geofence import Geofence
from agent.intel.height import HeightModel
from agent.intel.terrain import Terrain
from agent.limiter import LimiterPolicy, PositionLimiter
from agent.outputs.base import Output
from agent.records import event_record, position_record
from agent.repeats import RepeatedReplies
from agent.schema import EventKind, Record
from agent.sources.base import Source
from agent.stats import Stats, copy_counts
from agent.track import CLOCK_STEP_BACK_S, Aircraft, Tracker, Update
from agent.verify import FrameVerifier

log = logging.getLogger("agent.pipeline")

# How often silent tracks are looked for (in frame time).
EXPIRY_INTERVAL_S = 1.0
# Records kept back per held track at most (a position every second or so for
# filter.hold_s <= 60 s, plus its events); beyond, later ones are dropped and counted.
HOLD_MAX_RECORDS = 200
# An emergency code an aircraft already reported within this long is not reported again
# (a transponder toggling 7700/1200 made 500 records in 10 s).
EMERGENCY_REPEAT_S = 300.0
# Event lines in the journal: a burst of this many, then one every EVENT_LOG_EVERY_S
# (records are all published; only the log is thinned, with a count of what it left out).
EVENT_LOG_BURST = 20
EVENT_LOG_EVERY_S = 3.0


@dataclass(slots=True)
class Selection:
    """A track the filter kept: its `track_start` has been published, and its
    `track_end` will carry `tags`, the reasons its latest kept position was selected."""

    tags: tuple[str, ...]
    # Records kept back while the filter cannot decide yet (category unknown); None once
    # the track is published.
    held: list[Record] | None = None
    held_since: float = 0.0


class Pipeline:
    """Single-threaded processing of frames into published records."""

    def __init__(self, cfg: AgentConfig, publishers: Sequence[Output], stats: Stats | None = None):
        self.cfg = cfg
        self.publishers = list(publishers)
        # Frames handed in without configured sources (replay, tests) are compared.
        self.dedup = DuplicateFilter(sources=len(cfg.sources) or None)
        self.verifier = FrameVerifier()
        self.decoder = Decoder(cfg.site.position)
        self.repeats = RepeatedReplies()
        self.tracker = Tracker(cfg.track.expire_s, cfg.track.max_aircraft)
        self.fences = [
            Geofence(f.name, f.kind, f.center, f.radius_km, tuple(f.polygon), f.keep)
            for f in cfg.geofence
        ]
        site = cfg.site
        self.height = HeightModel(
            site.elevation_ft,
            qnh_hpa=site.qnh_hpa,
            geoid_m=site.geoid_m,
            terrain=Terrain(site.terrain_dir) if site.terrain_dir else None,
        )
        self.analyst: TrackAnalyst | None = None
        if cfg.intel.events:
            aerodromes = Aerodromes.deferred() if cfg.intel.aerodromes else None
            self.analyst = TrackAnalyst(site.position, site.antenna_agl_m, self.fences, aerodromes)
        self.limiter: PositionLimiter | None = None
        if cfg.limiter.enabled:
            self.limiter = PositionLimiter(
                LimiterPolicy(**{k: v for k, v in vars(cfg.limiter).items() if k != "enabled"})
            )
        # Tracks with a published track_start, by address; dropped when the track ends.
        self.selections: dict[str, Selection] = {}
        self.counts: Counter[str] = Counter()
        # Each stage's counters, read from other threads through snapshots.
        self.registry = stats if stats is not None else Stats()
        for stage, counts in (
            ("pipeline", self.counts),
            ("dedup", self.dedup.counts),
            ("verify", self.verifier.counts),
            ("decode", self.decoder.counts),
            ("track", self.tracker.counts),
        ):
            self.registry.register(stage, counts)
        self._next_expiry = float("-inf")
        # Emergency codes reported, by address: (code, receive time).
        self._emergencies: dict[str, tuple[str | None, float]] = {}
        self._log_tokens = float(EVENT_LOG_BURST)
        self._log_refilled = float("-inf")
        self._log_skipped = 0
        self._health_prev: dict[str, int] = {}
        self._health_at = time.monotonic()

    def handle(self, frame: Frame) -> None:
        """Take one received frame through every stage.

        A frame that trips a bug in a stage is counted and logged (the first, then every
        1000th), never allowed to stop the daemon: one odd frame must not end the feed.
        """
        try:
            self._handle(frame)
        except OutputClosed:
            raise  # the reader of stdout left: the command ends, the frame is not at fault
        except Exception:
            self.counts["frame_errors"] += 1
            if self.counts["frame_errors"] % 1000 == 1:
                log.exception(
                    "frame %s from %s failed in the pipeline (%d so far); it is skipped",
                    frame.hex,
                    frame.source,
                    self.counts["frame_errors"],
                )

    def _handle(self, frame: Frame) -> None:
        self.counts["frames"] += 1
        if self.dedup.is_duplicate(frame):
            return
        accepted = frame.accepted  # judged already by an IQ source's demodulator
        if accepted is None:
            accepted = self.verifier.check(frame).accepted
        if not accepted:
            return
        for out in self.publishers:
            out.on_frame(frame)  # raw feeds re-serve every frame the CRC gate let through
        fields = self.repeats.fields(frame)  # a repeat: pyModeS's fields of its first copy
        if fields is None:
            fields = self.decoder.decode(frame)
            if fields is None:
                return
            self.repeats.remember(frame, fields)
        else:
            self.decoder.counts["decoded"] += 1
        rx_time = frame.rx_time
        update = self.tracker.update(fields, rx_time, frame.signal_dbfs)
        ac = update.aircraft
        height = self.height
        if update.new_position:
            height.observe(ac.alt_baro_ft, ac.alt_gnss_ft)
        ac.height = height.height(ac.alt_baro_ft, ac.alt_gnss_ft, ac.lat, ac.lon)
        self._select(update, rx_time)
        for out in self.publishers:
            out.on_decoded(frame, fields)  # feeds that need decoded fields (SBS)
        self.tick(rx_time)

    def _select(self, update: Update, now: float) -> None:
        ac = update.aircraft
        site = self.cfg.site
        if update.squawk_changed and ac.emergency and self._new_emergency(ac, now):
            self._emit(event_record(EventKind.EMERGENCY_SQUAWK, ac, site, now, ("emergency",)))
        held = self.selections.get(ac.icao)
        if held is not None and held.held is not None and ac.category is not None:
            self._decide(ac)  # its identification arrived: judge with the category
        if ac.lat is None:
            self._unlocated(ac, now)
            return
        if not update.new_position:
            return
        self.counts["positions_decoded"] += 1
        verdict = judge(ac, self.cfg.filter, site, self.fences)
        if not verdict.keep:
            self.counts[f"filtered_{verdict.reason}"] += 1
            return
        selection = self.selections.get(ac.icao)
        if selection is None:
            selection = self.selections[ac.icao] = Selection(verdict.tags)
            if self._undecided(ac, verdict):
                selection.held, selection.held_since = [], now
                self.counts["tracks_held"] += 1
            self._out(selection, event_record(EventKind.TRACK_START, ac, site, now, verdict.tags))
        else:
            selection.tags = verdict.tags
        if self.analyst is not None:
            for ev in self.analyst.update(ac, now, True):
                self._out(selection, event_record(ev.kind, ac, site, ev.ts, ev.tags))
        if self.limiter is not None and not self.limiter.should_send(ac, now):
            self.counts["positions_held_by_limiter"] += 1
            return
        self._out(selection, position_record(ac, site, verdict.tags))

    def _undecided(self, ac: Aircraft, verdict: Verdict) -> bool:
        """Kept only for want of a category that may still come (identification is
        sent every ~5 s, often after the first position)."""
        return (
            self.cfg.filter.hold_s > 0
            and ac.category is None
            and "category_unknown" in verdict.tags
        )

    def _out(self, selection: Selection, record: Record) -> None:
        """Publish a selected track's record, or keep it back while the track is held."""
        if selection.held is None:
            self._emit(record)
        elif len(selection.held) < HOLD_MAX_RECORDS:
            selection.held.append(record)
        else:
            self.counts["held_records_dropped"] += 1

    def _decide(self, ac: Aircraft) -> None:
        """End a held track's wait: judged with what is known now, its held records are
        published in order, or discarded and the track forgotten (nothing at all was
        published for it)."""
        selection = self.selections[ac.icao]
        held, selection.held = selection.held or [], None
        verdict = judge(ac, self.cfg.filter, self.cfg.site, self.fences)
        if not verdict.keep:
            del self.selections[ac.icao]
            self.counts["holds_discarded"] += 1
            self.counts[f"filtered_{verdict.reason}"] += 1
            return
        self.counts["holds_released"] += 1
        selection.tags = verdict.tags
        for record in held:
            self._emit(record)

    def _unlocated(self, ac: Aircraft, now: float) -> None:
        """Mode S-only contacts: reported once, with their altitude, when the filter
        keeps what is known of them (height, speed, callsign kind, surveillance)."""
        if self.analyst is None or not self.cfg.filter.enabled:
            return
        event = self.analyst.unlocated(ac, now)
        if event is None:
            return
        verdict = judge(ac, self.cfg.filter, self.cfg.site, self.fences)
        if not verdict.keep:
            self.counts[f"unlocated_filtered_{verdict.reason}"] += 1
            self.analyst.forget_unlocated(ac.icao)  # judged again on its next reply
            return
        tags = (*event.tags, *verdict.tags)
        self._emit(event_record(event.kind, ac, self.cfg.site, event.ts, tags))

    def tick(self, now: float) -> None:
        """Expire silent aircraft; cheap to call on every frame."""
        if 0 < self._next_expiry - now < EXPIRY_INTERVAL_S + CLOCK_STEP_BACK_S:
            return  # not yet; further back is a clock stepped back (track.py)
        self._next_expiry = now + EXPIRY_INTERVAL_S
        hold_s = self.cfg.filter.hold_s
        for icao, selection in list(self.selections.items()):
            if selection.held is not None and now - selection.held_since >= hold_s:
                ac = self.tracker.aircraft.get(icao)
                if ac is not None:
                    self._decide(ac)  # waited long enough: judge with what is known
        for ac in self.tracker.expire(now):
            self._end(ac, ac.last_seen)

    def finish(self) -> None:
        """End every selected track at the end of input (replay, shutdown)."""
        for ac in list(self.tracker.aircraft.values()):
            self._end(ac, ac.last_seen)
        self.tracker.aircraft.clear()

    def _end(self, ac: Aircraft, ts: float) -> None:
        self.decoder.forget(ac.icao)
        if self.limiter is not None:
            self.limiter.forget(ac.icao)
        ending = self.analyst.end(ac, ts) if self.analyst is not None else []
        pending = self.selections.get(ac.icao)
        if pending is not None and pending.held is not None:
            self._decide(ac)  # silent before its category came: judge with what is known
        self._emergencies.pop(ac.icao, None)
        selection = self.selections.pop(ac.icao, None)
        if selection is not None:
            for ev in ending:
                self._emit(event_record(ev.kind, ac, self.cfg.site, ev.ts, ev.tags))
            self._emit(event_record(EventKind.TRACK_END, ac, self.cfg.site, ts, selection.tags))

    def _new_emergency(self, ac: Aircraft, now: float) -> bool:
        """Whether this emergency code is news: not reported by this aircraft lately."""
        last = self._emergencies.get(ac.icao)
        if last is not None and last[0] == ac.squawk and now - last[1] < EMERGENCY_REPEAT_S:
            self.counts["emergency_repeats_not_reported"] += 1
            return False
        self._emergencies[ac.icao] = (ac.squawk, now)
        return True

    def _emit(self, record: Record) -> None:
        self.counts[f"records_{record['type']}"] += 1
        if record["type"] == "event" and self._may_log(record["ts"]):
            skipped, self._log_skipped = self._log_skipped, 0
            log.info(
                "%s %s %s%s%s",
                record["event"],
                record["icao"],
                record["callsign"] or "-",
                f" at {record['lat']:.4f},{record['lon']:.4f}" if record["lat"] is not None else "",
                f" ({skipped} event lines left out before this one)" if skipped else "",
                extra={"ADSB_EVENT": record["event"], "ADSB_ICAO": record["icao"]},  # journal
            )
        for pub in self.publishers:
            pub.publish(record)

    def _may_log(self, now: float) -> bool:
        """A token bucket for event lines (EVENT_LOG_BURST, then one per EVENT_LOG_EVERY_S
        of record time): the journal of a flood stays readable and its size bounded."""
        if now > self._log_refilled:
            gained = (now - self._log_refilled) / EVENT_LOG_EVERY_S
            self._log_tokens = min(float(EVENT_LOG_BURST), self._log_tokens + gained)
            self._log_refilled = now
        if self._log_tokens >= 1.0:
            self._log_tokens -= 1.0
            return True
        self._log_skipped += 1
        self.counts["event_lines_not_logged"] += 1
        return False

    def stats(self) -> dict[str, int]:
        """Every stage's counters and every output's in one flat dict (a copy; safe from
        other threads: see agent.stats)."""
        out = self.registry.snapshot()
        for pub in list(self.publishers):
            stage = type(pub).__name__
            out.update({f"{stage}.{k}": v for k, v in copy_counts(pub.counts).items()})
        return out

    def health(self) -> dict[str, Any]:
        """Rates since the previous call plus every counter, for the health topic."""
        now = time.monotonic()
        stats = self.stats()
        dt = max(now - self._health_at, 1e-3)
        rates = {
            name: round((stats.get(key, 0) - self._health_prev.get(key, 0)) / dt, 2)
            for name, key in (
                ("frames_per_s", "pipeline.frames"),
                ("positions_per_s", "pipeline.records_position"),
                ("events_per_s", "pipeline.records_event"),
            )
        }
        self._health_prev, self._health_at = stats, now
        return {"rates": rates, "aircraft": len(self.tracker.aircraft), "counters": stats}


def run_sources(
    sources: Sequence[Source],
    pipeline: Pipeline,
    stop: threading.Event,
    *,
    clock: Callable[[], float] | None = None,
) -> None:
    """Feed the pipeline from every source until all end or `stop` is set.

    With `clock` (live operation) tracks also expire by wall time when no frame arrives;
    not when every source is a recording (`run --source file:...`): a file is read
    faster than real time, its frames' times run ahead of the clock, and a wall-clock
    tick would look like the clock stepping back (track.py moves every track's age with
    it). Recordings expire tracks by their own frame times, as `replay` does.

    One source runs in this thread when it can (no clock, or it gives its frames in
    batches that also say when it woke with nothing: an IQ source, `batches`): its
    demodulator and the pipeline then take turns in one thread instead of contending
    for the interpreter from two (bench/footprint.py: the threads cost up to a fifth
    more CPU on a busy stream). Otherwise each source gets a reader thread, and the
    frames reach this thread in batches through a FrameHandoff (bounded in frames and
    bytes: agent/handoff.py).
    """
    daemon = clock is not None  # a source that fails is logged and counted, not raised
    if all(getattr(src, "recorded", False) for src in sources):
        clock = None
    if len(sources) == 1:
        src = sources[0]
        batches = getattr(src, "batches", None)
        if batches is not None or clock is None:
            given = batches(stop) if batches is not None else ([f] for f in src.frames(stop))
            _run_inline(src, given, pipeline, stop, clock, contain=daemon)
            return
    handoff = FrameHandoff(pipeline.counts, len(sources))
    readers = [
        threading.Thread(
            target=_read_into,
            args=(src, handoff, stop, pipeline.counts),
            name=f"reader-{src.name}",
            daemon=True,
        )
        for src in sources
    ]
    for t in readers:
        t.start()
    last_tick = time.monotonic()
    handle = pipeline.handle
    while not stop.is_set():
        ended = handoff.all_ended  # before take(): frames put before the end are in its batch
        for frame in handoff.take(timeout=0.5):
            if stop.is_set():  # outputs drain on stop: no records after it
                break
            handle(frame)
        if ended:
            break
        if clock is not None and time.monotonic() - last_tick >= EXPIRY_INTERVAL_S:
            last_tick = time.monotonic()
            pipeline.tick(clock())
    for t in readers:
        t.join(timeout=2.0)


def _run_inline(
    src: Source,
    batches: Iterator[list[Frame]],
    pipeline: Pipeline,
    stop: threading.Event,
    clock: Callable[[], float] | None,
    *,
    contain: bool,
) -> None:
    """One source's batches through the pipeline in this thread, with wall-clock ticks
    between batches. With `contain`, a source that fails ends as it would in a reader
    thread (logged, counted); otherwise its error reaches the caller."""
    last_tick = time.monotonic()
    handle = pipeline.handle
    try:
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception:
                if not contain:
                    raise
                log.exception("source %s failed; it stops", src.name)
                pipeline.counts["source_failures"] += 1
                return
            for frame in batch:
                if stop.is_set():  # outputs drain on stop: no records after it
                    return
                handle(frame)
            if stop.is_set():
                return
            if clock is not None and time.monotonic() - last_tick >= EXPIRY_INTERVAL_S:
                last_tick = time.monotonic()
                pipeline.tick(clock())
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # a generator left at a stop: its own cleanup (a device closed) now


def _read_into(
    src: Source, handoff: FrameHandoff, stop: threading.Event, counts: Counter[str]
) -> None:
    # A recording waits for room rather than lose frames; a live source drops (counted).
    wait = bool(getattr(src, "recorded", False))
    put = handoff.put
    try:
        for frame in src.frames(stop):
            put(frame, wait=wait, stop=stop)
    except Exception:
        log.exception("source %s failed; it stops, the others go on", src.name)
        counts["source_failures"] += 1
    finally:
        handoff.end()
