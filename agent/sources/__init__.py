"""Inputs: one module per kind, all yielding `Frame`s (see base.Source).

kinds.KINDS is the table of kinds (kind.SourceKind: scheme, typed options, open, check
hints); each kind's module declares its row:
    file:PATH?format=uc8|sc16|beast|avr&rate=2.4e6   (file.py; PATH '-' is stdin)
    IQ inputs (file uc8/sc16, rtlsdr, rtltcp) also take repair=1|2|3 (bits the
    demodulator may repair in one frame) and retry=0|1 (trellis retry of weak replies)
    beast://host:port    Beast binary client (beast.py; readsb/dump1090 port 30005)
    avr://host:port      AVR text client (avr.py; port 30002)
    rtlsdr://[serial-or-index]?rate=2.4e6&gain=auto|adaptive|DB&ppm=N&biastee=0|1
                         local RTL-SDR dongle via pyrtlsdr (extra: adsb-agent[rtlsdr])
    rtltcp://host:port?rate=..&gain=..&ppm=..&biastee=..   rtl_tcp server (port 1234)
    serial:///dev/serial/by-id/...?format=beast|avr&baud=N&rtscts=0|1   serial receiver
Shared pieces: kind.py (the parser), options.py (rate, flags, IQ options), tuner.py
(rtlsdr and rtltcp settings), live_iq.py (live IQ into the demodulator), tcp.py,
stream.py, reopen.py.
"""

from agent.sources.file import FILE_FORMATS, IQ_FORMATS, open_file_source
from agent.sources.kind import OpenContext, SourceKind, SourceSpec
from agent.sources.kinds import KINDS, kind_of, open_source, parse_source
from agent.sources.options import IQ_RATES, parse_rate

__all__ = [
    "FILE_FORMATS",
    "IQ_FORMATS",
    "IQ_RATES",
    "KINDS",
    "OpenContext",
    "SourceKind",
    "SourceSpec",
    "kind_of",
    "open_file_source",
    "open_source",
    "parse_rate",
    "parse_source",
]
