"""Recordings: `file:PATH?format=uc8|sc16|beast|avr&rate=2.4e6` (PATH '-' is standard input).

IQ formats (uc8, sc16) are demodulated (iq.IqFileSource) and also take repair=1|2|3
and retry=0|1; Beast and AVR recordings are timed by their own ticks.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import SplitResult

from agent.demod import DemodOptions
from agent.errors import SourceError
from agent.sources.avr import AvrFileSource
from agent.sources.base import Source
from agent.sources.beast import BeastFileSource
from agent.sources.iq import IqFileSource
from agent.sources.kind import OpenContext, SourceKind
from agent.sources.options import IqOptions
from agent.verify import FrameVerifier

IQ_FORMATS = ("uc8", "sc16")
FILE_FORMATS = (*IQ_FORMATS, "beast", "avr")


class FileOptions(IqOptions):
    """file: options. rate, repair and retry apply to the IQ formats only.

    Attributes:
        path: the file, or '-' for standard input.
        format: uc8 or sc16 (IQ), beast or avr (frames).
    """

    path: str
    format: Literal["uc8", "sc16", "beast", "avr"] = "uc8"


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
        start_time=context.start_time,
        demod=options.demod,
        verifier=context.verifier,
    )


KIND = SourceKind(
    scheme="file",
    prefix="file:",
    usage="file:PATH?format=uc8|sc16|beast|avr&rate=2.4e6  (PATH '-' is standard input)",
    options=FileOptions,
    locate=_locate,
    open=_open,
    cannot_open_fix="is the receiver running and the host and port right? a firewall?",
    no_data_fix="check the dongle's cable and power; `rtl_test -t` should find it",
)
