"""Adaptive tuner gain: a pure policy, fed numbers, returning the next gain step.

Why adaptive: at a remote strip the interesting aircraft are close and loud, while the
dongle's best gain for distant traffic (usually the top of the list) saturates on them:
a clipped reply loses its pulse shape and fails CRC. readsb's autogain keeps the share of
"loud" replies (above -3 dBFS) at a few per cent; this policy does the same and also
backs off when the noise floor itself climbs (a nearby transmitter, a hot LNA), and
climbs while the band is quiet and the noise allows it.

Nothing here touches a device or a clock: the source calls `AdaptiveGain.observe` with
the levels of the frames it decoded, its noise floor and a time, and applies the gain
it returns. The tests drive it with plain numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A reply whose preamble pulse is above this is close to clipping (UC8 full scale is
# 0 dBFS for one component; both components at full scale are +3 dBFS).
STRONG_DBFS = -3.0


@dataclass(frozen=True, slots=True)
class GainPolicy:
    """Thresholds of the adaptive gain policy.

    Attributes:
        strong_low, strong_high: band for the share of strong frames (readsb keeps it
            near 1-5 %): above the band step down, below it step up.
        noise_max_dbfs: median magnitude above which gain steps down whatever the frames
            say; on a quiet R820T at usual gains it sits near -30 dBFS.
        noise_margin_db: a step up needs the noise this far below noise_max_dbfs, so the
            gain does not bounce between two steps on the noise rule.
        min_frames: frames a window needs before its strong share is trusted; a quieter
            window decides on noise alone (and climbs only if no frame was strong).
        window_s: length of one observation window; the window restarts after each
            decision, so every change is judged on data taken after it.
    """

    strong_low: float = 0.01
    strong_high: float = 0.05
    noise_max_dbfs: float = -24.0
    noise_margin_db: float = 3.0
    min_frames: int = 100
    window_s: float = 20.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.strong_low < self.strong_high <= 1.0:
            raise ValueError("need 0 <= strong_low < strong_high <= 1")
        if self.min_frames < 1 or self.window_s <= 0 or self.noise_margin_db < 0:
            raise ValueError("min_frames, window_s must be positive, noise_margin_db >= 0")


@dataclass(frozen=True, slots=True)
class GainStep:
    """A decision to change gain: the new gain (dB), the step index and why."""

    gain_db: float
    index: int
    reason: str


def decide(strong: int, frames: int, noise_dbfs: float | None, policy: GainPolicy) -> int:
    """-1 (down), 0 (hold) or +1 (up) for one window's numbers.

    Args:
        strong: frames above STRONG_DBFS in the window.
        frames: all frames with a known level in the window.
        noise_dbfs: mean noise floor over the window; None when unknown.
        policy: thresholds.
    """
    if noise_dbfs is not None and noise_dbfs > policy.noise_max_dbfs:
        return -1
    share = strong / frames if frames else 0.0
    trusted = frames >= policy.min_frames
    if trusted and share > policy.strong_high:
        return -1
    headroom = noise_dbfs is None or noise_dbfs < policy.noise_max_dbfs - policy.noise_margin_db
    if not headroom:
        return 0
    if trusted and share < policy.strong_low:
        return +1
    if not trusted and strong == 0:
        return +1
    return 0


class AdaptiveGain:
    """Walks a tuner's gain list one step at a time, one decision per window.

    Not thread-safe; one per device. Counters are the caller's: each returned GainStep
    is one change.

    Args:
        gains_db: the tuner's gains in dB (any order; duplicates ignored).
        policy: thresholds (defaults: readsb-like 1-5 % strong band).
        start_db: first gain; the nearest listed one is used. Default: the highest,
            as dump1090 starts, so weak distant traffic is heard until proven too loud.
    Raises:
        ValueError: empty gain list.
    """

    def __init__(
        self,
        gains_db: Sequence[float],
        policy: GainPolicy | None = None,
        *,
        start_db: float | None = None,
    ):
        ladder = sorted(set(gains_db))
        if not ladder:
            raise ValueError("the tuner reported no gains")
        self.ladder = ladder
        self.policy = policy or GainPolicy()
        start = ladder[-1] if start_db is None else start_db
        self.index = min(range(len(ladder)), key=lambda i: abs(ladder[i] - start))
        self._window_start: float | None = None
        self._frames = 0
        self._strong = 0
        self._noise_sum = 0.0
        self._noise_n = 0

    @property
    def gain_db(self) -> float:
        """The gain the device should be at now."""
        return self.ladder[self.index]

    def observe(
        self, levels_dbfs: Iterable[float | None], noise_dbfs: float | None, now: float
    ) -> GainStep | None:
        """Account one block; at the end of a window, the step to take (None: hold).

        Args:
            levels_dbfs: signal level of each frame decoded from the block (None ignored).
            noise_dbfs: the demodulator's noise floor after the block (None: unknown).
            now: time of the block (sample time or monotonic seconds; only differences
                matter).
        """
        if self._window_start is None:
            self._window_start = now
        for level in levels_dbfs:
            if level is None:
                continue
            self._frames += 1
            if level > STRONG_DBFS:
                self._strong += 1
        if noise_dbfs is not None:
            self._noise_sum += noise_dbfs
            self._noise_n += 1
        if now - self._window_start < self.policy.window_s:
            return None
        noise = self._noise_sum / self._noise_n if self._noise_n else None
        direction = decide(self._strong, self._frames, noise, self.policy)
        reason = self._reason(direction, noise)
        self._reset(now)
        new = min(max(self.index + direction, 0), len(self.ladder) - 1)
        if new == self.index:
            return None
        self.index = new
        return GainStep(self.gain_db, new, reason)

    def restart(self, now: float) -> None:
        """Forget the current window (device reopened: old numbers describe old samples)."""
        self._reset(now)

    def _reset(self, now: float) -> None:
        self._window_start = now
        self._frames = self._strong = self._noise_n = 0
        self._noise_sum = 0.0

    def _reason(self, direction: int, noise: float | None) -> str:
        share = f"{self._strong}/{self._frames} strong"
        level = "unknown" if noise is None else f"{noise:.1f} dBFS"
        if direction < 0:
            return f"{share}, noise {level}: too loud"
        if direction > 0:
            return f"{share}, noise {level}: room to climb"
        return f"{share}, noise {level}: in band"
