"""Frames from reader threads to the pipeline thread, in batches, in bounded memory.

Why not a queue.Queue of frames: one Queue.put and one Queue.get per frame (Python-level
locking and notification, about 4 us a frame) was a visible share of the pipeline
thread at 2,000 frames a second, and a queue bounded in frames alone says nothing about
the memory it holds. Here a reader appends each frame to the open batch under a plain
lock (no notification unless the pipeline is asleep), and the pipeline takes the whole
batch at once. What waits is bounded both in frames and in bytes (each frame's
FRAME_COST_BYTES estimate), so memory stays bounded whatever the input rate:
- a live source (dongle, network feed) must not stall: its frames beyond the bound are
  dropped and counted (`frames_dropped_queue_full`), never silently;
- a recording (`Source.recorded` true) waits instead: its frames are not going away,
  and reading it faster than the pipeline takes it gains nothing.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter

from agent.frame import Frame

# About 4 s of a busy site (2,000 frames/s): slack for a pipeline stall before drops.
MAX_WAITING_FRAMES = 8192
# What a waiting frame holds in memory, beyond its message bytes: the Frame (8 slots),
# its float/int fields and its bytes object header, as measured by sys.getsizeof.
FRAME_OVERHEAD_BYTES = (
    sys.getsizeof(Frame(b"", 0.0, 0.0, "", 0, 0, None, 0))
    + sys.getsizeof(b"")
    + 2 * sys.getsizeof(0.0)
    + 2 * sys.getsizeof(1 << 40)
)
# The bound in bytes: MAX_WAITING_FRAMES long (14-byte) frames.
MAX_WAITING_BYTES = MAX_WAITING_FRAMES * (FRAME_OVERHEAD_BYTES + 14)


def frame_cost(frame: Frame) -> int:
    """Bytes a waiting frame is counted as holding."""
    return FRAME_OVERHEAD_BYTES + len(frame.msg)


class FrameHandoff:
    """Many reader threads put frames; one pipeline thread takes them in batches.

    Args:
        counts: where drops are counted (the pipeline's counters).
        readers: how many readers will call end().
        max_frames, max_bytes: the most that may wait (both bounds hold).
    """

    def __init__(
        self,
        counts: Counter[str],
        readers: int = 1,
        *,
        max_frames: int = MAX_WAITING_FRAMES,
        max_bytes: int = MAX_WAITING_BYTES,
    ):
        if max_frames < 1 or max_bytes < 1:
            raise ValueError("the bounds must be positive")
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.counts = counts
        self.readers = readers
        self._batch: list[Frame] = []
        self._bytes = 0
        self._ended = 0
        self._lock = threading.Lock()
        # Set by the pipeline when it found nothing and is about to sleep; readers wake it.
        self._taker_waiting = False
        self._ready = threading.Condition(self._lock)  # a frame or an end arrived
        self._room = threading.Condition(self._lock)  # a batch was taken
        self._putters_waiting = 0

    def put(self, frame: Frame, *, wait: bool, stop: threading.Event) -> bool:
        """Add one frame; False when it was dropped (no room and `wait` false, or `stop`).

        With `wait`, blocks until the pipeline makes room (waking every 0.5 s to look at
        `stop`).
        """
        cost = frame_cost(frame)
        with self._lock:
            while len(self._batch) >= self.max_frames or self._bytes + cost > self.max_bytes:
                if not wait or stop.is_set():
                    self.counts["frames_dropped_queue_full"] += 1
                    return False
                self._putters_waiting += 1
                self._room.wait(0.5)
                self._putters_waiting -= 1
            self._batch.append(frame)
            self._bytes += cost
            if self._taker_waiting:
                self._taker_waiting = False
                self._ready.notify()
        return True

    def end(self) -> None:
        """One reader's source has ended."""
        with self._lock:
            self._ended += 1
            self._ready.notify()

    @property
    def all_ended(self) -> bool:
        """Every reader has called end(): after that, one take() gets the last frames."""
        with self._lock:
            return self._ended >= self.readers

    def take(self, timeout: float) -> list[Frame]:
        """Every frame waiting, oldest first; waits up to `timeout` s for one, or for
        every reader to end."""
        with self._lock:
            if not self._batch and self._ended < self.readers:
                self._taker_waiting = True
                self._ready.wait_for(lambda: self._batch or self._ended >= self.readers, timeout)
                self._taker_waiting = False
            batch, self._batch, self._bytes = self._batch, [], 0
            if self._putters_waiting:
                self._room.notify_all()
        return batch
