"""One frame heard by two receivers is one frame.

With several sources at once (a dongle plus a neighbour's Beast feed) the same reply
arrives twice, a few milliseconds apart. A frame whose exact bytes came from a
*different* source within the window is dropped and counted; repeats from the same
source are real transmissions and pass.
"""

from __future__ import annotations

from collections import Counter

from agent.frame import Frame

# Network feeds lag a local dongle by well under a second; identical replies more than
# this far apart are separate transmissions.
DEDUP_WINDOW_S = 1.0
# Prune remembered frames when this many accumulate (a busy site hears ~2,000/s).
_PRUNE_AT = 20_000


class DuplicateFilter:
    """Not thread-safe: called from the pipeline thread only.

    Args:
        window_s: how far apart two copies may arrive.
        sources: how many sources feed it, when known. With one there is no other
            source to repeat its frames: nothing is remembered or compared (about half
            a microsecond a frame, and up to _PRUNE_AT frames held at a busy site).
    """

    def __init__(self, window_s: float = DEDUP_WINDOW_S, *, sources: int | None = None):
        self.window_s = window_s
        self._alone = sources == 1
        self._seen: dict[bytes, tuple[float, str]] = {}
        self.counts: Counter[str] = Counter()

    def __len__(self) -> int:
        """Frames remembered for comparison."""
        return len(self._seen)

    def is_duplicate(self, frame: Frame) -> bool:
        if self._alone:
            return False
        seen = self._seen.get(frame.msg)
        if (
            seen is not None
            and seen[1] != frame.source
            and abs(frame.rx_time - seen[0]) <= self.window_s
        ):
            self.counts[f"duplicate_from_{frame.source}"] += 1
            return True
        self._seen[frame.msg] = (frame.rx_time, frame.source)
        if len(self._seen) > _PRUNE_AT:
            cutoff = frame.rx_time - self.window_s
            self._seen = {m: v for m, v in self._seen.items() if v[0] >= cutoff}
        return False
