"""Health at a glance: one badge per thing a technician can fix, green, amber or red.

The colours are the agent's own judgements, not new ones: the source, broker link and
pipeline badges are the service monitor's components (what `adsb-agent status` shows),
and clock, disk, power and noise floor are `adsb-agent check`'s verdicts (agent.check),
with its `fix:` advice. Only the CPU temperature and the strong-signal share have no
counterpart there; their thresholds are written below.

The slow checks (the disk check writes and syncs a small file) run on their own
intervals from the sampler thread; a page asking every second reads the last verdicts.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import check
from agent.outputs.base import LinkState
from agent.sources.base import noise_floor_dbfs
from agent.sources.gain import GainPolicy

GREEN, AMBER, RED, GREY = "green", "amber", "red", "grey"
_FROM_CHECK = {check.PASS: GREEN, check.WARN: AMBER, check.FAIL: RED, check.SKIP: GREY}
# The Pi 4/5 firmware throttles from 80 degC (85 on the 5): amber well before, red there.
TEMP_AMBER_C = 70.0
TEMP_RED_C = 80.0
THERMAL_ZONE = "class/thermal/thermal_zone0/temp"
# The adaptive gain keeps strong replies (above -3 dBFS) at 1-5 %, as readsb does;
# above that band loud nearby aircraft are being clipped.
STRONG_HIGH = GainPolicy().strong_high
STRONG_MIN_FRAMES = GainPolicy().min_frames
# Seconds between the slow checks.
CLOCK_EVERY_S = 10.0
POWER_EVERY_S = 10.0
DISK_EVERY_S = 60.0
# A monitor status older than this many of its intervals means the monitor is stuck.
STALE_STATUS_S = 30.0


@dataclass(frozen=True)
class Badge:
    name: str
    state: str
    text: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"name": self.name, "state": self.state, "text": self.text}
        if self.fix and self.state != GREEN:
            out["fix"] = self.fix
        return out


def from_result(r: check.Result, name: str | None = None) -> Badge:
    return Badge(name or r.name, _FROM_CHECK[r.state], r.detail, r.fix)


_COMPONENT_FIX = {
    "source": "check the antenna cable and the dongle (`adsb-agent check --source URL`); "
    "for a network feed, is readsb/dump1090 running?",
    "mqtt": "is the link up (modem, SIM credit)? `adsb-agent check` tests the broker; "
    "records wait in the outbox meanwhile",
    "pipeline": "the agent is stuck: `sudo systemctl restart adsb-agent`, then "
    "`journalctl -u adsb-agent` for why",
}


def status_badges(status: dict[str, Any] | None, now: float) -> list[Badge]:
    """The service monitor's components, as `adsb-agent status` shows them."""
    if status is None:
        return [Badge("agent", GREY, "starting: no status round yet")]
    out = []
    age = now - float(status.get("updated", now))
    if age > STALE_STATUS_S:
        out.append(
            Badge("agent", RED, f"status not updated for {age:.0f} s", _COMPONENT_FIX["pipeline"])
        )
    for name, comp in status.get("components", {}).items():
        kind = "source" if name.startswith("source ") else name.split(" ")[0]
        label = "broker link" if kind == "mqtt" else name
        out.append(Badge(label, comp["state"], comp["message"], _COMPONENT_FIX.get(kind, "")))
    return out


def link_badges(links: Sequence[LinkState]) -> list[Badge]:
    """Outbox depth and oldest age of each output with a broker link."""
    out = []
    for link in links:
        depth, age = link.outbox_depth, link.outbox_oldest_age_s
        text = f"{depth} records waiting" + (f", oldest {_age(age)}" if age else "")
        state = GREEN if depth < 1000 and (age or 0) < 600 else AMBER
        if link.outbox_problem:
            state, text = RED, f"{text}: {link.outbox_problem}"
        out.append(
            Badge("outbox", state, text, "records are kept on disk until the broker takes them")
        )
    return out


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def source_badges(sources: Sequence[Any]) -> list[Badge]:
    """Gain and noise floor of each IQ source (check's noise verdict)."""
    out = []
    for src in sources:
        noise = noise_floor_dbfs(src)
        if noise is None:
            continue
        live = getattr(src, "live", None)  # the dongle's and rtl_tcp's gain state
        badge = from_result(check.judge_noise(noise), "gain / noise")
        gain = getattr(src, "gain_db", None)
        adaptive = getattr(live, "gain", None) is not None
        where = "auto" if gain is None else f"{gain:g} dB" + (" (adaptive)" if adaptive else "")
        out.append(Badge(badge.name, badge.state, f"gain {where}, {badge.text}", badge.fix))
    return out


def strong_badge(strong: int, levels: int) -> Badge:
    """Share of replies above -3 dBFS over the last minute (the gain policy's band)."""
    if levels < STRONG_MIN_FRAMES:
        return Badge("strong signals", GREY, f"{levels} replies with a level: too few to judge")
    share = strong / levels
    text = f"{share:.1%} of {levels} replies above -3 dBFS"
    if share > STRONG_HIGH:
        return Badge(
            "strong signals",
            AMBER,
            text + ": close aircraft are clipped",
            f"lower the gain until fewer than {STRONG_HIGH:.0%} are strong (gain=adaptive does it)",
        )
    return Badge("strong signals", GREEN, text)


def read_temperature(sysfs: Path) -> float | None:
    try:
        return int((sysfs / THERMAL_ZONE).read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


def judge_temperature(celsius: float | None) -> Badge:
    if celsius is None:
        return Badge("temperature", GREY, "no CPU temperature sensor")
    fix = "shade the enclosure, give it airflow or a heatsink (firmware_notes/power.md)"
    text = f"CPU {celsius:.0f} degC"
    if celsius >= TEMP_RED_C:
        return Badge("temperature", RED, text + ": the CPU throttles", fix)
    if celsius >= TEMP_AMBER_C:
        return Badge("temperature", AMBER, text + ": hot", fix)
    return Badge("temperature", GREEN, text)


class SlowChecks:
    """check's clock, disk and power verdicts plus the temperature, each refreshed on
    its own interval (`refresh` is called from the sampler thread every second)."""

    def __init__(
        self,
        state_dir: str,
        need_mb: float,
        *,
        sysfs: Path = Path("/sys"),
        clock: Callable[[], float] = time.monotonic,
    ):
        self.state_dir = state_dir
        self.need_mb = need_mb
        self.sysfs = sysfs
        self.vcgencmd = shutil.which("vcgencmd")
        self.clock = clock
        self._due: dict[str, float] = {}
        self.badges: dict[str, Badge] = {}

    def refresh(self) -> None:
        now = self.clock()
        for name, every, run in (
            ("clock", CLOCK_EVERY_S, lambda: from_result(check.judge_clock(check.read_clock()))),
            (
                "disk",
                DISK_EVERY_S,
                lambda: from_result(check.check_disk(self.state_dir, self.need_mb)),
            ),
            ("power", POWER_EVERY_S, self._power),
            ("temperature", POWER_EVERY_S, lambda: judge_temperature(read_temperature(self.sysfs))),
        ):
            if now >= self._due.get(name, 0.0):
                self._due[name] = now + every
                self.badges[name] = run()

    def _power(self) -> Badge:
        return from_result(check.judge_throttled(check.read_throttled(self.sysfs, self.vcgencmd)))
