"""The running agent: what is built, in what order it starts, and how it stops.

`App.start()` and `App.stop()` read as a table of contents (Frigate's app.py): the
outbox and outputs, the pipeline that hands records to them, the sources that feed it,
the service monitor that watches it all. Every worker thread (source readers, the MQTT
publisher, the monitor) ends on the one `stop` event; SIGTERM and SIGINT set it, and
`stop()` then closes what was started in the reverse order.

One wall clock (`clock`) is injected into everything that stamps or ages by wall time:
the sources' start time, the outbox, the MQTT publisher, track expiry, the status file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from agent.config import AgentConfig
from agent.errors import ConfigError, SourceError
from agent.frame import Frame
from agent.notify import Notifier
from agent.outbox import Outbox
from agent.outputs.base import Output
from agent.pipeline import Pipeline, run_sources
from agent.service import ServiceMonitor, pipeline_probe
from agent.settings import as_dict
from agent.sources import OpenContext
from agent.sources.base import Source
from agent.stats import Stats

log = logging.getLogger("agent")


class App:
    """One agent: config in, records out.

    Args:
        cfg: the validated configuration.
        status_path: the status file the monitor rewrites (None: none).
        clock: wall clock (seconds).
        notifier: sd_notify (a no-op outside systemd).
        outputs: outputs to use instead of those the configuration names (replay).
    Not thread-safe: start, run and stop it from one thread.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        *,
        status_path: str | Path | None = None,
        clock: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
        outputs: list[Output] | None = None,
    ):
        self.cfg = cfg
        self.stop_event = threading.Event()
        self.clock = clock
        self.stats = Stats()
        self.notifier = notifier if notifier is not None else Notifier()
        self.status_path = status_path
        self.outputs: list[Output] = list(outputs) if outputs is not None else []
        self._own_outputs = outputs is None
        self.outbox: Outbox | None = None
        self.pipeline: Pipeline | None = None
        self.sources: list[Source] = []
        self.monitor: ServiceMonitor | None = None

    # -- the table of contents ---------------------------------------------------------

    def start(self, *, with_sources: bool = True) -> App:
        """Build and start everything; READY=1 once sources and outputs are open."""
        if self._own_outputs:
            self._init_outputs()
        self._init_pipeline()
        if with_sources:
            self._open_sources()
        self._init_page()
        self._start_outputs()
        self._start_monitor()
        return self

    def run(self) -> None:
        """Feed the pipeline until every source ends or the stop event is set."""
        assert self.pipeline is not None, "start() first"
        run_sources(self.sources, self.pipeline, self.stop_event, clock=self.clock)
        if not self.stop_event.is_set():  # every source ended (recordings): tracks end too
            self.pipeline.finish()

    def feed(self, frames: Iterable[Frame]) -> None:
        """Hand frames to the pipeline directly (the built-in scenario), then end tracks."""
        assert self.pipeline is not None, "start() first"
        for frame in frames:
            self.pipeline.handle(frame)
        self.pipeline.finish()

    def stop(self) -> None:
        """Set the stop event and close what was started, newest first."""
        self.stop_event.set()
        if self.monitor is not None:
            self.monitor.close()  # STOPPING=1, status file says stopped
        for out in reversed(self.outputs):
            out.close()  # the MQTT output sends what it can first
        if self.outbox is not None:
            self.outbox.close()

    def install_signal_handlers(self) -> None:
        """SIGTERM (systemd) and SIGINT (Ctrl-C) take the same path: the stop event."""
        import signal

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())

    # -- the steps ---------------------------------------------------------------------

    def _init_outputs(self) -> None:
        """MQTT through the outbox when a broker is configured; JSON lines when asked or
        when there is nowhere else to send them."""
        from agent.outputs.stdout import StdoutPublisher

        cfg = self.cfg
        if cfg.mqtt.url:
            from agent.outputs.mqtt import MqttPublisher

            self.outbox = _open_outbox(cfg, self.clock)
            info = {"receiver": cfg.site.position, "filter": as_dict(cfg.filter)}
            self.outputs.append(
                MqttPublisher(
                    cfg.mqtt,
                    cfg.site.name,
                    self.outbox,
                    info=info,
                    health=self._health,
                    stop=self.stop_event,
                    clock=self.clock,
                )
            )
        from agent.outputs.net import build_net_outputs

        self.outputs += build_net_outputs(  # raw feeds and JSON files, if [net] asks
            cfg,
            aircraft=lambda: self.pipeline.tracker.aircraft.values() if self.pipeline else (),
            selected=lambda icao: self.pipeline is not None and icao in self.pipeline.selections,
        )
        if cfg.stdout or not cfg.mqtt.url:
            if not cfg.mqtt.url:
                log.warning("no MQTT broker configured: printing records on standard output")
            # Beside a broker, a closed stdout must not stop the site's feed.
            self.outputs.append(StdoutPublisher(essential=not cfg.mqtt.url))

    def _init_pipeline(self) -> None:
        self.pipeline = Pipeline(self.cfg, self.outputs, stats=self.stats)

    def _open_sources(self) -> None:
        assert self.pipeline is not None
        if not self.cfg.sources:
            raise ConfigError(["sources: none configured (give --source URL or sources = [...])"])
        context = OpenContext(start_time=round(self.clock(), 3), verifier=self.pipeline.verifier)
        try:
            self.sources = [spec.open(context) for spec in self.cfg.sources]
        except SourceError as err:
            raise ConfigError([f"sources: {err}"]) from None

    def _init_page(self) -> None:
        """The technician's page when `[http] port` is set (before any output starts, so
        a bind it refuses stops the start first); it reads the monitor's latest status."""
        from agent.outputs.web import build_outputs

        assert self.pipeline is not None
        pages = build_outputs(
            self.cfg,
            self.pipeline,
            status=lambda: self.monitor.last_status if self.monitor is not None else None,
            sources=self.sources,
        )
        self.outputs += pages
        self.pipeline.publishers += pages

    def _start_outputs(self) -> None:
        for out in self.outputs:
            out.start()

    def _start_monitor(self) -> None:
        assert self.pipeline is not None
        self.monitor = ServiceMonitor(
            pipeline_probe(self.pipeline, self.sources),
            self.stop_event,
            self.notifier,
            site=self.cfg.site.name,
            status_path=self.status_path,
            wall=self.clock,
        )
        self.monitor.start()  # READY=1: config valid, sources open, outputs made

    def _health(self) -> dict:
        return self.pipeline.health() if self.pipeline is not None else {}


def _open_outbox(cfg: AgentConfig, clock: Callable[[], float]) -> Outbox:
    state = Path(cfg.state_dir)
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError([f"state_dir: cannot create {state}: {err.strerror}"]) from None
    return Outbox(
        state / "outbox.sqlite",
        max_bytes=int(cfg.outbox.max_mb * 1e6),
        max_age_s=cfg.outbox.max_age_h * 3600.0,
        clock=clock,
    )
