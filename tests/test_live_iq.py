"""LiveIq (RTL-SDR and rtl_tcp): dropped USB buffers and reopens keep the 12 MHz clock.

mlat-client needs ticks that count every sample the dongle produced, including the
ones we had to drop, and a new clock epoch when the stream restarts.
"""

from __future__ import annotations

from agent.demod.resolve import TICK_MASK
from agent.sources.live_iq import FEED_SAMPLES, LiveIq
from tests.conftest import shared_data

RATE = 2.4e6


def _raw() -> bytes:
    return shared_data("iq/modes1_2400.uc8").read_bytes()


class _Wall:
    """Arrival times as a dongle would give them: the end of each chunk in real time."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def after(self, nbytes: int) -> float:
        self.t += nbytes / 2 / RATE
        return self.t


def _feed_all(live: LiveIq, chunks: list[bytes], wall: _Wall, dropped: dict[int, int]):
    frames = []
    for i, chunk in enumerate(chunks):
        lost = dropped.get(i, 0)
        if lost:
            wall.after(2 * lost)
        got, _ = live.feed(chunk, wall.after(len(chunk)), lost)
        frames += got
    return frames + live.drain()


def test_dropped_buffers_are_counted_in_the_ticks_of_what_follows():
    raw = _raw()
    copies = 3 * FEED_SAMPLES * 2 // len(raw) + 1
    stream = raw * copies  # longer than a few feed blocks
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    whole = _feed_all(LiveIq(RATE, "dongle", clock=lambda: 0.0), chunks, _Wall(), {})
    # The same stream with chunk 40 lost in the reader (queue full): its samples are
    # reported with the next chunk.
    k = 40
    kept = chunks[:k] + chunks[k + 1 :]
    live = LiveIq(RATE, "dongle", clock=lambda: 0.0)
    gap = _feed_all(live, kept, _Wall(), {k: len(chunks[k]) // 2})
    lost_from, lost_to = 5 * (k * 65536 // 2), 5 * ((k + 1) * 65536 // 2)
    ticks_whole = {(f.msg, f.ticks_12mhz) for f in whole}
    after = [f for f in gap if f.ticks_12mhz > lost_to + 5 * 2000]
    assert len(after) > 100
    # Frames after the gap have exactly the ticks they had in the unbroken stream.
    assert all((f.msg, f.ticks_12mhz) in ticks_whole for f in after)
    before = [f for f in gap if f.ticks_12mhz < lost_from - 5 * 2000]
    assert all((f.msg, f.ticks_12mhz) in ticks_whole for f in before)
    assert max(f.ticks_12mhz for f in gap) <= TICK_MASK


def test_a_restart_starts_a_new_tick_epoch():
    raw = _raw()
    live = LiveIq(RATE, "dongle", clock=lambda: 0.0)
    wall = _Wall()
    first = _feed_all(live, [raw], wall, {})
    live.restart()
    second = _feed_all(live, [raw], wall, {})
    assert first and second
    assert {f.ticks_epoch for f in first} == {0}
    assert {f.ticks_epoch for f in second} == {1}
