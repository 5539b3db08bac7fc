"""Serial receivers over pty pairs: a real tty the source opens with pyserial.

The test holds the master side and plays the receiver; the source opens the slave
through a symlink (as a /dev/serial/by-id name is), so the peer can vanish (master
closed: reads fail with EIO, the node goes away) and come back as a new pty with the
symlink re-pointed, which is what a replugged USB adapter looks like.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sources import open_source
from agent.sources.beast import BeastFileSource
from agent.sources.serial_port import SerialSource, describe_path
from tests.conftest import shared_data
from tests.helpers import SourceRunner as Runner

BEAST = "beast/traffic_sample_dump1090.bin"


class Pty:
    """A pty pair; the slave's path is published through a symlink."""

    def __init__(self, link: Path):
        self.master, slave = os.openpty()
        self.slave_path = os.ttyname(slave)
        os.close(slave)  # the source opens it by name
        tmp = link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.slave_path)
        os.replace(tmp, link)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def close(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "usb-FTDI_FT232R_USB_UART_A9BEAST-if00-port0"


@pytest.fixture
def ptys(link: Path) -> Iterator[list[Pty]]:
    made: list[Pty] = []
    yield made
    for p in made:
        p.close()


@pytest.fixture(scope="module")
def beast_bytes() -> bytes:
    return shared_data(BEAST).read_bytes()


@pytest.fixture(scope="module")
def beast_reference() -> list[str]:
    src = BeastFileSource(str(shared_data(BEAST)))
    return [f.hex for f in src.frames(threading.Event())]


def split_points(data: bytes, every: int = 5) -> list[int]:
    """Cut inside every doubled 0x1a (an escape) and every few bytes besides."""
    cuts = {i + 1 for i in range(len(data) - 1) if data[i] == 0x1A and data[i + 1] == 0x1A}
    cuts |= set(range(every, len(data), every))
    return sorted(cuts)


def test_beast_with_escapes_split_across_writes(
    link: Path, ptys: list[Pty], beast_bytes: bytes, beast_reference: list[str]
) -> None:
    ptys.append(Pty(link))
    src = open_source(f"serial://{link}?format=beast")
    assert isinstance(src, SerialSource)
    assert (src.baud, src.rtscts) == (3_000_000, True)
    run = Runner(src)
    run.wait_for(lambda: src.counts["opens"] == 1)

    cuts = split_points(beast_bytes)
    escapes = sum(1 for i in range(len(beast_bytes) - 1) if beast_bytes[i : i + 2] == b"\x1a\x1a")
    assert escapes > 0  # the recording does contain escaped 0x1a bytes
    prev = 0
    for k, cut in enumerate([*cuts, len(beast_bytes)]):
        ptys[0].write(beast_bytes[prev:cut])
        prev = cut
        if k % 50 == 0:
            time.sleep(0.002)  # let the source read partial records now and then
    run.wait_for(lambda: len(run.frames) >= len(beast_reference))
    run.finish()

    assert [f.hex for f in run.frames] == beast_reference
    assert src.counts["beast_resync"] <= 1  # only the start, if the file starts mid-record
    assert src.counts["bytes"] == len(beast_bytes)


def test_avr_with_garbage_lines_and_microadsb_line_ends(
    link: Path, ptys: list[Pty], beast_reference: list[str]
) -> None:
    ptys.append(Pty(link))
    src = SerialSource(str(link), "avr")
    assert (src.baud, src.rtscts) == (115_200, False)
    run = Runner(src)
    run.wait_for(lambda: src.counts["opens"] == 1)

    wanted = beast_reference[:40]
    lines = []
    for i, hexmsg in enumerate(wanted):
        if i % 2:
            lines.append(f"@{i * 1200:012X}{hexmsg};")  # MLAT-timestamped form
        else:
            lines.append(f"*{hexmsg};")
        if i % 10 == 0:
            lines.append("#43-02 OK")  # a microADSB status reply: garbage to us
            lines.append("*8D4840D6;")  # too short
    text = "\n\r".join(lines).encode() + b"\n\r"  # microADSB ends lines with LF CR
    junk = b"\x00\xff\x1a\x1a\x17\n\r"
    mid = text.index(b"\n\r", len(text) // 2) + 2  # binary junk between two lines
    data = junk + text[:mid] + junk + text[mid:]
    for i in range(0, len(data), 7):
        ptys[0].write(data[i : i + 7])
    run.wait_for(lambda: len(run.frames) >= len(wanted))
    run.finish()

    assert [f.hex for f in run.frames] == wanted
    assert src.counts["avr_garbage"] >= 4 + 2
    assert src.counts["avr_bad_length"] == 4
    assert all(f.signal_dbfs is None and f.source == src.name for f in run.frames)


def test_peer_vanishes_and_returns(
    link: Path,
    ptys: list[Pty],
    beast_bytes: bytes,
    beast_reference: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="agent.sources.serial")
    ptys.append(Pty(link))
    src = SerialSource(str(link), "beast", backoff_min=0.05, backoff_max=0.2)
    run = Runner(src)
    run.wait_for(lambda: src.counts["opens"] == 1)
    half = len(beast_bytes) // 2
    ptys[0].write(beast_bytes[:half])
    run.wait_for(lambda: len(run.frames) >= 50)

    ptys[0].close()  # the receiver is unplugged mid-record
    run.wait_for(lambda: src.counts["device_lost"] == 1)
    run.wait_for(lambda: src.counts["open_failed"] >= 3)  # still away: retried quietly
    got_before = len(run.frames)

    ptys.append(Pty(link))  # plugged back in, maybe as another /dev/pts number
    run.wait_for(lambda: src.counts["opens"] == 2)
    ptys[1].write(beast_bytes)
    run.wait_for(lambda: len(run.frames) >= got_before + len(beast_reference))
    run.finish()

    assert [f.hex for f in run.frames[got_before:]] == beast_reference
    messages = [r.getMessage() for r in caplog.records if r.name == "agent.sources.serial"]
    lost = [m for m in messages if "lost" in m]
    failed = [m for m in messages if "cannot open" in m]
    reopened = [m for m in messages if "reopened after" in m]
    assert len(lost) == 1 and failed == [] and len(reopened) == 1  # one line per change
    assert f"-> {ptys[1].slave_path}" in reopened[0]  # the symlink resolved in the log


def test_missing_device_at_start_then_appears(link: Path, ptys: list[Pty]) -> None:
    src = SerialSource(str(link), "avr", backoff_min=0.05, backoff_max=0.1)
    run = Runner(src)
    run.wait_for(lambda: src.counts["open_failed"] >= 2)
    ptys.append(Pty(link))
    run.wait_for(lambda: src.counts["opens"] == 1)
    ptys[0].write(b"*5D4840D6202CC3;\r\n")
    run.wait_for(lambda: len(run.frames) == 1)
    assert run.finish() < 1.0
    assert describe_path(str(link)) == f"{link} -> {ptys[0].slave_path}"


@pytest.mark.parametrize(
    "url",
    [
        "serial:///dev/ttyUSB0?format=sbs",
        "serial:///dev/ttyUSB0?baud=fast",
        "serial:///dev/ttyUSB0?parity=E",
        "serial://dev/ttyUSB0",
    ],
)
def test_bad_urls(url: str) -> None:
    from agent.errors import SourceError

    with pytest.raises(SourceError):
        open_source(url)
