"""IqFileSource: UC8/SC16 files and standard input, truncated and garbage input."""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from agent.errors import SourceError
from agent.sources import open_file_source
from agent.sources.iq import IqFileSource
from tests.conftest import shared_data

MODES1_24 = "iq/modes1_2400.uc8"


def _hexes(src: IqFileSource) -> list[tuple[str, float]]:
    return [(f.hex, f.rx_time) for f in src.frames(threading.Event())]


@pytest.fixture(scope="module")
def modes1_uc8() -> bytes:
    return shared_data(MODES1_24).read_bytes()


@pytest.fixture(scope="module")
def modes1_frames() -> list[tuple[str, float]]:
    return _hexes(IqFileSource(str(shared_data(MODES1_24)), rate=2.4e6))


def test_uc8_file_yields_timed_frames(modes1_frames: list[tuple[str, float]]) -> None:
    assert len(modes1_frames) >= 284
    assert 0.0 <= modes1_frames[0][1] < modes1_frames[-1][1] < 0.2  # a 0.178 s capture


def test_start_time_offsets_receive_times(modes1_frames: list[tuple[str, float]]) -> None:
    src = IqFileSource(str(shared_data(MODES1_24)), rate=2.4e6, start_time=1000.0)
    shifted = _hexes(src)
    assert [h for h, _ in shifted] == [h for h, _ in modes1_frames]
    assert shifted[0][1] == pytest.approx(1000.0 + modes1_frames[0][1])


def test_sc16_of_the_same_recording_gives_the_same_frames(
    tmp_path: Path, modes1_uc8: bytes, modes1_frames: list[tuple[str, float]]
) -> None:
    # (x - 127.5) * 256 is an exact int16 for every byte: the same signal in SC16.
    u = np.frombuffer(modes1_uc8, dtype=np.uint8).astype(np.int32)
    sc16 = (u * 256 - 32640).astype("<i2").tobytes()
    path = tmp_path / "modes1.sc16"
    path.write_bytes(sc16)
    src = IqFileSource(str(path), rate=2.4e6, fmt="sc16")
    assert [h for h, _ in _hexes(src)] == [h for h, _ in modes1_frames]


def test_sc16_at_2000_gives_the_same_frames_through_the_iq_path(tmp_path: Path) -> None:
    # At 2.0 MS/s the demodulator also reads the complex samples (coherent retry).
    uc8 = shared_data("iq/modes1.bin").read_bytes()
    u = np.frombuffer(uc8, dtype=np.uint8).astype(np.int32)
    path = tmp_path / "modes1_2000.sc16"
    path.write_bytes((u * 256 - 32640).astype("<i2").tobytes())
    as_uc8 = [h for h, _ in _hexes(IqFileSource(str(shared_data("iq/modes1.bin")), rate=2.0e6))]
    as_sc16 = [h for h, _ in _hexes(IqFileSource(str(path), rate=2.0e6, fmt="sc16"))]
    assert as_sc16 == as_uc8
    assert len(as_uc8) >= 284


def test_small_odd_blocks_give_the_same_frames(modes1_frames: list[tuple[str, float]]) -> None:
    src = IqFileSource(str(shared_data(MODES1_24)), rate=2.4e6, block_samples=12347)
    assert _hexes(src) == modes1_frames


def test_stdin_pipe_gives_the_same_frames(
    monkeypatch: pytest.MonkeyPatch, modes1_uc8: bytes, modes1_frames: list[tuple[str, float]]
) -> None:
    fake = io.TextIOWrapper(io.BytesIO(modes1_uc8))
    monkeypatch.setattr("sys.stdin", fake)
    src = open_file_source("-", "uc8", 2.4e6)
    assert _hexes(src) == modes1_frames  # type: ignore[arg-type]


def test_truncated_uc8_counts_the_odd_byte(tmp_path: Path, modes1_uc8: bytes) -> None:
    path = tmp_path / "cut.uc8"
    path.write_bytes(modes1_uc8[:200001])  # odd: the last I has no Q
    src = IqFileSource(str(path), rate=2.4e6)
    frames = list(src.frames(threading.Event()))
    assert src.counts["truncated_bytes"] == 1
    assert src.counts["samples"] == 100000
    assert frames, "the whole samples before the cut are still demodulated"


def test_truncated_sc16_counts_the_partial_sample(tmp_path: Path) -> None:
    path = tmp_path / "cut.sc16"
    path.write_bytes(bytes(4 * 1000 + 3))
    src = IqFileSource(str(path), rate=2.0e6, fmt="sc16")
    assert list(src.frames(threading.Event())) == []
    assert src.counts["truncated_bytes"] == 3
    assert src.counts["samples"] == 1000


@pytest.mark.parametrize("fmt,rate", [("uc8", 2.4e6), ("sc16", 2.0e6)])
def test_random_bytes_do_not_crash(tmp_path: Path, fmt: str, rate: float) -> None:
    rng = np.random.default_rng(7)
    path = tmp_path / "garbage.bin"
    path.write_bytes(rng.integers(0, 256, 1_000_001, dtype=np.uint8).tobytes())
    src = IqFileSource(str(path), rate=rate, fmt=fmt, block_samples=65536)
    frames = list(src.frames(threading.Event()))
    assert src.counts["truncated_bytes"] == 1  # 1_000_001 bytes: one past a whole sample
    # Whatever comes out must still pass the CRC gate (a repaired phantom is possible
    # in principle, not a crash); in practice random bytes give none.
    assert len(frames) <= 1


def test_empty_file_gives_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.uc8"
    path.write_bytes(b"")
    src = IqFileSource(str(path))
    assert list(src.frames(threading.Event())) == []
    assert src.counts["truncated_bytes"] == 0


def test_stop_event_ends_the_replay_early(modes1_frames: list[tuple[str, float]]) -> None:
    stop = threading.Event()
    src = IqFileSource(str(shared_data(MODES1_24)), rate=2.4e6, block_samples=4096)
    got = []
    for frame in src.frames(stop):
        got.append(frame)
        stop.set()
    assert 1 <= len(got) < len(modes1_frames)


def test_bad_arguments_raise_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        IqFileSource(str(tmp_path / "missing.uc8"))
    path = tmp_path / "x.uc8"
    path.write_bytes(b"")
    with pytest.raises(SourceError):
        IqFileSource(str(path), fmt="cs8")
    with pytest.raises(SourceError):
        IqFileSource(str(path), rate=1.0e6)


def test_beast_bytes_read_as_iq_are_named(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        src = IqFileSource(str(shared_data("beast/traffic_sample_dump1090.bin")), rate=2.4e6)
        assert _hexes(src) == []
    assert "no valid uc8 frame" in caplog.text and "try format beast" in caplog.text


def test_a_real_recording_is_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert _hexes(IqFileSource(str(shared_data(MODES1_24)), rate=2.4e6))
    assert "no valid" not in caplog.text
