"""JSON lines on standard output: what `replay` and `demo` print, and `run --stdout`."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from typing import IO, Any

from agent.errors import OutputClosed
from agent.outputs.base import Output

log = logging.getLogger("agent.stdout")


def to_json(record: dict[str, Any]) -> str:
    """Compact JSON, the form both stdout and MQTT carry."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


class StdoutPublisher(Output):
    """One JSON object per line; the stream `replay` and `demo` print.

    Args:
        stream: where lines go (standard output).
        essential: when the reader goes away (`| head`), end the command (OutputClosed)
            if these lines are what it is for; otherwise (`run --stdout` beside MQTT)
            say so once and carry on without them, counted.
    """

    def __init__(self, stream: IO[str] | None = None, *, essential: bool = True):
        self.stream = stream or sys.stdout
        self.essential = essential
        self.closed = False
        self.counts: Counter[str] = Counter()

    def publish(self, record: dict[str, Any]) -> None:
        if self.closed:
            self.counts["not_printed_closed"] += 1
            return
        try:
            self.stream.write(to_json(record) + "\n")
        except BrokenPipeError:
            if self.essential:
                raise OutputClosed("standard output closed by its reader") from None
            self.closed = True
            self.counts["not_printed_closed"] += 1
            log.warning("standard output was closed by its reader; records go on to MQTT only")
            return
        self.counts["published"] += 1

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.stream.flush()
        except BrokenPipeError:
            pass  # the reader left; nothing more to tell it
