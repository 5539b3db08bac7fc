"""No dongle, a busy dongle, a locked one: the log and the status say so in words."""

from __future__ import annotations

import logging

import pytest

from agent.health import AMBER, RED, HealthJudge, Reading
from agent.sources.rtlsdr import RtlSdrSource
from tests import fake_rtlsdr, test_rtlsdr
from tests.helpers import SourceRunner as Runner

# The fake librtlsdr and its "dongle", as test_rtlsdr.py sets them up.
fake_lib = test_rtlsdr.fake_lib
dongle = test_rtlsdr.dongle


def _open_failure(src: RtlSdrSource, caplog: pytest.LogCaptureFixture) -> str:
    with caplog.at_level(logging.WARNING, logger="agent.sources.rtlsdr"):
        run = Runner(src)
        run.wait_for(lambda: src.counts["open_failed"] >= 2)
        run.finish()
    assert src.counts["opens"] == 0
    lines = [r.getMessage() for r in caplog.records if "cannot open" in r.getMessage()]
    assert len(lines) == 1  # logged once, not at every retry
    assert "LIBUSB_ERROR" not in lines[0]
    return lines[0]


def test_no_dongle_says_so(dongle: fake_rtlsdr.FakeDongle, caplog) -> None:
    dongle.plug(False)
    line = _open_failure(RtlSdrSource(None, backoff_min=0.05, backoff_max=0.1), caplog)
    assert "no RTL-SDR dongle found" in line and "lsusb" in line


def test_no_dongle_with_a_serial_says_so(dongle: fake_rtlsdr.FakeDongle, caplog) -> None:
    # librtlsdr answers -2 (LIBUSB_ERROR_INVALID_PARAM to pyrtlsdr): no devices at all.
    dongle.plug(False)
    line = _open_failure(RtlSdrSource("ADSB-ROOF", backoff_min=0.05, backoff_max=0.1), caplog)
    assert "no RTL-SDR dongle found (looking for serial ADSB-ROOF)" in line


def test_another_serial_lists_what_is_there(dongle: fake_rtlsdr.FakeDongle, caplog) -> None:
    line = _open_failure(RtlSdrSource("ADSB-MAST", backoff_min=0.05, backoff_max=0.1), caplog)
    assert "no RTL-SDR dongle with serial ADSB-MAST; found 00000001" in line


def test_an_index_beyond_the_dongles_says_how_many(dongle: fake_rtlsdr.FakeDongle, caplog) -> None:
    line = _open_failure(RtlSdrSource(1, backoff_min=0.05, backoff_max=0.1), caplog)
    assert "no RTL-SDR dongle at index 1: 1 found" in line


@pytest.mark.parametrize(
    ("code", "words"),
    [(-6, "device busy: the DVB driver holds it"), (-3, "permission denied: add a udev rule")],
)
def test_busy_or_locked_dongle_says_what_to_do(
    dongle: fake_rtlsdr.FakeDongle, caplog, code: int, words: str
) -> None:
    dongle.fail_open(code)
    try:
        line = _open_failure(RtlSdrSource(None, backoff_min=0.05, backoff_max=0.1), caplog)
    finally:
        dongle.fail_open(0)
    assert words in line


def test_a_source_that_never_opened_is_red_soon_not_green() -> None:
    judge = HealthJudge("s", stall_s=150, started=0.0)

    def state(now: float, failed: int) -> dict:
        reading = Reading({"rtlsdr": {"open_failed": failed}}, {})
        doc = judge.status(
            reading, now, 0.0, stalled=False, wall=now, expires_s=10, watchdog_s=None
        )
        return doc["components"]["source rtlsdr"]

    first = state(2.0, 1)
    assert first["state"] == AMBER and "not open" in first["message"]
    later = state(16.0, 5)
    assert later["state"] == RED
    assert (
        later["message"] == "not open: 5 attempts failed in 16 s, none succeeded (the log says why)"
    )
    # Once it opened, the old rules hold (a quiet sky is not a fault).
    opened = judge.status(
        Reading({"rtlsdr": {"open_failed": 5, "opens": 1, "samples": 10}}, {}),
        17.0,
        0.0,
        stalled=False,
        wall=17.0,
        expires_s=10,
        watchdog_s=None,
    )
    assert opened["components"]["source rtlsdr"]["state"] != RED
