"""The technician's page: a small web server inside the agent (see server.py).

`build_outputs` is the one place it is made; the App calls it with the running
pipeline, the service monitor's latest status and the open sources.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agent.errors import AgentError, ConfigError

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.intel.aerodromes import Aerodromes
    from agent.outputs.base import LinkState, Output
    from agent.pipeline import Pipeline


def pipeline_view(pipeline: Pipeline) -> Any:
    """Read-only callables over the pipeline (copies, safe from other threads)."""
    from agent.outputs.web.state import PipelineView

    def aircraft() -> list[Any]:
        for _ in range(5):  # the pipeline thread may add or drop one while we copy
            try:
                return list(pipeline.tracker.aircraft.values())
            except RuntimeError:
                continue
        return []

    def selections() -> dict[str, tuple[str, ...]]:
        for _ in range(5):
            try:
                return {k: tuple(v.tags) for k, v in list(pipeline.selections.items())}
            except RuntimeError:
                continue
        return {}

    return PipelineView(aircraft=aircraft, selections=selections, stats=pipeline.stats)


def build_outputs(
    cfg: AgentConfig,
    pipeline: Pipeline,
    *,
    status: Callable[[], dict[str, Any] | None] | None = None,
    sources: Sequence[Any] = (),
) -> list[Output]:
    """The web server as an output (listening; its threads start with `start()`) when
    `[http] port` is set; else nothing.

    Raises:
        ConfigError: a non-loopback bind without a password, or an unreadable one.
        AgentError: the port cannot be opened (in use, not permitted).
    """
    http = cfg.http
    if not http.port:
        return []
    from agent.outputs.web.auth import Gate, is_loopback, password_path, read_password
    from agent.outputs.web.mapdata import static_map
    from agent.outputs.web.server import WebServer
    from agent.outputs.web.state import WebState

    path = password_path(http.password_file)
    password = read_password(path) if path is not None else None
    if password is None and not is_loopback(http.bind):
        raise ConfigError(
            [
                f"http.bind: {http.bind} is reachable from the network: set "
                "http.password_file (or LoadCredential=http-password), or bind 127.0.0.1"
            ]
        )

    def links() -> list[LinkState]:
        states = (out.link_state() for out in list(pipeline.publishers))
        return [state for state in states if state is not None]

    state = WebState(cfg, pipeline_view(pipeline), status=status, sources=sources, links=links)
    try:
        layers = static_map(cfg, _aerodromes(cfg, pipeline))
        server = WebServer(state, http.bind, http.port, Gate(password), layers)
    except OSError as err:
        raise AgentError(
            f"http: cannot listen on {http.bind}:{http.port}: {err.strerror}"
        ) from None
    return [server]


def _aerodromes(cfg: AgentConfig, pipeline: Pipeline) -> Aerodromes | None:
    """The pipeline's aerodrome table (its event analyst has it); when events are off
    but the map should still show aerodromes, one built on the map's first request."""
    if not cfg.intel.aerodromes:
        return None
    analyst = pipeline.analyst
    if analyst is not None and analyst.aerodromes is not None:
        return analyst.aerodromes
    from agent.intel.aerodromes import Aerodromes

    return Aerodromes.deferred()
