"""Inputs: one module per kind, all yielding `Frame`s (see base.Source).

`open_source` maps a source URL to its class, like dump1090's table of SDR handlers:
    file:PATH?format=uc8|sc16|beast|avr&rate=2.4e6   (PATH '-' is standard input)
    IQ inputs (file uc8/sc16, rtlsdr, rtltcp) also take repair=1|2|3 (bits the
    demodulator may repair in one frame) and retry=0|1 (trellis retry of weak replies)
    beast://host:port    Beast binary client (readsb/dump1090 port 30005)
    avr://host:port      AVR text client (port 30002)
    rtlsdr://[serial-or-index]?rate=2.4e6&gain=auto|adaptive|DB&ppm=N&biastee=0|1
                         local RTL-SDR dongle via pyrtlsdr (extra: adsb-agent[rtlsdr])
    rtltcp://host:port?rate=..&gain=..&ppm=..&biastee=..   rtl_tcp server (port 1234)
    serial:///dev/serial/by-id/...?format=beast|avr&baud=N&rtscts=0|1   serial receiver
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from agent.demod import DemodOptions
from agent.errors import SourceError
from agent.sources.base import Source

IQ_FORMATS = ("uc8", "sc16")
FILE_FORMATS = (*IQ_FORMATS, "beast", "avr")
IQ_RATES = (2.0e6, 2.4e6)


def parse_rate(text: str) -> float:
    """Sample rate from '2.4e6', '2400000' or '2.4M'; only 2.0 and 2.4 MS/s are supported."""
    t, scale = text.strip().lower(), 1.0
    if t.endswith("m"):
        t, scale = t[:-1], 1e6
    try:
        rate = float(t) * scale
    except ValueError:
        raise SourceError(f"sample rate {text!r} is not a number") from None
    if rate < 100:  # '2.4' meaning MS/s
        rate *= 1e6
    if rate not in IQ_RATES:
        raise SourceError(f"sample rate {text!r}: supported are 2.0e6 and 2.4e6")
    return rate


DEMOD_KEYS = frozenset(("repair", "retry"))


def parse_demod_options(url: str, query: dict[str, str]) -> DemodOptions:
    """DemodOptions from a URL query (`repair`, `retry`); SourceError names the bad one."""
    text = query.get("repair", str(DemodOptions.repair_bits)).strip()
    if text not in ("1", "2", "3"):
        raise SourceError(f"{url}: repair {text!r}: expected 1, 2 or 3 (bits per frame)")
    flag = query.get("retry", "0").strip().lower()
    if flag not in ("0", "1", "true", "false", "on", "off"):
        raise SourceError(f"{url}: retry {flag!r}: expected 0 or 1")
    return DemodOptions(repair_bits=int(text), retry_weak=flag in ("1", "true", "on"))


def open_file_source(
    path: str,
    fmt: str,
    rate: float = 2.4e6,
    *,
    name: str | None = None,
    start_time: float = 0.0,
    demod: DemodOptions | None = None,
) -> Source:
    """A recorded input (file or '-' for stdin) in one of FILE_FORMATS."""
    label = name or ("stdin" if path == "-" else path)
    if fmt in IQ_FORMATS:
        from agent.sources.iq import IqFileSource

        return IqFileSource(
            path, rate=rate, fmt=fmt, name=label, start_time=start_time, demod=demod
        )
    if fmt == "beast":
        from agent.sources.beast import BeastFileSource

        return BeastFileSource(path, name=label, start_time=start_time)
    if fmt == "avr":
        from agent.sources.avr import AvrFileSource

        return AvrFileSource(path, name=label, start_time=start_time)
    raise SourceError(f"format {fmt!r}: expected one of {', '.join(FILE_FORMATS)}")


def open_source(url: str, *, start_time: float = 0.0) -> Source:
    """The source a URL names; raises SourceError with the reason when it cannot."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"format", "rate"} - DEMOD_KEYS
        if unknown:
            raise SourceError(f"{url}: unknown option(s) {', '.join(sorted(unknown))}")
        path = parts.path or parts.netloc
        if not path:
            raise SourceError(f"{url}: no file path")
        rate = parse_rate(query.get("rate", "2.4e6"))
        return open_file_source(
            path,
            query.get("format", "uc8"),
            rate,
            start_time=start_time,
            demod=parse_demod_options(url, query),
        )
    if parts.scheme in ("beast", "avr"):
        host, port = _host_port(url)
        if parts.scheme == "beast":
            from agent.sources.beast import BeastTcpSource

            return BeastTcpSource(host, port, name=url)
        from agent.sources.avr import AvrTcpSource

        return AvrTcpSource(host, port, name=url)
    if parts.scheme in ("rtlsdr", "rtltcp", "serial"):
        return _open_hardware_source(url, start_time=start_time)
    raise SourceError(f"{url}: unknown source scheme {parts.scheme!r}")


def _host_port(url: str) -> tuple[str, int | None]:
    """Host and port (None when absent) of a network source URL."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise SourceError(f"{url}: bad port") from None
    if not host:
        raise SourceError(f"{url}: no host")
    return host, port


def _open_hardware_source(url: str, *, start_time: float = 0.0) -> Source:
    """rtlsdr://, rtltcp:// and serial:// (live inputs: start_time does not apply)."""
    from urllib.parse import unquote

    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "rtlsdr":
        from agent.sources.rtlsdr import RtlSdrSource, parse_device, parse_tuner_options

        options = parse_tuner_options(url, query)
        return RtlSdrSource(parse_device(unquote(parts.netloc)), options, name=url)
    if parts.scheme == "rtltcp":
        from agent.sources.rtlsdr import parse_tuner_options
        from agent.sources.rtltcp import RtlTcpSource

        host, port = _host_port(url)
        return RtlTcpSource(host, port or 1234, parse_tuner_options(url, query), name=url)
    from agent.sources.serial_port import SerialSource, parse_serial_options

    path = unquote(parts.path)
    if parts.netloc or not path:
        raise SourceError(f"{url}: expected serial:///dev/... (three slashes, absolute path)")
    return SerialSource(path, **parse_serial_options(url, query), name=url)
