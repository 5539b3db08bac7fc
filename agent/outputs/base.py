"""The interface every output offers, so the pipeline and the service monitor treat
them alike without knowing which are there (Frigate's communicators, rtl_433's output
peers).

An output gets each selected record (`publish`) and, if it wants them, every frame the
CRC gate accepted (`on_frame`: the raw feeds, Beast/AVR/SBS, re-serve frames rather than
records). An output with a link to a far end (a broker) says how that link is through
`link_state()`; the service monitor colours the status file from it. An output that
needs decoded fields (SBS) takes them from `on_decoded`; one with something else to
show in the status file (clients of a raw feed) says it through `component()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.frame import Frame


@dataclass(frozen=True)
class LinkState:
    """How an output's link to its far end is, cheap enough to read every few seconds.

    connected: the link is up (for MQTT: CONNACK success and not lost since).
    refused: why the far end refuses us (a refused connection, or a refused publish
        while we wait to retry), else None.
    connect_error: why the last attempt to connect failed (DNS, TLS, refused socket),
        cleared by the next successful connect.
    outbox_depth: records committed and not yet acknowledged.
    outbox_problem: what is wrong with the outbox (a full disk), in words, else None.
    outbox_oldest_age_s: how long the oldest waiting record has waited, None if none.
    set_aside: records the far end refused for themselves (too large) and that were
        set aside so the rest could flow; set_aside_last: the latest, in words.
    """

    connected: bool
    refused: str | None = None
    connect_error: str | None = None
    outbox_depth: int = 0
    outbox_problem: str | None = None
    outbox_oldest_age_s: float | None = None
    set_aside: int = 0
    set_aside_last: str | None = None


class Output(ABC):
    """Where records (and, for raw feeds, frames) go.

    `publish` and `on_frame` are called from the pipeline thread and must not block
    on the network: an output with a slow far end queues (the MQTT output commits to
    the outbox and sends from its own thread). `link_state` and `counts` are read from
    the service monitor thread. `counts` names what the output did (the pipeline's
    `stats()` reports them under the class name).
    """

    counts: Counter[str]

    @abstractmethod
    def publish(self, record: dict[str, Any]) -> object:
        """Take one position or event record (agent.records); the return value is the
        output's own (the MQTT output returns the outbox seq)."""

    def start(self) -> Output:
        """Start the output's own threads, if it has any (the App calls it once, after
        the pipeline exists and before READY=1)."""
        return self

    def on_frame(self, frame: Frame) -> None:  # noqa: B027 - a tap most outputs ignore
        """Every frame the CRC gate accepted, before decoding; ignored unless overridden."""

    def on_decoded(self, frame: Frame, fields: dict[str, Any]) -> None:  # noqa: B027
        """Every decoded frame with the decoder's fields (after tracking and selection),
        for feeds that need them (SBS); ignored unless overridden."""

    def component(self) -> tuple[str, str, str] | None:
        """(name, colour, message) for the status file, for an output without a broker
        link that still has something to show (the raw feeds' clients); None if not."""
        return None

    def link_state(self) -> LinkState | None:
        """The link to the far end, or None for an output without one (stdout)."""
        return None

    def close(self) -> None:  # noqa: B027 - nothing to release unless overridden
        """Send what is pending if the output can, and release what it holds."""
