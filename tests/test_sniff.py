"""Bad input is said (issue 13): a recording read in the wrong format is named, and a
command that decoded nothing exits 1 instead of 0 with an empty output."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.errors import EXIT_RUNTIME
from agent.sources.sniff import SNIFF_BYTES, FormatCheck, guess_format
from tests.conftest import REPO, shared_data
from tests.test_cli import agent

BEAST = "beast/traffic_sample_dump1090.bin"
IQ = "iq/modes1.bin"
NOTHING = b"nothing decoded from"


def _avr_text() -> bytes:
    from agent.sources.beast import BeastDecoder

    frames = BeastDecoder(start_time=0.0).feed(shared_data(BEAST).read_bytes())
    return "".join(f"@{f.ticks_12mhz:012X}{f.hex};\n" for f in frames).encode()


def _sc16() -> bytes:
    u = np.frombuffer(shared_data(IQ).read_bytes()[:SNIFF_BYTES], dtype=np.uint8)
    return (u.astype(np.int32) * 256 - 32640).astype("<i2").tobytes()


class TestGuess:
    def test_real_recordings(self):
        assert guess_format(shared_data(BEAST).read_bytes()[:SNIFF_BYTES]) == "beast"
        for iq in ("iq/modes1.bin", "iq/modes1_2400.uc8", "iq/phwl_x-1.uc8"):
            assert guess_format(shared_data(iq).read_bytes()[:SNIFF_BYTES]) == "uc8"
        assert guess_format(_sc16()) == "sc16"
        assert guess_format(_avr_text()) == "avr"
        assert guess_format(b"*8D4840D6202CC371C32CE0576098;\r\n") == "avr"

    def test_no_idea(self):
        assert guess_format(b"") is None
        assert guess_format(shared_data("messages/pms_sample_data_adsb.csv").read_bytes()) is None
        assert guess_format(b"\x01\x02\x03") is None  # too short to be samples

    def test_noise_is_not_beast(self):
        assert guess_format(os.urandom(SNIFF_BYTES)) == "uc8"


class TestFormatCheck:
    def test_warns_once_after_the_bounded_read(self, caplog):
        check = FormatCheck("f.bin", "avr")
        head = shared_data(BEAST).read_bytes()
        with caplog.at_level(logging.WARNING):
            check.feed(head * (SNIFF_BYTES // len(head)), 0)
            assert not caplog.records  # not yet 64 KiB
            check.feed(head, 0)
            check.feed(head, 0)
            check.finish(0)
        assert [r.getMessage() for r in caplog.records] == [
            f"f.bin: no valid avr record in the first {SNIFF_BYTES} bytes; the bytes look "
            "like Beast (0x1a records): try format beast"
        ]

    def test_quiet_when_records_came(self, caplog):
        check = FormatCheck("f.bin", "beast")
        with caplog.at_level(logging.WARNING):
            check.feed(b"\x00" * SNIFF_BYTES, 1)
        assert not caplog.records and not check.warned

    def test_damaged_beast(self, caplog):
        check = FormatCheck("f.bin", "beast")
        with caplog.at_level(logging.WARNING):
            check.feed(b"\x1a\x32\x00\x01" * 100, 0)
            check.finish(0)
        assert "look like Beast (0x1a records) but none is whole: damaged?" in caplog.text

    def test_iq_without_frames_is_a_quiet_sky_unless_the_bytes_say_otherwise(self, caplog):
        with caplog.at_level(logging.WARNING):
            FormatCheck("quiet.uc8", "uc8").feed(os.urandom(SNIFF_BYTES), 0)
            assert not caplog.records
            FormatCheck("x.sc16", "uc8").feed(_sc16(), 0)
        assert "look like IQ samples (sc16): try format sc16" in caplog.text


def _replay(fmt: str, path: Path | str, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return agent("replay", "--all", "--start-time", "0", "--format", fmt, *extra, str(path))


class TestWrongFormatOnTheCommandLine:
    def test_beast_replayed_as_avr(self):
        run = _replay("avr", shared_data(BEAST))
        assert run.returncode == EXIT_RUNTIME and run.stdout == b""
        assert b"look like Beast (0x1a records): try format beast" in run.stderr
        assert NOTHING + b" " + str(shared_data(BEAST)).encode() + b" read as avr" in run.stderr

    def test_iq_replayed_as_beast(self):
        run = _replay("beast", shared_data(IQ), "--rate", "2.0e6")
        assert run.returncode == EXIT_RUNTIME
        assert b"look like IQ samples (uc8): try format uc8" in run.stderr
        assert NOTHING in run.stderr

    def test_beast_replayed_as_iq(self):
        run = _replay("uc8", shared_data(BEAST))
        assert run.returncode == EXIT_RUNTIME
        assert b"no valid uc8 frame" in run.stderr and b"try format beast" in run.stderr

    def test_avr_replayed_as_beast(self, tmp_path: Path):
        path = tmp_path / "log.avr"
        path.write_bytes(_avr_text())
        run = _replay("beast", path)
        assert run.returncode == EXIT_RUNTIME
        assert b"try format avr" in run.stderr

    def test_demod_of_a_beast_file(self):
        run = agent("demod", str(shared_data(BEAST)))
        assert run.returncode == EXIT_RUNTIME and run.stdout == b""
        assert b"try format beast" in run.stderr and NOTHING in run.stderr

    def test_an_empty_file(self, tmp_path: Path):
        path = tmp_path / "empty.bin"
        path.write_bytes(b"")
        run = _replay("beast", path)
        assert run.returncode == EXIT_RUNTIME and NOTHING in run.stderr

    @pytest.mark.parametrize(("fmt", "rel"), [("beast", BEAST), ("uc8", IQ)])
    def test_right_format_says_nothing_of_the_kind(self, fmt: str, rel: str):
        run = _replay(fmt, shared_data(rel), "--rate", "2.0e6")
        assert run.returncode == 0, run.stderr
        assert b"no valid" not in run.stderr and NOTHING not in run.stderr

    def test_the_warning_comes_after_a_bounded_read_not_at_the_end(self):
        """IQ piped in as AVR: the warning is on stderr while the pipe is still open."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "replay", "--start-time", "0", "--format", "avr", "-"],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert proc.stdin is not None and proc.stderr is not None
        try:
            proc.stdin.write(shared_data(IQ).read_bytes()[: 2 * SNIFF_BYTES])
            proc.stdin.flush()
            for line in proc.stderr:  # blocks until a line: no fixed sleep
                if b"no valid avr record" in line:
                    break
            else:
                pytest.fail("no warning before the pipe closed")
            assert proc.poll() is None, "still reading: the warning did not wait for EOF"
            assert b"look like IQ samples (uc8): try format uc8" in line
        finally:
            proc.stdin.close()
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == EXIT_RUNTIME
        assert NOTHING in rest
