"""One TCP server thread for every raw feed port (Beast, AVR, SBS), so no client can
slow the pipeline.

The pipeline thread only hands bytes to a `Feed` (`send`: a deque append, never a
socket call, never a wait). The `net-server` thread, a single selector loop over
non-blocking sockets, accepts clients, moves what the feeds queued into each client's
own bounded buffer and writes what the sockets take. A client that falls further
behind than its buffer allows (it never reads, its link is too slow) is dropped and
counted, as readsb drops them; one that closes or resets is removed. Connects and
disconnects are logged once each.

Counters (`counts`, reported by the owning output in health): clients_connected,
clients_disconnected, clients_dropped_slow, clients_refused_full, bytes_out (server
thread), and <feed>_backlog_dropped (pipeline thread: the server thread itself
fell behind by more than MAX_BACKLOG messages, e.g. a starved CPU).
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections import Counter, deque
from dataclasses import dataclass, field

log = logging.getLogger("agent.outputs.net")

# How often queued bytes go out: readsb's default net flush interval is 50 ms too;
# mlat-client works on the counter in each message, not on arrival time.
FLUSH_INTERVAL_S = 0.05
# Messages a feed may hold for the server thread before new ones are dropped (counted):
# many seconds of a busy site, a bound on memory if the server thread stalls.
MAX_BACKLOG = 100_000
# The kernel's send buffer per client. Left alone, Linux grows it up to tcp_wmem's
# maximum (4 MiB), so a client that never reads would hold megabytes in the kernel
# before our own bounded buffer sees it fall behind; fixed, the client's buffer size
# is what decides. Enough for a feed's rate over a slow link (the kernel doubles it).
KERNEL_SEND_BUFFER = 64 * 1024
_RECV_BYTES = 4096
_LISTEN_BACKLOG = 16


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    peer: str
    feed: Feed
    buffer: bytearray = field(default_factory=bytearray)
    writing: bool = False  # registered for EVENT_WRITE


class Feed:
    """One listening port; `send` is for the pipeline thread, the rest for the server."""

    def __init__(self, name: str, listener: socket.socket, counts: Counter[str]):
        self.name = name
        self.listener = listener
        self.port: int = listener.getsockname()[1]
        # How many clients are connected: the pipeline skips encoding when there are
        # none (an int the server thread writes and the pipeline thread reads).
        self.clients = 0
        self._queue: deque[bytes] = deque()
        self._queued = 0  # written by the pipeline thread only
        self._taken = 0  # written by the server thread only
        self._counts = counts
        self._members: set[_Client] = set()

    def send(self, data: bytes) -> None:
        """Queue bytes for every client of this port; called from the pipeline thread."""
        if self._queued - self._taken >= MAX_BACKLOG:
            self._counts[f"{self.name}_backlog_dropped"] += 1
            return
        self._queue.append(data)
        self._queued += 1

    def _take(self) -> bytes:
        """Everything queued so far, joined (server thread)."""
        parts = []
        popleft = self._queue.popleft
        try:
            while True:
                parts.append(popleft())
        except IndexError:
            pass
        self._taken += len(parts)
        return b"".join(parts)


class NetServer:
    """The `net-server` thread and its sockets.

    Args:
        bind_address: where the ports listen (127.0.0.1 unless the LAN is configured).
        client_buffer_bytes: how far one client may fall behind before it is dropped.
        max_clients: clients per port; more are refused at once (and counted).
    """

    def __init__(self, bind_address: str, *, client_buffer_bytes: int, max_clients: int):
        self.bind_address = bind_address
        self.client_buffer_bytes = client_buffer_bytes
        self.max_clients = max_clients
        self.feeds: list[Feed] = []
        self.counts: Counter[str] = Counter()
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="net-server", daemon=True)
        self.failed: str | None = None  # why the server thread died, if it did

    def listen(self, name: str, port: int) -> Feed:
        """Bind and listen now (before the agent says it is ready); OSError if taken."""
        sock = socket.create_server(
            (self.bind_address, port), backlog=_LISTEN_BACKLOG, reuse_port=False
        )
        sock.setblocking(False)
        feed = Feed(name, sock, self.counts)
        self.feeds.append(feed)
        self._selector.register(sock, selectors.EVENT_READ, feed)
        log.info("%s feed listening on %s:%d", name, self.bind_address, feed.port)
        return feed

    def start(self) -> NetServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Send what is queued (briefly), then close every socket."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        for feed in self.feeds:
            for client in list(feed._members):
                self._remove(client, None)
            feed.listener.close()
        self._selector.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.failed is None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for key, mask in self._selector.select(timeout=FLUSH_INTERVAL_S):
                    if isinstance(key.data, Feed):
                        self._accept(key.data)
                    else:
                        self._service(key.data, mask)
                self._distribute()
            self._distribute()  # the last frames before a clean stop
        except Exception as err:  # a bug here must not go unnoticed in the status
            self.failed = f"{type(err).__name__}: {err}"
            log.exception("net server thread failed; the raw feeds stop, the rest goes on")

    def _accept(self, feed: Feed) -> None:
        while True:
            try:
                sock, addr = feed.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                log.warning("%s feed: accept failed: %s", feed.name, err.strerror)
                return
            peer = f"{addr[0]}:{addr[1]}"
            if len(feed._members) >= self.max_clients:
                self.counts["clients_refused_full"] += 1
                log.warning(
                    "%s feed: refused %s, already %d clients", feed.name, peer, self.max_clients
                )
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER)
            client = _Client(sock, peer, feed)
            feed._members.add(client)
            feed.clients = len(feed._members)
            self._selector.register(sock, selectors.EVENT_READ, client)
            self.counts["clients_connected"] += 1
            log.info("%s feed: client %s connected", feed.name, peer)

    def _service(self, client: _Client, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            try:
                # What clients send (Beast settings commands) is ignored; EOF is not.
                if not client.sock.recv(_RECV_BYTES):
                    self._remove(client, "disconnected")
                    return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as err:
                self._remove(client, f"disconnected ({err.strerror})")
                return
        if mask & selectors.EVENT_WRITE:
            self._flush(client)

    def _distribute(self) -> None:
        limit = self.client_buffer_bytes
        for feed in self.feeds:
            data = feed._take()
            if not data:
                continue
            for client in list(feed._members):
                client.buffer += data
                if len(client.buffer) > limit:
                    self._remove(
                        client,
                        f"dropped: more than {limit} bytes behind",
                        "clients_dropped_slow",
                    )
                    continue
                self._flush(client)

    def _flush(self, client: _Client) -> None:
        if client.buffer:
            try:
                sent = client.sock.send(client.buffer)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as err:
                self._remove(client, f"disconnected ({err.strerror})")
                return
            del client.buffer[:sent]
            self.counts["bytes_out"] += sent
        want_write = bool(client.buffer)
        if want_write != client.writing:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
            self._selector.modify(client.sock, events, client)
            client.writing = want_write

    def _remove(
        self, client: _Client, why: str | None, counter: str = "clients_disconnected"
    ) -> None:
        feed = client.feed
        if client not in feed._members:
            return
        feed._members.discard(client)
        feed.clients = len(feed._members)
        try:
            self._selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()
        if why is not None:
            self.counts[counter] += 1
            log.info("%s feed: client %s %s", feed.name, client.peer, why)
