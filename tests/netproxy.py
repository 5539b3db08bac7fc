"""A TCP proxy the tests can cut: a real link between agent and broker that fails on demand."""

from __future__ import annotations

import socket
import threading

from tests.helpers import TcpServer


class CuttableProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:target; `cut()` drops every connection and,
    while `down`, new connections are closed at once (a link that is out)."""

    def __init__(self, target: int):
        self.target = target
        self.down = False
        self.bytes_up = 0  # client -> target
        self.bytes_down = 0  # target -> client
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = TcpServer(self._connect, name="proxy-accept").start()
        self.port = self._server.port

    def _connect(self, client: socket.socket) -> None:
        client.settimeout(None)  # accepted from a listener with a timeout
        if self.down:
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=2)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)  # the connect timeout must not cut idle links
        with self._lock:
            self._conns += [client, upstream]
        for a, b, up in ((client, upstream, True), (upstream, client, False)):
            threading.Thread(target=self._pipe, args=(a, b, up), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self._server.close()
        self.cut()
