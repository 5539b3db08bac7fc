"""The web server inside the agent: one page, its three assets and the JSON behind it.

The standard library's ThreadingHTTPServer: a Pi serves a few phones, so a thread per
client is cheaper than a framework. The page follows the agent through one
server-sent-event stream (`/api/stream`: aircraft twice a second, health every
second, new events as they come), which a browser reconnects by itself and which
carries the Basic credentials the browser already holds; the same data is at plain
JSON endpoints for scripts and for the plots, which change slowly.

Endpoints (GET; JSON unless said):
    /                 the page (HTML); /app.js, /style.css its assets
    /api/status       health badges: state (green/amber/red/grey), text, fix
    /api/aircraft     every tracked aircraft, with its trail and why it is selected
    /api/events       the last events, newest first (?after=N: only newer than N)
    /api/coverage     furthest position per degree of bearing over 24 h
    /api/history      24 h of messages/s, positions/s, aircraft, noise floor; signal histogram
    /api/map          what the map draws that does not move: site, rings, geofences, aerodromes
    /api/stream       text/event-stream of `aircraft`, `status` and `events` messages
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from agent.outputs.base import Output
from agent.outputs.web.auth import REALM, Gate

if TYPE_CHECKING:
    from agent.frame import Frame
    from agent.outputs.web.state import WebState

log = logging.getLogger("agent.web")

ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
# Seconds between aircraft messages on the stream (the page is this far behind at most,
# plus the network); health goes every second step.
STREAM_STEP_S = 0.5
SAMPLE_EVERY_S = 1.0
# Headers on every answer: nothing cached (the data is sensitive and live), nothing
# from elsewhere, no referrer leaking the address, no framing by another page.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _asset(name: str) -> bytes:
    return (resources.files("agent.outputs.web") / "static" / name).read_bytes()


class WebServer(Output):
    """The page's server as one of the agent's outputs (frames and records go to its
    WebState; `close` stops the server).

    Args:
        state: what the page shows.
        bind, port: where to listen.
        gate: the password check (open on loopback without a password).
        static_map: the map's fixed layers (agent.outputs.web.mapdata).
    """

    def __init__(
        self, state: WebState, bind: str, port: int, gate: Gate, static_map: dict[str, Any]
    ):
        self.state = state
        self.gate = gate
        self.static_map = static_map
        self.counts: Counter[str] = Counter()
        self.stopping = threading.Event()
        self.assets = {path: (_asset(name), ctype) for path, (name, ctype) in ASSETS.items()}
        # The pipeline calls these for every frame and record: no extra hop.
        self.on_frame = state.on_frame  # type: ignore[method-assign]
        self.httpd = _Httpd((bind, port), _Handler)
        self.httpd.web = self
        self.address = self.httpd.server_address
        self._threads = [
            threading.Thread(target=self.httpd.serve_forever, name="web-server", daemon=True),
            threading.Thread(target=self._sample, name="web-sampler", daemon=True),
        ]

    def start(self) -> WebServer:
        for t in self._threads:
            t.start()
        host, port = self.address[:2]
        log.info(
            "technician's page at http://%s:%d/ (%s)",
            host,
            port,
            "loopback only" if self.gate.open else "password required",
        )
        return self

    def _sample(self) -> None:
        while not self.stopping.wait(SAMPLE_EVERY_S):
            try:
                self.state.sample()
            except Exception:  # the page must not take the agent down
                log.exception("web sampler failed; trying again in a second")

    def publish(self, record: dict[str, Any]) -> None:
        self.state.publish(record)

    def on_frame(self, frame: Frame) -> None:  # replaced per instance in __init__
        self.state.on_frame(frame)

    def close(self) -> None:
        self.stopping.set()
        if self._threads[0].is_alive():  # shutdown() waits for serve_forever to return
            self.httpd.shutdown()
        self.httpd.server_close()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=2.0)


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    web: WebServer


class _Handler(BaseHTTPRequestHandler):
    server: _Httpd
    server_version = "adsb-agent"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go in two writes; without this, Nagle and the client's
        # delayed ACK hold every keep-alive answer back 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only (no headers, so never a credential), at debug level.
        log.debug("%s " + format, self.client_address[0], *args)

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        web = self.server.web
        web.counts["requests"] += 1
        if not web.gate.allows(self.headers.get("Authorization")):
            web.counts["refused"] += 1
            self._send(
                HTTPStatus.UNAUTHORIZED,
                b"password required\n",
                "text/plain; charset=utf-8",
                head,
                {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
            )
            return
        if web.gate.open and not _local_host(self.headers.get("Host")):
            # DNS rebinding: a site on the internet that points its own name at
            # 127.0.0.1 would read the unlocked loopback page through the browser.
            web.counts["refused_host"] += 1
            self._send(HTTPStatus.FORBIDDEN, b"unknown host\n", "text/plain", head)
            return
        url = urlsplit(self.path)
        if url.path in web.assets:
            body, ctype = web.assets[url.path]
            self._send(HTTPStatus.OK, body, ctype, head)
            return
        if url.path == "/api/stream":
            self._stream(web)
            return
        data = self._api(web, url.path, parse_qs(url.query))
        if data is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8", head)
            return
        body = json.dumps(data, separators=(",", ":")).encode()
        self._send(HTTPStatus.OK, body, "application/json", head)

    def _api(self, web: WebServer, path: str, query: dict[str, list[str]]) -> Any:
        state = web.state
        if path == "/api/status":
            return state.status_json()
        if path == "/api/aircraft":
            return state.aircraft_json()
        if path == "/api/events":
            try:
                after = int(query.get("after", ["0"])[0])
            except ValueError:
                after = 0
            return state.events_json(after)
        if path == "/api/coverage":
            return state.coverage_json()
        if path == "/api/history":
            return state.history_json()
        if path == "/api/map":
            return web.static_map
        return None

    def _send(
        self,
        code: HTTPStatus,
        body: bytes,
        ctype: str,
        head: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _stream(self, web: WebServer) -> None:
        """Server-sent events until the client goes or the agent stops."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        for k, v in SECURITY_HEADERS.items():
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        web.counts["streams"] += 1
        state = web.state
        last_event = 0
        step = 0
        try:
            while not web.stopping.is_set():
                parts = [_sse("aircraft", state.aircraft_json())]
                if step % 2 == 0:
                    parts.append(_sse("status", state.status_json()))
                    events = state.events_json(last_event)["events"]
                    if events or step == 0:
                        last_event = max([e["n"] for e in events], default=last_event)
                        parts.append(_sse("events", {"events": events}))
                self.wfile.write(b"".join(parts))
                self.wfile.flush()
                step += 1
                web.stopping.wait(STREAM_STEP_S)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the page was closed


def _local_host(host: str | None) -> bool:
    """A Host header naming this machine by address or as localhost."""
    if not host:
        return False
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _sse(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
