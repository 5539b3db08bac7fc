"""The table of source kinds, like dump1090's `sdr_handlers[]`: one row per URL scheme.

A new kind is a module declaring `KIND = SourceKind(...)` (kind.py says what that
holds) and one line in KINDS below; the config, the command line and `adsb-agent
check` find it from here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from agent.errors import SourceError
from agent.sources import avr, beast, file, rtlsdr, rtltcp, serial_port
from agent.sources.base import Source
from agent.sources.kind import OpenContext, SourceKind, SourceSpec

KINDS: tuple[SourceKind[Any], ...] = (
    file.KIND,
    beast.KIND,
    avr.KIND,
    rtlsdr.KIND,
    rtltcp.KIND,
    serial_port.KIND,
)


def kind_of(url: str, kinds: tuple[SourceKind[Any], ...] = KINDS) -> SourceKind[Any]:
    """The kind whose scheme and prefix `url` has; SourceError lists the known ones."""
    scheme = urlsplit(url).scheme
    for kind in kinds:
        if kind.scheme == scheme and url.startswith(kind.prefix):
            return kind
    known = ", ".join(k.prefix for k in kinds)
    raise SourceError(f"{url}: unknown source scheme {scheme!r}: expected one of {known}")


def parse_source(url: str, kinds: tuple[SourceKind[Any], ...] = KINDS) -> SourceSpec:
    """`url` parsed into its kind's typed options; SourceError names what is wrong."""
    kind = kind_of(url, kinds)
    return SourceSpec(url, kind, kind.parse(url))


def open_source(url: str, context: OpenContext | None = None) -> Source:
    """The source a URL names; SourceError with the reason when it cannot be opened."""
    return parse_source(url).open(context)
