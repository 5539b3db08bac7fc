"""Where selected records go: the publisher interface and the JSON-lines output.

Publishers share one small interface so the pipeline hands each record to a list of
them without knowing which are there (Frigate's communicators, rtl_433's outputs).
The MQTT publisher (outbox-backed) lives in agent/mqtt.py.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import IO, Any, Protocol


def to_json(record: dict[str, Any]) -> str:
    """Compact JSON, the form both stdout and MQTT carry."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


class Publisher(Protocol):
    counts: Counter[str]

    def publish(self, record: dict[str, Any]) -> object: ...

    def close(self) -> None: ...


class StdoutPublisher:
    """One JSON object per line; the stream `replay` and `demo` print."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stdout
        self.counts: Counter[str] = Counter()

    def publish(self, record: dict[str, Any]) -> None:
        self.stream.write(to_json(record) + "\n")
        self.counts["published"] += 1

    def close(self) -> None:
        self.stream.flush()
