"""Reconnecting TCP client shared by the Beast and AVR network sources.

A receiver's feed goes away all the time: readsb restarts on upgrade, the Pi's Wi-Fi
drops, the dongle is replugged. `TcpStream` hides that: it yields byte chunks from
whichever connection is up and reconnects with capped exponential backoff until the
stop event is set. It logs state changes only (connected, lost, first failed attempt,
recovered), never each retry, so a feed that is down all night leaves two log lines.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import closing

from agent.frame import Frame
from agent.sources.kind import OpenContext, SourceKind, SourceOptions, host_port
from agent.sources.reopen import Reopener, Wording
from agent.sources.stream import READ_SIZE, Clock, FrameDecoder

log = logging.getLogger("agent.sources.tcp")

# Dead-peer detection: a receiver that vanished without a FIN (power cut, Wi-Fi gone)
# is noticed after about KEEPIDLE + KEEPINTVL * KEEPCNT = 60 s instead of never.
KEEPALIVE_IDLE_S = 30
KEEPALIVE_INTERVAL_S = 10
KEEPALIVE_COUNT = 3
# TcpStream's counters and log lines (the policy is reopen.Reopener's).
FEED = Wording(
    opens="connects",
    failures="connect_failed",
    losses="disconnects",
    cannot="cannot connect",
    lost="connection lost",
    up="{name}: connected",
    up_again="{name}: connected again after {gone:.1f} s without a feed",
    down="{name}: {what}; retrying with backoff up to {most:g} s, logging only recovery",
)


class TcpStream:
    """Byte chunks from host:port across reconnects, until `stop` is set.

    Iterate it once. Counters (in `counts`): connects, disconnects, connect_failed.
    Backoff: after the n-th failed or empty attempt in a row wait a random time
    between half and all of min(backoff_max, backoff_min * 2**(n-1)); the jitter keeps
    several agents from hammering a restarted server in step. A connection that
    delivered data resets the sequence. Every wait and read wakes within read_timeout
    of `stop` being set.

    Args:
        host, port: server address, resolved on every attempt (a stalled DNS lookup is
            the one wait `stop` cannot cut short; use an IP address where that matters).
        stop: ends iteration as soon as it is set.
        connect_timeout: give up one connection attempt after this many seconds.
        read_timeout: longest a blocking socket call waits before looking at `stop`.
        backoff_min, backoff_max: first and largest wait between attempts (seconds).
        name: label in log lines (default 'host:port').
        counts: counter to add to (the owning source's), a new one when None.
        on_connect: called after each successful connect, before its first chunk;
            sources reset their decoder there so no partial frame survives a reconnect.
    """

    def __init__(
        self,
        host: str,
        port: int,
        stop: threading.Event,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 0.5,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
        name: str | None = None,
        counts: Counter[str] | None = None,
        on_connect: Callable[[], None] | None = None,
    ):
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.host = host
        self.port = port
        self.stop = stop
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.name = name or f"{host}:{port}"
        self.counts: Counter[str] = counts if counts is not None else Counter()
        self.on_connect = on_connect
        self._reopen = Reopener(self.name, stop, log, self.counts, (backoff_min, backoff_max), FEED)
        # Whether the current connection delivered anything (resets the backoff).
        self._got_data = False

    def __iter__(self) -> Generator[bytes, None, None]:
        reopen = self._reopen
        while not self.stop.is_set():
            try:
                sock = self._connect()
            except OSError as err:
                if not reopen.open_failed(_reason(err)):
                    return
                continue
            if sock is None:  # stop was set while connecting
                return
            reopen.opened("")
            if self.on_connect is not None:
                self.on_connect()
            self._got_data = False
            with closing(sock):
                reason = yield from self._read(sock)
            if reason is None:  # stopped
                return
            if not reopen.lost(reason, delivered=self._got_data):
                return

    def _backoff(self, failures: int) -> float:
        return self._reopen.wait_s(failures)

    def _connect(self) -> socket.socket | None:
        """A connected socket, None if `stop` was set meanwhile; OSError on failure.

        Non-blocking connect polled in read_timeout steps, so a slow or firewalled host
        (SYN dropped) does not hold shutdown up for the whole connect_timeout.
        """
        deadline = time.monotonic() + self.connect_timeout
        last: OSError = OSError(f"{self.host}: no address")
        for family, kind, proto, _, addr in socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                err = sock.connect_ex(addr)
                while err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                    if self.stop.is_set():
                        sock.close()
                        return None
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        err = errno.ETIMEDOUT
                        break
                    wait = min(remaining, self.read_timeout)
                    _, writable, _ = select.select([], [sock], [], wait)
                    if writable:
                        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, os.strerror(err))
                sock.setblocking(True)
                sock.settimeout(self.read_timeout)
                _keepalive(sock)
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise last

    def _read(self, sock: socket.socket) -> Generator[bytes, None, str | None]:
        """Yield chunks; return why the connection ended, or None when `stop` was set."""
        while not self.stop.is_set():
            try:
                data = sock.recv(READ_SIZE)
            except TimeoutError:
                continue
            except OSError as err:
                return _reason(err)
            if not data:
                return "closed by the server"
            self._got_data = True
            yield data
        return None


def _reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def _keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for opt, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        if hasattr(socket, opt):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)


class TcpFrameSource:
    """A network feed decoded into frames; subclasses choose the decoder.

    See beast.BeastTcpSource and avr.AvrTcpSource. Frames are timed by `clock` when
    their bytes arrive. The decoder is reset on every (re)connect.
    """

    scheme = "tcp"
    default_port = 0

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        name: str | None = None,
        clock: Clock = time.time,
        connect_timeout: float = 5.0,
        read_timeout: float = 0.5,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
    ):
        self.host = host
        self.port = port or self.default_port
        self.name = name or f"{self.scheme}://{host}:{self.port}"
        self.clock = clock
        self.timing = {
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "backoff_min": backoff_min,
            "backoff_max": backoff_max,
        }
        self.counts: Counter[str] = Counter()

    def make_decoder(self) -> FrameDecoder:
        """A fresh decoder timing frames by `self.clock` (subclass hook)."""
        raise NotImplementedError

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Frames from the feed, reconnecting as needed; returns only when `stop` is set."""
        decoder = self.make_decoder()
        stream = TcpStream(
            self.host,
            self.port,
            stop,
            connect_timeout=self.timing["connect_timeout"],
            read_timeout=self.timing["read_timeout"],
            backoff_min=self.timing["backoff_min"],
            backoff_max=self.timing["backoff_max"],
            name=self.name,
            counts=self.counts,
            on_connect=decoder.reset,
        )
        with closing(iter(stream)) as chunks:
            for chunk in chunks:
                yield from decoder.feed(chunk)


class FeedOptions(SourceOptions):
    """beast:// and avr:// options: the server (the URL's host part) and nothing else.

    Attributes:
        host: the receiver's host name or address.
        port: its port; None for the kind's usual one (TcpFrameSource.default_port).
    """

    host: str
    port: int | None = None


# What `adsb-agent check` says about a network feed.
FEED_CANNOT_CONNECT_FIX = "is the receiver running and the host and port right? a firewall?"
FEED_NO_DATA_FIX = "is dump1090/readsb running and its output port open? (`ss -tlnp`)"


def feed_kind(source: type[TcpFrameSource], usage: str) -> SourceKind[FeedOptions]:
    """The source kind of a network feed served by `source` (its scheme, host:port).

    A live feed: frames are timed by the wall clock, so the context's start_time does
    not apply.
    """

    def open_feed(url: str, options: FeedOptions, context: OpenContext) -> TcpFrameSource:
        return source(options.host, options.port, name=url)

    return SourceKind(
        scheme=source.scheme,
        prefix=f"{source.scheme}://",
        usage=usage,
        options=FeedOptions,
        locate=host_port,
        open=open_feed,
        cannot_open_fix=FEED_CANNOT_CONNECT_FIX,
        no_data_fix=FEED_NO_DATA_FIX,
    )
