"""What every input looks like to the pipeline.

A source turns bytes from somewhere (IQ file, Beast/AVR socket, dongle, serial line)
into `Frame`s. Frames are *not* CRC-judged here: the pipeline's `FrameVerifier` is the
one gate for all sources. Bad input is counted in `counts`, never raised per frame.
A source may set `recorded = True` (a file): the pipeline's reader then waits for room
instead of dropping frames when the pipeline falls behind (agent/handoff.py).

A source that demodulates IQ also has `batches(stop)`: the same frames, one list per
block or buffer taken, and an empty list when it woke with nothing (at least every
0.5 s while its input runs). When it is the only source, the pipeline iterates it in
its own thread (pipeline.run_sources): the demodulator's numpy work and the pipeline's
Python then take turns instead of contending for the interpreter from two threads.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Protocol

from agent.frame import Frame


class Source(Protocol):
    """An input that yields frames until exhausted or until `stop` is set."""

    name: str
    counts: Counter[str]

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Yield frames in receive order; return when the input ends or `stop` is set.

        Network sources reconnect with backoff and only return when `stop` is set.
        Blocking reads must wake at least every 0.5 s to look at `stop`.
        """
        ...


def noise_floor_dbfs(src: object) -> float | None:
    """The receiver's noise floor for a source that demodulates IQ itself (file, dongle,
    rtl_tcp: each has a `noise_floor_dbfs` property), None for any other or before the
    first block. The self-check, the page and the status ask through here."""
    value = getattr(src, "noise_floor_dbfs", None)
    return value if isinstance(value, float) else None
