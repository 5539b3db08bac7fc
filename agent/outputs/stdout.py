"""JSON lines on standard output: what `replay` and `demo` print, and `run --stdout`."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import IO, Any

from agent.errors import OutputClosed
from agent.outputs.base import Output


def to_json(record: dict[str, Any]) -> str:
    """Compact JSON, the form both stdout and MQTT carry."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


class StdoutPublisher(Output):
    """One JSON object per line; the stream `replay` and `demo` print."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stdout
        self.counts: Counter[str] = Counter()

    def publish(self, record: dict[str, Any]) -> None:
        try:
            self.stream.write(to_json(record) + "\n")
        except BrokenPipeError:
            raise OutputClosed("standard output closed by its reader") from None
        self.counts["published"] += 1

    def close(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            pass  # the reader left; nothing more to tell it
