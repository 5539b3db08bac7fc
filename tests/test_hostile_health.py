"""A source that never opened is not green (issue 14)."""

from __future__ import annotations

from agent.health import AMBER, RED, HealthJudge, Reading


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
