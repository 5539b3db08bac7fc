"""RTL-SDR source: the real pyrtlsdr over a fake librtlsdr serving a real recording.

The fake (tests/fake_librtlsdr/fake_librtlsdr.c, built here with gcc once per session)
exports the librtlsdr API, paces modes1_2400.uc8 at the configured rate through
rtlsdr_read_async, logs every setting and can be unplugged and replugged through
ctypes. Also: the adaptive gain policy with plain numbers, URL parsing, and the one
clear message for every way loading librtlsdr can fail.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import agent.sources.rtlsdr as rtlsdr_mod
from agent.demod import DemodOptions
from agent.errors import SourceError
from agent.frame import Frame
from agent.sources import open_source
from agent.sources.gain import AdaptiveGain, GainPolicy, decide
from agent.sources.iq import IqFileSource
from agent.sources.live_iq import FEED_SAMPLES, LiveIq
from agent.sources.rtlsdr import ENV_LIBRTLSDR, RtlSdrSource, parse_device
from agent.sources.tuner import TunerOptions, parse_tuner_options
from tests import fake_rtlsdr
from tests.conftest import REPO, shared_data
from tests.helpers import LogLines
from tests.helpers import SourceRunner as Runner

RECORDING = "iq/modes1_2400.uc8"
R820T_DB = [g / 10 for g in (0, 9, 14, 27, 37, 77, 87, 125, 144, 157, 166, 197, 207, 229, 254)]
R820T_DB += [g / 10 for g in (280, 297, 328, 338, 364, 372, 386, 402, 421, 434, 439, 445, 480)]
R820T_DB += [49.6]


def _forget_pyrtlsdr() -> None:
    """pyrtlsdr picks its library at import: forget any import and the agent's binding."""
    for mod in [m for m in sys.modules if m == "rtlsdr" or m.startswith("rtlsdr.")]:
        del sys.modules[mod]
    rtlsdr_mod._loaded = None


@pytest.fixture(scope="module")
def fake_lib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The fake built for this module, and pyrtlsdr imported bound to it (in-process).

    Unbound again afterwards, so tests in other modules that look for a real dongle
    (check's) never find this fake, whatever order the tests run in.
    """
    lib = fake_rtlsdr.build(tmp_path_factory.mktemp("fake_librtlsdr"))
    saved = os.environ.get(ENV_LIBRTLSDR)
    os.environ[ENV_LIBRTLSDR] = str(lib)
    _forget_pyrtlsdr()
    rtlsdr = rtlsdr_mod.load_pyrtlsdr()
    assert rtlsdr.librtlsdr._name == str(lib)
    yield lib
    _forget_pyrtlsdr()
    if saved is None:
        os.environ.pop(ENV_LIBRTLSDR, None)
    else:
        os.environ[ENV_LIBRTLSDR] = saved


@pytest.fixture
def dongle(fake_lib: Path) -> Iterator[fake_rtlsdr.FakeDongle]:
    fake = fake_rtlsdr.FakeDongle(fake_lib)
    fake.configure(shared_data(RECORDING), speed=1.0)
    fake.set_serial("00000001")
    yield fake
    fake.plug(True)


@pytest.fixture(scope="module")
def reference() -> list[str]:
    """What `adsb-agent demod --rate 2.4e6` prints for the recording (its IqFileSource)."""
    src = IqFileSource(str(shared_data(RECORDING)), rate=2.4e6, fmt="uc8")
    return [f.hex for f in src.frames(threading.Event())]


def settings(log: list[str], name: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in log if line.startswith(name + " ")]


def test_fake_exports_everything_pyrtlsdr_binds(fake_lib: Path) -> None:
    import ctypes

    binding = sys.modules["rtlsdr.librtlsdr"]  # pyrtlsdr's ctypes declarations
    assert binding.__file__ is not None
    names = set(re.findall(r"librtlsdr\.(rtlsdr_\w+)", Path(binding.__file__).read_text()))
    assert len(names) > 30
    lib = ctypes.CDLL(str(fake_lib))
    assert sorted(n for n in names if not hasattr(lib, n)) == []


def test_frames_equal_demod_of_the_file(dongle: fake_rtlsdr.FakeDongle, reference: list[str]):
    t_start = time.time()
    src = open_source("rtlsdr://?rate=2.4e6&gain=40&ppm=-3&biastee=1")
    run = Runner(src)
    run.wait_for(lambda: len(run.frames) >= len(reference))
    time.sleep(0.3)  # nothing more may come: after the recording the fake sends silence
    stopped_in = run.finish()

    assert [f.hex for f in run.frames] == reference
    assert len(reference) > 300
    times = [f.rx_time for f in run.frames]
    assert times == sorted(times)
    assert t_start - 1 < times[0] and times[-1] < time.time()
    assert {f.source for f in run.frames} == {src.name}
    assert stopped_in < 1.5

    log = dongle.log()
    assert settings(log, "set_sample_rate")[-1] == "2400000"
    assert settings(log, "set_center_freq")[-1] == "1090000000"
    assert settings(log, "set_freq_correction") == ["-3"]
    assert settings(log, "set_tuner_gain_mode")[-1] == "1"
    assert settings(log, "set_tuner_gain") == ["402"]  # 40 dB snapped to R820T's 40.2
    assert settings(log, "set_bias_tee") == ["1"]
    assert log[-3:] == ["cancel_async", "read_async_end cancel", "close"]
    assert src.counts["buffers_dropped"] == 0
    assert src.counts["opens"] == 1


@pytest.mark.parametrize(
    ("query", "mode", "gains", "bias"),
    [
        ("", "0", [], []),  # auto: tuner AGC, bias-tee left alone
        ("?gain=adaptive&biastee=0", "1", ["496"], ["0"]),  # adaptive starts at the top
        ("?gain=3.5", "1", ["37"], []),  # snapped to 3.7
    ],
)
def test_gain_modes_reach_the_device(
    dongle: fake_rtlsdr.FakeDongle, query: str, mode: str, gains: list[str], bias: list[str]
) -> None:
    src = open_source("rtlsdr://0" + query)
    run = Runner(src)
    run.wait_for(lambda: src.counts["buffers"] >= 1)
    run.finish()
    log = dongle.log()
    after_defaults = log[log.index("set_sample_rate 2400000") :]
    assert settings(after_defaults, "set_tuner_gain_mode") == [mode]
    assert settings(after_defaults, "set_tuner_gain") == gains
    assert settings(log, "set_bias_tee") == bias
    assert settings(log, "set_freq_correction") == []  # ppm 0: not set (librtlsdr says -2)


def test_device_chosen_by_serial(dongle: fake_rtlsdr.FakeDongle) -> None:
    dongle.set_serial("ADSB-ROOF")
    src = RtlSdrSource("ADSB-ROOF", backoff_min=0.05, backoff_max=0.1)
    run = Runner(src)
    run.wait_for(lambda: src.counts["buffers"] >= 1)
    run.finish()
    assert src.counts["opens"] == 1

    other = RtlSdrSource("ADSB-MAST", backoff_min=0.05, backoff_max=0.1)
    run = Runner(other)
    run.wait_for(lambda: other.counts["open_failed"] >= 3)
    assert run.finish() < 1.0
    assert other.counts["opens"] == 0


def test_unplug_and_replug_recovers_without_restart(
    dongle: fake_rtlsdr.FakeDongle, reference: list[str]
) -> None:
    src = RtlSdrSource(None, TunerOptions(gain=49.6), backoff_min=0.05, backoff_max=0.2)
    run = Runner(src)
    run.wait_for(lambda: len(run.frames) >= len(reference))
    first = len(run.frames)

    dongle.plug(False)
    run.wait_for(lambda: src.counts["device_lost"] == 1)
    run.wait_for(lambda: src.counts["open_failed"] >= 2)  # keeps trying while away
    assert len(run.frames) == first

    dongle.plug(True)  # back: the fake serves the recording again from its start
    run.wait_for(lambda: len(run.frames) >= first + len(reference) - 10)
    run.finish()

    assert src.counts["opens"] == 2
    assert run.thread.is_alive() is False and run.error is None
    second = [f.hex for f in run.frames[first:]]
    assert set(second) <= set(reference)
    log = dongle.log()
    assert "read_async_end lost" in log  # the async reader simply returned
    assert settings(log, "set_tuner_gain") == ["496", "496"]  # settings applied again
    times = [f.rx_time for f in run.frames]
    assert times == sorted(times)


def test_while_the_dongle_is_away_empty_batches_keep_the_pipeline_ticking(
    dongle: fake_rtlsdr.FakeDongle,
) -> None:
    """The pipeline iterates a lone dongle in its own thread and ends silent tracks
    between batches: a reopen's backoff (here 20-40 s) must not hold those up."""
    dongle.plug(False)
    stop = threading.Event()
    src = RtlSdrSource(None, backoff_min=40.0, backoff_max=40.0)
    batches = src.batches(stop)
    t0 = time.monotonic()
    heard = [next(batches) for _ in range(4)]
    assert heard == [[], [], [], []]
    assert time.monotonic() - t0 < 10.0  # every POLL_S, not after the backoff
    assert src.counts["open_failed"] == 1  # still waiting out the first backoff
    stop.set()
    assert list(batches) == []  # and a stop ends the wait at once


def test_slow_consumer_drops_are_counted(dongle: fake_rtlsdr.FakeDongle) -> None:
    dongle.set_speed(10)  # 24 MS/s: more than the demodulator and this consumer keep up with
    buf = 65536
    src = RtlSdrSource(None, buf_bytes=buf, queue_buffers=2)
    run = Runner(src, per_frame=lambda: time.sleep(0.005))
    run.wait_for(lambda: src.counts["buffers_dropped"] >= 20 and src.counts["samples"] > 0)
    run.finish()

    c = src.counts
    # Every buffer delivered was counted (one may slip past pyrtlsdr's cancel flag).
    assert 0 <= dongle.callbacks() - c["buffers"] <= 1
    consumed = c["samples"] // (buf // 2)
    assert consumed >= 1
    assert c["samples_dropped"] == c["buffers_dropped"] * buf // 2
    # Each buffer was demodulated, dropped, gathered into the next block, or still
    # queued / in hand at stop.
    gathered = src.live.gathered_samples // (buf // 2)
    accounted = consumed + c["buffers_dropped"] + gathered
    assert c["buffers"] - src.queue_buffers - 1 <= accounted <= c["buffers"]


def test_sync_read_raises_when_unplugged(dongle: fake_rtlsdr.FakeDongle) -> None:
    """The fake behaves as librtlsdr does for pyrtlsdr's synchronous reads."""
    rtlsdr = rtlsdr_mod.load_pyrtlsdr()
    sdr = rtlsdr.RtlSdr(0)
    try:
        data = bytes(sdr.read_bytes(4096))
        assert data == shared_data(RECORDING).read_bytes()[:4096]
        dongle.plug(False)
        with pytest.raises(OSError) as err:
            sdr.read_bytes(4096)
        assert err.value.errno == -4  # LIBUSB_ERROR_NO_DEVICE
    finally:
        sdr.close()


def test_every_loading_failure_is_one_message(fake_lib: Path, tmp_path: Path) -> None:
    old = fake_rtlsdr.build(tmp_path, omit_dithering=True)
    script = (
        "import json, os, sys\n"
        "from agent.errors import SourceError\n"
        "from agent.sources import open_source\n"
        "out = {}\n"
        "def attempt(case):\n"
        "    try:\n"
        "        open_source('rtlsdr://')\n"
        "        out[case] = 'opened'\n"
        "    except SourceError as err:\n"
        "        out[case] = str(err)\n"
        f"os.environ['{ENV_LIBRTLSDR}'] = '/nonexistent/librtlsdr.so'\n"
        "attempt('oserror')\n"
        f"os.environ['{ENV_LIBRTLSDR}'] = {str(old)!r}\n"
        "attempt('attributeerror')\n"
        "sys.modules['rtlsdr'] = None\n"
        "attempt('importerror')\n"
        "print(json.dumps(out))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != ENV_LIBRTLSDR}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "/nonexistent/librtlsdr.so" in out["oserror"]
    assert "too old" in out["attributeerror"] and "rtlsdr_set_dithering" in out["attributeerror"]
    assert "pyrtlsdr is not installed" in out["importerror"]
    for message in out.values():
        assert "pip install 'adsb-agent[rtlsdr]'" in message
        assert "apt-get install librtlsdr0" in message


class TestUrls:
    def test_device_index_or_serial(self) -> None:
        assert parse_device("") is None
        assert parse_device("1") == 1
        assert parse_device("00000001") == "00000001"  # the factory serial, not index 1
        assert parse_device("ROOF") == "ROOF"

    def test_options(self) -> None:
        o = parse_tuner_options("u", {"rate": "2.0e6", "gain": "adaptive", "ppm": "-12"})
        assert o == TunerOptions(rate=2.0e6, gain="adaptive", ppm=-12, biastee=None)
        assert parse_tuner_options("u", {"gain": "42.1", "biastee": "1"}).gain == 42.1
        demod = parse_tuner_options("u", {"repair": "3", "retry": "1"}).demod
        assert demod == DemodOptions(repair_bits=3, retry_weak=True)

    @pytest.mark.parametrize(
        "query",
        ["gain=loud", "gain=99", "ppm=1.5", "rate=1e6", "biastee=2", "freq=978e6", "repair=4"],
    )
    def test_bad_options_are_refused(self, query: str) -> None:
        with pytest.raises(SourceError):
            open_source(f"rtlsdr://0?{query}")


class TestAdaptiveGain:
    """The pure policy, with numbers."""

    P = GainPolicy(strong_low=0.01, strong_high=0.05, noise_max_dbfs=-24, min_frames=100)

    @pytest.mark.parametrize(
        ("strong", "frames", "noise", "step"),
        [
            (10, 100, -30.0, -1),  # 10 % strong: too loud
            (3, 100, -30.0, 0),  # 3 %: in band
            (0, 500, -30.0, +1),  # nothing strong, noise low: climb
            (0, 500, -25.0, 0),  # nothing strong but noise within the 3 dB margin
            (0, 500, -20.0, -1),  # noise too high whatever the frames
            (2, 10, -30.0, 0),  # too few frames to trust a share; one was strong: hold
            (0, 10, -30.0, +1),  # quiet band, quiet noise: climb
            (0, 0, None, +1),  # nothing known at all: climb
        ],
    )
    def test_decide(self, strong: int, frames: int, noise: float | None, step: int) -> None:
        assert decide(strong, frames, noise, self.P) == step

    def test_walks_down_until_in_band(self) -> None:
        gain = AdaptiveGain(R820T_DB, self.P)
        assert gain.gain_db == 49.6
        t = 0.0
        steps = []
        # A strip with loud traffic: the share of strong frames falls 1 point per step.
        for _ in range(20):
            share = max(0.0, 0.12 - 0.01 * (len(R820T_DB) - 1 - gain.index))
            strong = round(200 * share)
            levels = [-1.0] * strong + [-20.0] * (200 - strong)
            for _ in range(4):  # 4 blocks of 5 s per 20 s window
                t += 5.0
                step = gain.observe(levels[:50], -30.0, t)
                levels = levels[50:] + levels[:50]
                if step is not None:
                    steps.append(step)
        assert [s.gain_db for s in steps] == [48.0, 44.5, 43.9, 43.4, 42.1, 40.2, 38.6]
        assert all("too loud" in s.reason for s in steps)
        assert gain.gain_db == 38.6  # 5 % strong: inside the band, held since

    def test_window_and_limits(self) -> None:
        gain = AdaptiveGain([0.0, 10.0, 20.0], self.P, start_db=19.0)
        assert gain.gain_db == 20.0
        assert gain.observe([], -40.0, 0.0) is None
        assert gain.observe([], -40.0, 19.9) is None  # the window is not over
        assert gain.observe([], -40.0, 20.0) is None  # wants up, already at the top
        step = gain.observe([None, -10.0], -10.0, 40.0)  # noise far too high
        assert step is not None and step.gain_db == 10.0 and step.index == 1
        with pytest.raises(ValueError):
            AdaptiveGain([])
        with pytest.raises(ValueError):
            GainPolicy(strong_low=0.1, strong_high=0.05)


def test_live_samples_are_demodulated_in_large_blocks_and_kept_across_a_restart(
    tmp_path: Path,
) -> None:
    # librtlsdr hands over 128k samples at a time, rtl_tcp's recv() a few KiB: the
    # demodulator gets FEED_SAMPLES at once (less CPU), and what is gathered when the
    # stream restarts is demodulated, not dropped.
    raw = shared_data(RECORDING).read_bytes() * 2  # more than FEED_SAMPLES
    (tmp_path / "twice.uc8").write_bytes(raw)
    whole = IqFileSource(str(tmp_path / "twice.uc8"), rate=2.4e6, fmt="uc8")
    reference = [f.hex for f in whole.frames(threading.Event())]
    live = LiveIq(2.4e6, "live", clock=time.time)
    blocks: list[int] = []
    process_raw = live.demod.process_raw

    def counting(data: memoryview, fmt: str = "uc8") -> list[Frame]:
        blocks.append(len(data) // 2)
        return process_raw(data, fmt)

    live.demod.process_raw = counting  # type: ignore[method-assign]
    frames: list[Frame] = []
    for i in range(0, len(raw), 16384):
        frames += live.feed(raw[i : i + 16384], time.time())[0]
    assert blocks == [FEED_SAMPLES] * (len(raw) // 2 // FEED_SAMPLES)
    live.restart()  # e.g. the dongle was replugged
    assert blocks[-1] == len(raw) // 2 % FEED_SAMPLES
    frames += live.feed(b"", time.time())[0]
    got = [f.hex for f in frames]
    # All but the replies the demodulator holds back at the very end (it is not flushed:
    # the next stream's samples follow).
    assert got == reference[: len(got)]
    assert len(got) >= len(reference) - 2


# -- open failures in words (issue 14) ---------------------------------------------------


def _open_failure(src: RtlSdrSource) -> str:
    said = LogLines()
    source_log = logging.getLogger("agent.sources.rtlsdr")
    source_log.addHandler(said)
    try:
        run = Runner(src)
        run.wait_for(lambda: src.counts["open_failed"] >= 2)
        run.finish()
    finally:
        source_log.removeHandler(said)
    assert src.counts["opens"] == 0
    lines = [line for line in said.lines if "cannot open" in line]
    assert len(lines) == 1  # logged once, not at every retry
    assert "LIBUSB_ERROR" not in lines[0]
    return lines[0]


def test_no_dongle_says_so(dongle: fake_rtlsdr.FakeDongle) -> None:
    dongle.plug(False)
    line = _open_failure(RtlSdrSource(None, backoff_min=0.05, backoff_max=0.1))
    assert "no RTL-SDR dongle found" in line and "lsusb" in line


def test_no_dongle_with_a_serial_says_so(dongle: fake_rtlsdr.FakeDongle) -> None:
    # librtlsdr answers -2 (LIBUSB_ERROR_INVALID_PARAM to pyrtlsdr): no devices at all.
    dongle.plug(False)
    line = _open_failure(RtlSdrSource("ADSB-ROOF", backoff_min=0.05, backoff_max=0.1))
    assert "no RTL-SDR dongle found (looking for serial ADSB-ROOF)" in line


def test_another_serial_lists_what_is_there(dongle: fake_rtlsdr.FakeDongle) -> None:
    line = _open_failure(RtlSdrSource("ADSB-MAST", backoff_min=0.05, backoff_max=0.1))
    assert "no RTL-SDR dongle with serial ADSB-MAST; found 00000001" in line


def test_an_index_beyond_the_dongles_says_how_many(dongle: fake_rtlsdr.FakeDongle) -> None:
    line = _open_failure(RtlSdrSource(1, backoff_min=0.05, backoff_max=0.1))
    assert "no RTL-SDR dongle at index 1: 1 found" in line


@pytest.mark.parametrize(
    ("code", "words"),
    [(-6, "device busy: the DVB driver holds it"), (-3, "permission denied: add a udev rule")],
)
def test_busy_or_locked_dongle_says_what_to_do(
    dongle: fake_rtlsdr.FakeDongle, code: int, words: str
) -> None:
    dongle.fail_open(code)
    try:
        line = _open_failure(RtlSdrSource(None, backoff_min=0.05, backoff_max=0.1))
    finally:
        dongle.fail_open(0)
    assert words in line
