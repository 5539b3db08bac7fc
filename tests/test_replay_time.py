"""Replays keep the recording's own time (issue 13): the same records whenever replayed.

`--start-time` places the first frame; later frames follow their ticks (Beast, AVR '@')
or the sample count (IQ). A Beast log stored twice (each record, each block, each read
buffer) gives the clean log's frames, times and positions: repeated records are dropped
and ticks stepping back neither stretch nor re-anchor time.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.cli import main as cli_main
from agent.errors import EXIT_OK, EXIT_USAGE, SourceError
from agent.frame import Frame
from agent.sources import OpenContext, open_file_source, parse_source
from agent.sources.avr import AvrDecoder
from agent.sources.beast import _BODY, BeastDecoder
from agent.sources.file import start_time_value
from agent.sources.stream import (
    STEP_TICKS,
    TICK_WRAP,
    TICKS_PER_SECOND,
    RecordMemory,
    ReplayTimer,
    tick_distance,
)
from tests.conftest import REPO, shared_data
from tests.test_beast import DF11, DF17, record
from tests.test_cli import agent

RECORDING = "beast/traffic_sample_dump1090.bin"
# A real log stored twice, and the UTC start its publisher gave (tests/data/real).
REAL_DOUBLED = REPO / "tests" / "data" / "real" / "ulss7-beast-utc-1522782148.136.beast"
PULKOVO_START = 1522782148.136
# Near the recording's traffic (local CPR decoding needs a receiver position).
SITE = ("--site-lat", "43.6", "--site-lon", "1.4")
# Midday and late evening UTC of one June day over Toulouse: day and night.
NOON = datetime(2024, 6, 1, 12, 0, tzinfo=UTC).timestamp()
LATE = datetime(2024, 6, 1, 23, 0, tzinfo=UTC).timestamp()


def beast_records(data: bytes) -> list[bytes]:
    """The records of a Beast recording as stored (escaped), in order.

    The shared file is a plain dump1090 capture: records back to back, each `0x1a,
    type, body` with 0x1a in the body doubled; nothing between them.
    """
    out, i = [], 0
    while i < len(data):
        assert data[i] == 0x1A and data[i + 1] in _BODY, f"no record at byte {i}"
        j, need = i + 2, _BODY[data[i + 1]]
        while need:
            j += 2 if data[j] == 0x1A else 1
            need -= 1
        out.append(data[i:j])
        i = j
    return out


def doubled_per_record(data: bytes) -> bytes:
    return b"".join(r + r for r in beast_records(data))


def doubled_per_block(data: bytes, records: int) -> bytes:
    recs = beast_records(data)
    blocks = [b"".join(recs[k : k + records]) for k in range(0, len(recs), records)]
    return b"".join(b + b for b in blocks)


def doubled_per_read(data: bytes, size: int) -> bytes:
    """Each `size`-byte read stored twice, as a logger that writes its buffer twice:
    copies cut records anywhere, even between an escape's two bytes."""
    return b"".join(data[k : k + size] * 2 for k in range(0, len(data), size))


def _beast_frames(data: bytes, start_time: float = NOON) -> tuple[list[Frame], BeastDecoder]:
    d = BeastDecoder("log", start_time=start_time)
    return d.feed(data) + d.finish(), d


def _replay(
    argv: list[str], wall: float, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, list[dict], str]:
    """`adsb-agent replay` in this process with the wall clock at `wall`."""
    monkeypatch.setattr(time, "time", lambda: wall)
    out = io.StringIO()
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    logging.getLogger().addHandler(handler)
    try:
        with contextlib.redirect_stdout(out):
            rc = cli_main(["replay", *argv])
    finally:
        logging.getLogger().removeHandler(handler)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()], logs.getvalue()


class TestStartTime:
    def test_events_are_the_same_whenever_replayed(self, monkeypatch):
        path = str(shared_data(RECORDING))
        argv = ["--all", "--format", "beast", *SITE, "--start-time", "2024-06-01T12:00:00Z", path]
        rc_day, at_noon, _ = _replay(argv, NOON, monkeypatch)
        rc_night, at_night, _ = _replay(argv, LATE, monkeypatch)
        assert rc_day == rc_night == EXIT_OK
        assert at_noon == at_night
        assert "night_flight" not in {r.get("event") for r in at_noon}
        # The first frame is at the start time, the aircraft's first one at its tick
        # distance from it: the track's id names that second.
        frames, _ = _beast_frames(shared_data(RECORDING).read_bytes(), NOON)
        first = min(f.rx_time for f in frames if f.msg[1:4] == bytes.fromhex("48520A"))
        assert frames[0].rx_time == NOON and first > NOON + 2
        assert {r["track_id"] for r in at_noon} == {f"48520A-{int(first)}"}

    def test_without_it_the_wall_clock_decides_and_says_so(self, monkeypatch):
        # What the issue saw: the same recording is a night flight when replayed late.
        path = str(shared_data(RECORDING))
        argv = ["--all", "--format", "beast", *SITE, path]
        _, at_noon, said = _replay(argv, NOON, monkeypatch)
        _, at_night, _ = _replay(argv, LATE, monkeypatch)
        assert "night_flight" not in {r.get("event") for r in at_noon}
        assert "night_flight" in {r.get("event") for r in at_night}
        assert "no --start-time" in said and "2024-06-01T12:00:00 UTC" in said

    def test_iq_recordings_follow_their_sample_count(self, monkeypatch):
        argv = [
            "--all",
            "--rate",
            "2.0e6",
            "--start-time",
            "1717243200",
            str(shared_data("iq/modes1.bin")),
        ]
        _, first, said = _replay(argv, NOON, monkeypatch)
        _, second, _ = _replay(argv, LATE, monkeypatch)
        assert first == second and first
        assert "no --start-time" not in said
        # A 0.18 s capture: every record within it, from the start time on.
        assert all(1717243200 <= r["ts"] < 1717243200 + 0.2 for r in first)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2024-06-01T22:23:00Z", datetime(2024, 6, 1, 22, 23, tzinfo=UTC).timestamp()),
            ("2024-06-01T22:23:00", datetime(2024, 6, 1, 22, 23, tzinfo=UTC).timestamp()),
            ("2024-06-02T00:23:00+02:00", datetime(2024, 6, 1, 22, 23, tzinfo=UTC).timestamp()),
            ("1717280580", 1717280580.0),
            ("1717280580.25", 1717280580.25),
        ],
    )
    def test_start_time_forms(self, text, expected):
        assert start_time_value(text) == expected

    @pytest.mark.parametrize("text", ["yesterday", "nan", "-5", "2024-13-01T00:00:00Z"])
    def test_bad_start_time_is_a_usage_error(self, text):
        run = agent(
            "replay", "--format", "beast", "--start-time", text, str(shared_data(RECORDING))
        )
        assert run.returncode == EXIT_USAGE
        assert b"--start-time" in run.stderr and b"Traceback" not in run.stderr

    def test_the_notice_is_on_stderr_of_the_command(self):
        path = str(shared_data(RECORDING))
        plain = agent("replay", "--all", "--format", "beast", path)
        given = agent("replay", "--all", "--format", "beast", "--start-time", "0", path)
        assert b"no --start-time" in plain.stderr and b"no --start-time" not in given.stderr
        assert b"no --start-time" not in plain.stdout
        assert json.loads(given.stdout.splitlines()[0])["ts"] < 60

    def test_file_url_takes_start_time(self):
        path = shared_data(RECORDING)
        spec = parse_source(f"file:{path}?format=beast&start_time=2024-06-01T12:00:00Z")
        assert spec.options.start_time == NOON
        # The URL's time wins over the opener's (the wall clock in `run`).
        src = spec.open(OpenContext(start_time=5.0))
        assert next(iter(src.frames(threading.Event()))).rx_time == NOON
        unset = parse_source(f"file:{path}?format=beast").open(OpenContext(start_time=5.0))
        assert next(iter(unset.frames(threading.Event()))).rx_time == 5.0

    def test_file_url_refuses_a_bad_start_time(self):
        with pytest.raises(SourceError, match="start_time 'noon': expected ISO 8601"):
            parse_source("file:x.bin?format=beast&start_time=noon")


@pytest.fixture(scope="module")
def clean() -> bytes:
    return shared_data(RECORDING).read_bytes()


class TestDoubledBeastLog:
    """A log with every record stored twice replays as the clean one."""

    @pytest.mark.parametrize(
        "double",
        [
            doubled_per_record,
            lambda d: doubled_per_block(d, 16),
            lambda d: doubled_per_block(d, 100),
        ],
        ids=["record", "block16", "block100"],
    )
    def test_same_frames_and_times(self, clean: bytes, double: Callable[[bytes], bytes]):
        want, _ = _beast_frames(clean)
        got, decoder = _beast_frames(double(clean))
        assert [(f.msg, f.ticks_12mhz, f.rx_time, f.signal_dbfs) for f in got] == [
            (f.msg, f.ticks_12mhz, f.rx_time, f.signal_dbfs) for f in want
        ]
        assert decoder.counts["frames"] == 239 and decoder.counts["duplicate_records"] == 239
        assert decoder._replay is not None and decoder._replay.segments == 1

    @pytest.mark.parametrize("size", [97, 512, 4096])
    def test_read_buffers_written_twice(self, clean: bytes, size: int):
        """Copies cut records anywhere: a cut inside an escape pair glues two pieces
        into a record with random ticks. Those are extra frames (the CRC gate drops
        them), but they neither move the clock nor start a segment."""
        want, _ = _beast_frames(clean)
        got, decoder = _beast_frames(doubled_per_read(clean, size))
        times = {(f.msg, f.ticks_12mhz): f.rx_time for f in want}
        kept = [f for f in got if (f.msg, f.ticks_12mhz) in times]
        assert [(f.msg, f.ticks_12mhz) for f in kept] == [(f.msg, f.ticks_12mhz) for f in want]
        for f in kept:  # a glued record a little ahead may lead a frame by microseconds
            assert f.rx_time == pytest.approx(times[f.msg, f.ticks_12mhz], abs=1e-3)
        assert max(f.rx_time for f in got) == pytest.approx(want[-1].rx_time, abs=1e-3)
        assert decoder._replay is not None and decoder._replay.segments == 1
        assert decoder.counts["duplicate_records"] >= 199

    def test_without_the_memory_the_blocks_stretch_time(self, clean: bytes):
        """Shows the test above is sharp: the copies alone would double the timeline."""
        want, _ = _beast_frames(clean)
        d = BeastDecoder("log", start_time=NOON)
        d._memory.repeated = lambda record: False  # type: ignore[method-assign]
        got = d.feed(doubled_per_block(clean, 16)) + d.finish()
        assert len(got) == 2 * len(want)
        assert got[-1].rx_time - NOON > 1.5 * (want[-1].rx_time - NOON)

    @pytest.mark.parametrize(
        "double",
        [
            doubled_per_record,
            lambda d: doubled_per_block(d, 16),
            lambda d: doubled_per_read(d, 512),
        ],
        ids=["record", "block16", "read512"],
    )
    def test_same_positions_through_replay(self, clean: bytes, double, tmp_path: Path):
        doubled = tmp_path / "doubled.bin"
        doubled.write_bytes(double(clean))
        common = ("replay", "--all", "--format", "beast", *SITE, "--start-time", "1717243200")
        want = agent(*common, str(shared_data(RECORDING)))
        got = agent(*common, str(doubled))
        assert want.returncode == got.returncode == 0, got.stderr
        positions = [json.loads(x) for x in want.stdout.splitlines()]
        assert any(r["type"] == "position" for r in positions)
        assert got.stdout == want.stdout
        assert b"duplicate_records=" in got.stderr

    def test_the_real_doubled_log(self, tmp_path: Path):
        """The Pulkovo excerpt (tests/data/real) stores every record twice, in blocks
        (ticks step back ~1,400 times). Keeping the first copy of each record gives
        the clean log; both replay to the same records, over 61 s, not 115 s."""
        doubled = REAL_DOUBLED.read_bytes()
        seen: set[bytes] = set()
        firsts = [r for r in beast_records(doubled) if not (r in seen or seen.add(r))]
        assert 2 * len(firsts) == len(beast_records(doubled))
        path = tmp_path / "pulkovo-clean.beast"
        path.write_bytes(b"".join(firsts))
        want, _ = _beast_frames(path.read_bytes(), PULKOVO_START)
        got, decoder = _beast_frames(doubled, PULKOVO_START)
        assert [(f.msg, f.rx_time) for f in got] == [(f.msg, f.rx_time) for f in want]
        assert decoder._replay is not None and decoder._replay.segments == 1
        assert got[-1].rx_time - PULKOVO_START == pytest.approx(60.9, abs=0.1)
        common = ("replay", "--all", "--format", "beast", "--start-time", str(PULKOVO_START))
        site = ("--site-lat", "59.8003", "--site-lon", "30.2625")
        clean_run = agent(*common, *site, str(path))
        doubled_run = agent(*common, *site, str(REAL_DOUBLED))
        assert clean_run.returncode == doubled_run.returncode == 0, doubled_run.stderr
        assert b'"type":"position"' in clean_run.stdout
        assert doubled_run.stdout == clean_run.stdout

    def test_avr_timed_lines_doubled(self, clean: bytes):
        frames, _ = _beast_frames(clean)
        lines = [f"@{f.ticks_12mhz:012X}{f.hex};\n" for f in frames]
        d = AvrDecoder("avr", start_time=NOON)
        got = d.feed("".join(x + x for x in lines).encode()) + d.finish()
        assert [(f.msg, f.rx_time) for f in got] == [(f.msg, f.rx_time) for f in frames]
        assert d.counts["duplicate_records"] == 239

    def test_untimed_avr_lines_are_not_merged_and_sit_at_the_start_time(self, caplog):
        d = AvrDecoder("avr", start_time=NOON)
        with caplog.at_level(logging.INFO):
            got = d.feed(f"*{DF17.hex()};\n*{DF17.hex()};\n*{DF11.hex()};\n".encode())
        assert [f.rx_time for f in got] == [NOON] * 3  # two receptions, no time to tell
        assert "duplicate_records" not in d.counts
        assert "without a timestamp" in caplog.text

    def test_a_new_connection_forgets_what_was_sent(self):
        d = BeastDecoder("live", clock=lambda: 1.0)
        assert len(d.feed(record(DF11) * 2)) == 1
        d.reset()
        assert len(d.feed(record(DF11))) == 1  # the server sent it again: a new stream


def _times(ticks: list[int | None], start: float = 0.0) -> tuple[list[float], ReplayTimer[int]]:
    """rx_time of each tick list entry, in input order, through take() and finish()."""
    timer: ReplayTimer[int] = ReplayTimer(start)
    placed = []
    for i, t in enumerate(ticks):
        placed += timer.take(t, i)
    placed += timer.finish()
    assert [i for _, i in placed] == list(range(len(ticks))), "order kept"
    return [t for t, _ in placed], timer


S = TICKS_PER_SECOND


class TestReplayTimer:
    def test_forward_and_across_the_48_bit_wrap(self):
        times, timer = _times([TICK_WRAP - S // 2, S // 2, S], 100.0)
        assert times == [100.0, 101.0, 101.5]
        assert timer.segments == 1

    def test_a_little_back_keeps_the_newest_time_and_reference(self):
        base = 50 * S
        times, timer = _times([base, base + S, base + S // 2, base + 2 * S])
        assert times == [0.0, 1.0, 1.0, 2.0]  # out of order: not earlier, not re-anchored
        assert timer.segments == 1

    def test_far_back_confirmed_is_a_new_segment_from_the_newest_time(self):
        # The receiver restarted: its counter starts again from zero.
        times, timer = _times([1000 * S, 1003 * S, 5, 5 + S], 10.0)
        assert times == [10.0, 13.0, 13.0, 14.0]
        assert timer.segments == 2

    def test_a_long_gap_confirmed_by_the_next_frame(self):
        times, timer = _times([0, 600 * S, 601 * S, 700 * S])  # a quiet sky, then traffic
        assert times == [0.0, 600.0, 601.0, 700.0]
        assert timer.segments == 1

    def test_one_frame_with_random_ticks_moves_nothing(self):
        ahead = 10 * S + 3 * 3600 * S  # hours ahead: a record glued from two cut ones
        times, timer = _times([10 * S, ahead, 10 * S + S // 10, 5, 10 * S + S // 5])
        assert times == pytest.approx([0.0, 0.0, 0.1, 0.1, 0.2])
        assert timer.segments == 1

    def test_the_last_frame_takes_its_step(self):
        times, _ = _times([0, S // 2, 30 * S])
        assert times == [0.0, 0.5, 30.0]

    def test_untimed_frames_take_the_newest_time_and_keep_their_place(self):
        times, _ = _times([None, 5, 5 + 3 * S, None, 5 + 60 * S, None, 5 + 61 * S], 7.0)
        assert times == [7.0, 7.0, 10.0, 10.0, 67.0, 67.0, 68.0]

    def test_step_limit(self):
        times, _ = _times([0, STEP_TICKS, 2 * STEP_TICKS + 1, 2 * STEP_TICKS + 2])
        assert times == pytest.approx([0.0, 1.0, 2.0 + 1 / S, 2.0 + 2 / S])

    def test_tick_distance(self):
        assert tick_distance(10, 25) == 15
        assert tick_distance(25, 10) == -15
        assert tick_distance(TICK_WRAP - 1, 0) == 1
        assert tick_distance(0, TICK_WRAP - 1) == -1


class TestRecordMemory:
    def test_repeat_is_recognised(self):
        m = RecordMemory()
        assert not m.repeated(b"a")
        assert not m.repeated(b"b")
        assert m.repeated(b"a") and m.repeated(b"b")

    def test_bounded_to_the_newest(self):
        m = RecordMemory(size=100)
        for i in range(1000):
            assert not m.repeated(i.to_bytes(4, "big"))
        assert len(m._seen) == len(m._order) == 100
        assert m.repeated((999).to_bytes(4, "big"))
        assert not m.repeated((0).to_bytes(4, "big"))


def test_open_file_source_start_time_reaches_beast_frames():
    src = open_file_source(str(shared_data(RECORDING)), "beast", start_time=NOON)
    frames = list(src.frames(threading.Event()))
    assert frames[0].rx_time == NOON
    assert frames[-1].rx_time == pytest.approx(
        NOON + (frames[-1].ticks_12mhz - frames[0].ticks_12mhz) / TICKS_PER_SECOND
    )
