"""Recordings: `file:PATH?format=uc8|sc16|beast|avr&rate=2.4e6&start_time=T` ('-': stdin).

IQ formats (uc8, sc16) are demodulated (iq.IqFileSource) and also take repair=1|2|3
and retry=0|1. A recording carries its own time: IQ the sample count, Beast and AVR
'@' lines 12 MHz ticks. `start_time` (ISO 8601 or Unix seconds, UTC) places its first
sample or timed frame; the rest follow their own clock, so a replay gives the same
records (track_id, night_flight...) whenever it is run. Without it the opener's
start time is used (the wall clock when the command started). Frames without a time of
their own (plain AVR `*HEX;` lines, Beast records with zero or MLAT ticks) take the time
of the newest timed frame, the start time before any: a file of only such lines plays
as one instant.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult

from agent.demod import DemodOptions
from agent.errors import SourceError
from agent.settings import Rule
from agent.sources.avr import AvrFileSource
from agent.sources.base import Source
from agent.sources.beast import BeastFileSource
from agent.sources.kind import OpenContext, SourceKind
from agent.sources.options import IqOptions
from agent.verify import FrameVerifier

IQ_FORMATS = ("uc8", "sc16")
FILE_FORMATS = (*IQ_FORMATS, "beast", "avr")


def start_time_value(text: str) -> float:
    """Unix seconds (UTC) from '1717280580', '1717280580.5' or ISO 8601 text.

    ISO 8601 without a UTC offset is taken as UTC ('2024-06-01T22:23:00' is 22:23 UTC),
    as ADS-B times are. ValueError says what is expected.
    """
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ValueError("expected ISO 8601 (2024-06-01T22:23:00Z) or Unix seconds") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp()
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("expected a time after 1970-01-01T00:00:00Z")
    return seconds


def _start_time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):  # a TOML datetime
        value = value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = repr(float(value))
    if not isinstance(value, str):
        raise ValueError("expected ISO 8601 or Unix seconds")
    return start_time_value(value)


class FileOptions(IqOptions):
    """file: options. rate, repair and retry apply to the IQ formats only.

    Attributes:
        path: the file, or '-' for standard input.
        format: uc8 or sc16 (IQ), beast or avr (frames).
        start_time: UTC time of the first sample or timed frame (Unix seconds); None:
            the opener's (OpenContext.start_time).
    """

    path: str
    format: Literal["uc8", "sc16", "beast", "avr"] = "uc8"
    start_time: Annotated[float | None, Rule(parse=_start_time)] = None


def open_file_source(
    path: str,
    fmt: str,
    rate: float = 2.4e6,
    *,
    name: str | None = None,
    start_time: float = 0.0,
    demod: DemodOptions | None = None,
    verifier: FrameVerifier | None = None,
) -> Source:
    """A recorded input (file or '-' for stdin) in one of FILE_FORMATS.

    Args:
        verifier: the pipeline's verifier, for IQ formats (OpenContext.verifier).
    """
    label = name or ("stdin" if path == "-" else path)
    if fmt in IQ_FORMATS:
        from agent.sources.iq import IqFileSource  # numpy: not for --help or check

        return IqFileSource(
            path,
            rate=rate,
            fmt=fmt,
            name=label,
            start_time=start_time,
            demod=demod,
            verifier=verifier,
        )
    if fmt == "beast":
        return BeastFileSource(path, name=label, start_time=start_time)
    if fmt == "avr":
        return AvrFileSource(path, name=label, start_time=start_time)
    raise SourceError(f"format {fmt!r}: expected one of {', '.join(FILE_FORMATS)}")


def _locate(url: str, parts: SplitResult) -> dict[str, Any]:
    path = parts.path or parts.netloc
    if not path:
        raise SourceError(f"{url}: no file path")
    return {"path": path}


def _open(url: str, options: FileOptions, context: OpenContext) -> Source:
    return open_file_source(
        options.path,
        options.format,
        options.rate,
        start_time=context.start_time if options.start_time is None else options.start_time,
        demod=options.demod,
        verifier=context.verifier,
    )


KIND = SourceKind(
    scheme="file",
    prefix="file:",
    usage=(
        "file:PATH?format=uc8|sc16|beast|avr&rate=2.4e6&start_time=ISO8601|UNIX"
        "  (PATH '-' is standard input)"
    ),
    options=FileOptions,
    locate=_locate,
    open=_open,
    cannot_open_fix="is the receiver running and the host and port right? a firewall?",
    no_data_fix="check the dongle's cable and power; `rtl_test -t` should find it",
)
