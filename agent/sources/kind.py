"""What a source kind declares, and the one parser every source URL goes through.

A kind (dump1090's `sdr_handler`, Frigate's typed detector plugins) is a URL scheme, a
typed options model, how the URL's host/path part becomes options, how to open a
Source from them, and what `adsb-agent check` tells a technician when the source
cannot open or delivers nothing. Each source module declares its own `KIND`;
`agent.sources.kinds` lists them. URL queries map onto the options model's fields by
name, so a kind's options *are* its URL vocabulary: an unknown key or a bad value is
refused here, once, with the key named, whether the URL comes from the config file
(at load), the command line or a test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import SplitResult, parse_qs, urlsplit

from agent.errors import SourceError
from agent.settings import Settings, SettingsError, field_names, load
from agent.sources.base import Source
from agent.verify import FrameVerifier


class SourceOptions(Settings, frozen=True):
    """Base of every kind's options: unknown keys refused, values bounded, immutable."""


OptionsT = TypeVar("OptionsT", bound=SourceOptions)


@dataclass(frozen=True)
class OpenContext:
    """What the opener knows that the URL does not.

    Attributes:
        start_time: receive time of a recording's first sample or timed frame (live
            sources time frames by the wall clock and ignore it).
        verifier: the pipeline's FrameVerifier when the frames go to a pipeline: IQ
            sources then judge through it (one address memory per pipeline) and mark
            their frames judged (Frame.accepted), so the pipeline does not judge them
            again. None: a private one (the `demod` command, benchmarks).
    """

    start_time: float = 0.0
    verifier: FrameVerifier | None = None


@dataclass(frozen=True)
class SourceKind(Generic[OptionsT]):
    """One row of the table of source kinds.

    Attributes:
        scheme: the URL scheme ("beast").
        prefix: how its URLs start ("beast://", "file:"); others are refused.
        usage: the URL form with its options, for help texts.
        options: the typed options model; query keys are its field names.
        locate: the URL's host/path part as option fields (SourceError when unusable).
        open: a Source from (URL, options, context); the URL names the source.
        cannot_open_fix: `check`'s advice when every open or connect attempt failed.
        no_data_fix: `check`'s advice when it opened but nothing arrived.
    """

    scheme: str
    prefix: str
    usage: str
    options: type[OptionsT]
    locate: Callable[[str, SplitResult], dict[str, Any]]
    open: Callable[[str, OptionsT, OpenContext], Source]
    cannot_open_fix: str
    no_data_fix: str

    def parse(self, url: str) -> OptionsT:
        """The typed options of `url`; SourceError names the first bad option."""
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return parse_options(url, self.options, query, self.locate(url, parts))


def parse_options(
    url: str, model: type[OptionsT], query: dict[str, str], location: dict[str, Any] | None = None
) -> OptionsT:
    """`model` from a URL query (and the fields the URL's location gives).

    Raises:
        SourceError: "URL: unknown option(s) a, b" or "URL: key 'value': why".
    """
    location = location or {}
    unknown = set(query) - (set(field_names(model)) - set(location))
    if unknown:
        raise SourceError(f"{url}: unknown option(s) {', '.join(sorted(unknown))}")
    try:
        return load(model, {**location, **query}, text=True)
    except SettingsError as err:
        first = err.problems[0]
        key = ".".join(str(p) for p in first.path)
        why = first.message
        given = query.get(key, location.get(key))
        raise SourceError(f"{url}: {key} {given!r}: {why}") from None


@dataclass(frozen=True)
class SourceSpec:
    """A source URL parsed into its kind's typed options (what `sources = [...]` holds)."""

    url: str
    kind: SourceKind[Any] = field(repr=False)
    options: SourceOptions

    def open(self, context: OpenContext | None = None) -> Source:
        """The Source; SourceError when it cannot be opened (a missing file, no driver)."""
        return self.kind.open(self.url, self.options, context or OpenContext())


def host_port(url: str, parts: SplitResult) -> dict[str, Any]:
    """`host` and `port` (None when absent) of a network source URL."""
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise SourceError(f"{url}: bad port") from None
    if not host:
        raise SourceError(f"{url}: no host")
    return {"host": host, "port": port}
