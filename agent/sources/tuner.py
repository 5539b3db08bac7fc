"""Tuner settings shared by rtlsdr:// and rtltcp://: one dongle, local or behind rtl_tcp.

?rate=2.4e6&gain=auto|adaptive|DB&ppm=N&biastee=0|1&repair=1|2|3&retry=0|1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from agent.settings import Rule
from agent.sources.kind import parse_options
from agent.sources.options import Flag, IqOptions

ADSB_FREQ_HZ = 1_090_000_000
MAX_GAIN_DB = 60.0
MAX_PPM = 1000


def _gain(value: Any) -> str | float:
    text = str(value).strip().lower()
    if text in ("auto", "adaptive"):
        return text
    try:
        gain = float(text)
    except ValueError:
        raise ValueError("expected auto, adaptive or dB") from None
    if not 0.0 <= gain <= MAX_GAIN_DB:
        raise ValueError(f"out of range 0-{MAX_GAIN_DB:g} dB")
    return gain


def _ppm(value: Any) -> int:
    try:
        ppm = int(str(value).strip())
    except ValueError:
        raise ValueError("not an integer") from None
    if not -MAX_PPM <= ppm <= MAX_PPM:
        raise ValueError(f"out of range -{MAX_PPM}..{MAX_PPM}")
    return ppm


class TunerOptions(IqOptions):
    """Settings shared by rtlsdr:// and rtltcp:// (from the URL query).

    Attributes:
        rate: 2.0e6 or 2.4e6 samples per second.
        gain: "auto" (tuner AGC), "adaptive" (gain.AdaptiveGain) or a gain in dB,
            snapped to the nearest the tuner offers.
        ppm: frequency correction of the dongle's crystal.
        biastee: power for an LNA on the antenna port; None leaves it as it is (an LNA
            powered by other means must not be switched off by a default).
        repair, retry: demodulator settings (IqOptions; `demod` gives DemodOptions).
    """

    gain: Annotated[str | float, Rule(parse=_gain)] = "auto"
    ppm: Annotated[int, Rule(parse=_ppm)] = 0
    biastee: Flag | None = None


def parse_tuner_options(url: str, query: Mapping[str, str]) -> TunerOptions:
    """TunerOptions from a URL query; SourceError names the bad option."""
    return parse_options(url, TunerOptions, dict(query))
