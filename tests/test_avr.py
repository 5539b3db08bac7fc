"""AVR text decoding: line endings, timestamps, bad lines, and the real recording as AVR."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from agent.frame import Frame
from agent.sources import open_file_source
from agent.sources.avr import MAX_LINE, AvrDecoder, AvrFileSource
from agent.sources.beast import BeastDecoder
from agent.sources.stream import TICKS_PER_SECOND, signal_dbfs
from tests.conftest import shared_data

# Real frames: the first DF17 of the Beast recording (48520A) and a DF11 from the
# readsb reference output for modes1 (4D2023).
DF17 = "8D48520AF82300060049B898BA5F"
DF11 = "5D4D20237A55AF"


def _decode(data: bytes, start_time: float | None = 0.0) -> tuple[list[Frame], Counter[str]]:
    d = AvrDecoder("avr", start_time=start_time)
    return d.feed(data) + d.finish(), d.counts


def _bytewise(data: bytes) -> tuple[list[Frame], Counter[str]]:
    d = AvrDecoder("avr", start_time=0.0)
    out: list[Frame] = []
    for i in range(len(data)):
        out += d.feed(data[i : i + 1])
    return out + d.finish(), d.counts


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\n\r"], ids=["lf", "crlf", "lfcr"])
def test_line_endings(eol):
    data = f"*{DF17};".encode() + eol + f"*{DF11};".encode() + eol
    for frames, counts in (_decode(data), _bytewise(data)):
        assert [f.hex for f in frames] == [DF17, DF11]
        assert counts == Counter(frames=2)
        assert frames[0].signal_dbfs is None and frames[0].ticks_12mhz is None


def test_mixed_line_endings_lower_case_and_trailing_fields():
    data = f"*{DF17.lower()};\r\n\n*{DF11};junk after the frame\n\r".encode()
    frames, counts = _decode(data)
    assert [f.hex for f in frames] == [DF17, DF11]
    assert counts == Counter(frames=2)


def test_timestamps_set_ticks_and_replay_time():
    t0 = 0x000015A8877E
    later = t0 + 3 * TICKS_PER_SECOND
    data = f"@{t0:012X}{DF17};\n%{later:012X}{DF11};\n*{DF11};\n".encode()
    frames, counts = _decode(data, start_time=500.0)
    assert [f.ticks_12mhz for f in frames] == [t0, later, None]
    assert [f.rx_time for f in frames] == [500.0, 503.0, 503.0]
    assert counts == Counter(frames=3)


def test_signal_level_variant():
    frames, _ = _decode(f"<000000001000FF{DF17};\n<000000002000{DF11};\n".encode())
    assert [f.hex for f in frames] == [DF17]
    assert frames[0].signal_dbfs == signal_dbfs(0xFF) == 0.0
    assert frames[0].ticks_12mhz == 0x1000


def test_colon_prefix_and_live_clock():
    d = AvrDecoder("live", clock=lambda: 77.0)
    [frame] = d.feed(f":{DF11};\n".encode())
    assert frame.rx_time == 77.0 and frame.source == "live"


def test_bad_lines_are_counted_and_skipped():
    lines = [
        f"*{DF17[:-1]}G;",  # bad hex
        f"*{DF17} ;",  # space inside: bad hex
        f"*{DF17}00;",  # 30 digits
        f"*{DF11[:-1]};",  # 13 digits
        f"@{DF17};",  # '@' without its 12 tick digits
        "*7700;",  # Mode A/C
        "hello",  # garbage
        f"*{DF17}",  # no ';'
        f"*{DF17[:14]};",  # DF17 in a short frame
        f"*{DF11}{DF11};",  # DF11 in a long frame
        f"*{DF11};",  # good
    ]
    frames, counts = _decode(("\n".join(lines) + "\n").encode())
    assert [f.hex for f in frames] == [DF11]
    assert counts == Counter(
        avr_bad_hex=2,
        avr_bad_length=3,
        mode_ac=1,
        avr_garbage=2,
        avr_df_length_mismatch=2,
        frames=1,
    )


def test_overlong_line_is_dropped_and_the_next_one_read():
    data = b"*" + b"A" * (3 * MAX_LINE) + f";\n*{DF11};\n".encode()
    for frames, counts in (_decode(data), _bytewise(data)):
        assert [f.hex for f in frames] == [DF11]
        assert counts == Counter(avr_overlong=1, frames=1)


def test_last_line_without_line_end_counts_at_eof():
    frames, _ = _decode(f"*{DF17};\n*{DF11};".encode())
    assert [f.hex for f in frames] == [DF17, DF11]


def test_reset_drops_an_unfinished_line():
    d = AvrDecoder(start_time=0.0)
    assert d.feed(b"*8D48520A") == []
    d.reset()
    assert [f.hex for f in d.feed(f"*{DF11};\n".encode())] == [DF11]
    assert d.counts["avr_partial_dropped"] == 1


def test_random_bytes_never_raise():
    rng = random.Random(7)
    alphabet = b"*@%<:;\r\n0123456789ABCDEFabcdefXYZ \x00\xff"
    d = AvrDecoder(start_time=0.0)
    for _ in range(300):
        chunk = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        for frame in d.feed(chunk):
            assert len(frame.msg) in (7, 14)
    d.finish()


def _recording_as_avr() -> tuple[list[Frame], bytes]:
    beast = BeastDecoder("beast", start_time=0.0)
    frames = beast.feed(shared_data("beast/traffic_sample_dump1090.bin").read_bytes())
    text = "".join(f"@{f.ticks_12mhz:012X}{f.hex};\r\n" for f in frames)
    return frames, text.encode()


def test_real_recording_as_avr_matches_the_beast_decoding():
    beast_frames, text = _recording_as_avr()
    frames, counts = _bytewise(text)
    assert len(frames) == 239 and counts == Counter(frames=239)
    assert [(f.msg, f.ticks_12mhz) for f in frames] == [
        (f.msg, f.ticks_12mhz) for f in beast_frames
    ]
    assert [f.rx_time for f in frames] == pytest.approx([f.rx_time for f in beast_frames])


def test_file_source(tmp_path):
    beast_frames, text = _recording_as_avr()
    path = tmp_path / "sample.avr"
    path.write_bytes(text)
    src = open_file_source(str(path), "avr", start_time=10.0)
    assert isinstance(src, AvrFileSource)
    frames = list(src.frames(threading.Event()))
    assert [f.msg for f in frames] == [f.msg for f in beast_frames]
    assert frames[0].rx_time == 10.0 and src.counts["frames"] == 239
