"""Beast binary decoding on the real dump1090 recording and on hand-built edge cases."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter

import pytest

from agent.crc import syndrome
from agent.errors import SourceError
from agent.frame import Frame
from agent.sources import open_file_source
from agent.sources.beast import BeastDecoder, BeastFileSource
from agent.sources.stream import MLAT_MAGIC_TICKS, TICKS_PER_SECOND, signal_dbfs
from tests.conftest import REPO, shared_data

RECORDING = "beast/traffic_sample_dump1090.bin"
# Real frames from the recording: its first record (DF4) and first DF17 (aircraft 48520A).
FIRST_MSG = bytes.fromhex("20000ca8f70aa7")
FIRST_TICKS = 0x000015A8877E
DF17 = bytes.fromhex("8d48520af82300060049b898ba5f")
DF11 = bytes.fromhex("5d4d20237a55af")  # readsb reference output for modes1 (4D2023)


def _recording() -> bytes:
    return shared_data(RECORDING).read_bytes()


def _escape(data: bytes) -> bytes:
    return data.replace(b"\x1a", b"\x1a\x1a")


def record(msg: bytes, ticks: int = 12_000_000, level: int = 0x80, kind: bytes = b"") -> bytes:
    """One Beast record, escaped as on the wire (type from the length unless given)."""
    kind = kind or {2: b"1", 7: b"2", 14: b"3"}[len(msg)]
    return b"\x1a" + kind + _escape(ticks.to_bytes(6, "big") + bytes([level]) + msg)


def _decode(data: bytes, **kwargs: float) -> tuple[list[Frame], Counter[str]]:
    d = BeastDecoder("test", start_time=kwargs.get("start_time", 0.0))
    return d.feed(data) + d.finish(), d.counts


class TestRecording:
    def test_whole_recording(self):
        frames, counts = _decode(_recording(), start_time=1000.0)
        assert len(frames) == 239
        assert counts["frames"] == 239
        assert set(counts) == {"frames"}, "a clean recording raises no other counter"
        assert frames[0].msg == FIRST_MSG and frames[0].ticks_12mhz == FIRST_TICKS
        assert frames[0].rx_time == 1000.0
        assert DF17 in [f.msg for f in frames]
        by_df = Counter(f.df for f in frames)
        assert by_df == {11: 90, 0: 44, 4: 39, 17: 23, 20: 16, 21: 14, 5: 12, 16: 1}
        df17 = [f for f in frames if f.df == 17]
        assert all(syndrome(f.msg) == 0 for f in df17)
        assert all(f.signal_dbfs is not None and -60 < f.signal_dbfs < 0 for f in frames)
        assert all(f.source == "test" for f in frames)

    def test_times_follow_the_recorded_ticks(self):
        frames, _ = _decode(_recording(), start_time=1000.0)
        times = [f.rx_time for f in frames]
        assert times == sorted(times)
        last = frames[-1]
        assert last.ticks_12mhz is not None
        expected = 1000.0 + (last.ticks_12mhz - FIRST_TICKS) / TICKS_PER_SECOND
        assert last.rx_time == pytest.approx(expected)
        assert 20 < last.rx_time - 1000.0 < 30  # about 24 s of traffic

    def test_the_recording_has_escapes_to_exercise(self):
        data = _recording()
        assert data.count(b"\x1a\x1a") > 10

    def test_byte_by_byte_equals_whole(self):
        data = _recording()
        whole, _ = _decode(data)
        d = BeastDecoder("test", start_time=0.0)
        pieces = []
        for i in range(len(data)):
            pieces += d.feed(data[i : i + 1])
        assert pieces + d.finish() == whole
        assert d.counts == Counter(frames=239)

    def test_every_split_offset_equals_whole(self):
        data = _recording()
        whole, _ = _decode(data)
        for cut in range(len(data) + 1):
            d = BeastDecoder("test", start_time=0.0)
            assert d.feed(data[:cut]) + d.feed(data[cut:]) == whole, cut
            assert d.counts == Counter(frames=239), cut

    def test_file_source_replays_the_recording(self):
        src = open_file_source(str(shared_data(RECORDING)), "beast", start_time=50.0)
        assert isinstance(src, BeastFileSource)
        frames = list(src.frames(threading.Event()))
        assert len(frames) == 239 and frames[0].rx_time == 50.0
        assert src.counts["frames"] == 239
        assert frames[0].source == str(shared_data(RECORDING))

    def test_file_source_from_standard_input(self):
        code = (
            "import threading\n"
            "from agent.sources.beast import BeastFileSource\n"
            "src = BeastFileSource('-', start_time=0.0)\n"
            "frames = list(src.frames(threading.Event()))\n"
            "print(len(frames), frames[0].source, frames[-1].msg.hex())\n"
        )
        with shared_data(RECORDING).open("rb") as fh:
            out = subprocess.run(
                [sys.executable, "-c", code],
                stdin=fh,
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=30,
                check=True,
            )
        frames, _ = _decode(_recording())
        assert out.stdout.split() == ["239", "stdin", frames[-1].msg.hex()]

    def test_set_stop_ends_a_replay(self):
        src = BeastFileSource(str(shared_data(RECORDING)))
        stop = threading.Event()
        stop.set()
        assert list(src.frames(stop)) == []

    def test_missing_file_is_a_source_error(self, tmp_path):
        with pytest.raises(SourceError, match="not found"):
            BeastFileSource(str(tmp_path / "nope.bin"))
        with pytest.raises(SourceError, match="directory"):
            BeastFileSource(str(tmp_path))


class TestEdgeCases:
    def test_escaped_0x1a_in_ticks_signal_and_message(self):
        ticks = 0x1A001A1A1A1A
        msg = bytes.fromhex("8d1a1a1a0000000000000000001a")
        wire = record(msg, ticks=ticks, level=0x1A)
        assert wire.count(b"\x1a\x1a") == 5 + 1 + 4  # ticks, signal, message
        frames, counts = _decode(wire + record(DF11))
        assert [f.msg for f in frames] == [msg, DF11]
        assert frames[0].ticks_12mhz == ticks
        assert frames[0].signal_dbfs == signal_dbfs(0x1A)
        assert counts == Counter(frames=2)
        for cut in range(len(wire) + 1):  # and at every split inside the escapes
            d = BeastDecoder(start_time=0.0)
            assert [f.msg for f in d.feed(wire[:cut]) + d.feed(wire[cut:])] == [msg]

    def test_junk_between_frames_is_skipped_and_counted(self):
        junk = b"hello\x00\xff"
        pair = b"\x1a\x1a"  # an escaped data byte: the middle of a record we never saw
        # The two DF17 are two receptions (another tick): the same record twice is a
        # repeat, dropped (TestDoubledLog).
        later = record(DF17, ticks=24_000_000)
        wire = junk + record(DF17) + junk + record(DF11) + pair + later
        frames, counts = _decode(wire)
        assert [f.msg for f in frames] == [DF17, DF11, DF17]
        assert counts["beast_resync"] == 3
        assert counts["beast_junk_bytes"] == 2 * len(junk) + len(pair)

    def test_lone_0x1a_before_a_non_type_byte_is_junk(self):
        frames, counts = _decode(b"\x1a\x00\x1aZ" + record(DF11))
        assert [f.msg for f in frames] == [DF11]
        assert counts["beast_bad_type"] == 2
        assert counts["beast_resync"] == 1

    def test_unknown_record_type_resyncs_on_the_next_record(self):
        frames, counts = _decode(b"\x1a\xe3" + b"12345678" + record(DF17))
        assert [f.msg for f in frames] == [DF17]
        assert counts["beast_bad_type"] == 1 and counts["beast_resync"] == 1

    def test_record_cut_short_by_the_next_one(self):
        cut = record(DF17)[:12]
        frames, counts = _decode(record(DF11) + cut + record(DF17))
        assert [f.msg for f in frames] == [DF11, DF17]
        assert counts["beast_truncated"] == 1
        assert counts["beast_junk_bytes"] == len(cut)

    def test_stream_ending_mid_record(self):
        frames, counts = _decode(record(DF11) + record(DF17)[:-4])
        assert [f.msg for f in frames] == [DF11]
        assert counts["beast_partial_dropped"] == 1

    def test_joining_mid_stream(self):
        tail = record(DF17)[5:]
        frames, counts = _decode(tail + record(DF11))
        assert [f.msg for f in frames] == [DF11]
        assert counts["beast_resync"] == 1

    def test_length_must_match_the_df(self):
        short_record_long_df = b"\x1a2" + _escape(bytes(7) + DF17[:7])
        long_record_short_df = b"\x1a3" + _escape(bytes(7) + DF11 + bytes(7))
        frames, counts = _decode(short_record_long_df + long_record_short_df + record(DF11))
        assert [f.msg for f in frames] == [DF11]
        assert counts["beast_df_length_mismatch"] == 2

    def test_mode_ac_and_status_records_are_skipped(self):
        status = record(bytes(14), kind=b"4")
        position = b"\x1a5" + bytes(21)
        frames, counts = _decode(record(b"\x12\x34") + status + position + record(DF11))
        assert [f.msg for f in frames] == [DF11]
        assert counts["mode_ac"] == 1 and counts["beast_status"] == 2
        assert "beast_resync" not in counts

    def test_signal_levels(self):
        assert signal_dbfs(255) == 0.0
        assert signal_dbfs(0) is None
        assert signal_dbfs(128) == pytest.approx(-5.99, abs=0.01)
        frames, _ = _decode(record(DF11, level=0) + record(DF11, level=255))
        assert [f.signal_dbfs for f in frames] == [None, 0.0]

    def test_live_frames_take_the_clock(self):
        d = BeastDecoder("live", clock=lambda: 1234.5)
        [frame] = d.feed(record(DF11, ticks=999))
        assert frame.rx_time == 1234.5 and frame.ticks_12mhz == 999

    def test_ticks_going_backwards_do_not_turn_time_back(self):
        t0 = 1_000 * TICKS_PER_SECOND
        wire = (
            record(DF11, ticks=t0)
            + record(DF11, ticks=t0 + 2 * TICKS_PER_SECOND)
            + record(DF11, ticks=5)  # receiver restarted: counter from zero
            + record(DF11, ticks=5 + TICKS_PER_SECOND)
        )
        frames, _ = _decode(wire, start_time=100.0)
        assert [f.rx_time for f in frames] == [100.0, 102.0, 102.0, 103.0]

    def test_untimed_and_mlat_frames_keep_the_previous_time(self):
        wire = (
            record(DF11, ticks=TICKS_PER_SECOND)
            + record(DF11, ticks=3 * TICKS_PER_SECOND)
            + record(DF17, ticks=0)
            + record(DF17, ticks=MLAT_MAGIC_TICKS)
        )
        frames, _ = _decode(wire, start_time=10.0)
        assert [f.rx_time for f in frames] == [10.0, 12.0, 12.0, 12.0]
        assert [f.ticks_12mhz for f in frames][2:] == [None, None]

    def test_reset_drops_an_unfinished_record(self):
        d = BeastDecoder(start_time=0.0)
        half = record(DF17)[:-1] + b"\x1a"  # ends on the first byte of an escape
        assert d.feed(half) == []
        d.reset()
        assert [f.msg for f in d.feed(record(DF11))] == [DF11]
        assert d.counts["beast_partial_dropped"] == 1
