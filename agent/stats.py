"""Every stage's counters under one roof (dump1090's `struct stats`, one per stage).

Stages keep plain `Counter`s and increment them on their own thread without a lock:
that is the hot path. Other threads (the service monitor, the health topic) read them
through `Stats.snapshot()`, which copies each counter with one `dict(counter)`: for a
Counter that copy is a single C-level dict merge that holds the GIL throughout, so it
sees a consistent counter and never trips over a key added meanwhile (the retry loops
this replaced). The list of stages is guarded by a lock, so stages may be registered
while a snapshot is taken.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping


class Stats:
    """Named counter groups; `snapshot()` flattens them to `stage.counter` keys."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: list[tuple[str, Mapping[str, int]]] = []

    def register(self, stage: str, counts: Mapping[str, int]) -> None:
        """Report `counts` under `stage.` from now on (the same object, kept live)."""
        with self._lock:
            self._groups.append((stage, counts))

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter, safe to take from any thread."""
        with self._lock:
            groups = list(self._groups)
        out: dict[str, int] = {}
        for stage, counts in groups:
            out.update({f"{stage}.{k}": v for k, v in copy_counts(counts).items()})
        return out


def copy_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """One counter group, copied atomically (see the module docstring)."""
    return dict(counts)
