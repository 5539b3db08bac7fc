"""`adsb-agent tail`: the MQTT feed as one readable line per message.

For a technician on the strip ("does the agent publish what I see overhead?") and
for an operator at the centre (`--site` omitted: every site). It subscribes to
`<prefix>/<site or +>/#` with a throw-away client id, so it never disturbs an agent
or a shared-subscription consumer, and prints positions, events, batched positions
(zlib JSON arrays), status, info and health, each on one line.

Whatever a site publishes reaches the operator's terminal: control characters in a
payload or topic (an ESC sequence can retitle the window, rewrite the screen or, on some
terminals, answer back as typed input) are shown as visible escapes, never sent raw.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import socket
import ssl
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from typing import IO, Any

from agent.config import SITE_NAME as _SITE
from agent.config import MqttConfig
from agent.outputs import topics
from agent.settings import unchecked_copy

log = logging.getLogger("agent.tail")

# Seconds of silence after subscribing before tail says why it may hear nothing.
QUIET_HINT_S = 10.0
# C0 controls but tab, DEL, C1 controls, and the line and paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _visible(char: re.Match[str]) -> str:
    code = ord(char.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character as a visible escape (ESC -> `\\x1b`)."""
    return _CONTROL.sub(_visible, text)


def connect_failure(err: BaseException | None, host: str, port: int, tls: bool) -> str:
    """Why a connection attempt failed, in words a technician acts on."""
    where = f"{host}:{port}"
    if isinstance(err, ssl.SSLCertVerificationError):
        return (
            f"cannot connect to {where}: certificate not trusted ({err.verify_message}): "
            "set mqtt.ca_file to the CA that signed it; check the clock"
        )
    if tls and isinstance(err, (ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        why = err.reason if isinstance(err, ssl.SSLError) and err.reason else str(err)
        return (
            f"cannot connect to {where}: TLS handshake failed ({why}): is {port} a TLS "
            "port? (mqtts:// is usually 8883, plain mqtt:// 1883)"
        )
    if isinstance(err, ConnectionRefusedError):
        return f"cannot connect to {where}: connection refused (nothing listens on port {port})"
    if isinstance(err, socket.gaierror):
        return f"cannot connect to {where}: unknown host {host!r} ({err.strerror})"
    if isinstance(err, (TimeoutError, socket.timeout)):
        return f"cannot connect to {where}: no answer (a firewall? the link down?)"
    if isinstance(err, OSError):
        return f"cannot connect to {where}: {err.strerror or err}"
    return f"cannot connect to {where}"


def _clock(ts: Any) -> str:
    try:
        return time.strftime("%H:%M:%S", time.localtime(float(ts)))
    except (TypeError, ValueError, OverflowError):
        return "--:--:--"


def _num(v: Any, fmt: str, unit: str = "") -> str:
    return "-" if v is None else f"{v:{fmt}}{unit}"


def position_line(r: dict[str, Any]) -> str:
    """`12:00:01 strip-01 E4A1B2 PTABC    -15.61230 -56.11870  1600 ft  AGL 1000 ...`."""
    where = (
        f"{r['lat']:9.5f} {r['lon']:10.5f}"
        if r.get("lat") is not None and r.get("lon") is not None
        else f"{'-':>9} {'-':>10}"
    )
    parts = [
        _clock(r.get("ts")),
        str(r.get("site", "?")),
        str(r.get("icao", "?")),
        f"{r.get('callsign') or '-':<8}",
        where,
        f"{_num(r.get('alt_baro_ft'), '>6', ' ft')}",
        f"AGL {_num(r.get('agl_ft'), '.0f', ' ft')}",
        f"{_num(r.get('gs_kt'), '.0f', ' kt')}",
        f"{_num(r.get('track_deg'), '03.0f', '°')}",
        f"{_num(r.get('vrate_fpm'), '+.0f', ' fpm')}",
        f"{_num(r.get('distance_km'), '.1f', ' km')}",
    ]
    if r.get("on_ground"):
        parts.append("GROUND")
    if r.get("squawk"):
        parts.append(f"sq {r['squawk']}")
    parts.append(",".join(r.get("tags") or []))
    return "  ".join(parts)


def event_line(r: dict[str, Any]) -> str:
    """`12:00:01 strip-01 E4A1B2 PTABC    EVENT track_start at ... [low,light]`."""
    kind = str(r.get("event", "?"))
    label = "EMERGENCY" if kind == "emergency_squawk" else "EVENT"
    at = (
        f" at {r['lat']:.5f} {r['lon']:.5f}"
        if r.get("lat") is not None and r.get("lon") is not None
        else ""
    )
    alt = f" {r['alt_baro_ft']} ft" if r.get("alt_baro_ft") is not None else ""
    squawk = f" squawk {r['squawk']}" if r.get("squawk") else ""
    tags = f" [{','.join(r['tags'])}]" if r.get("tags") else ""
    return (
        f"{_clock(r.get('ts'))}  {r.get('site', '?')}  {r.get('icao', '?')}  "
        f"{r.get('callsign') or '-':<8}  {label} {kind}{at}{alt}{squawk}{tags}"
    )


def health_line(site: str, h: dict[str, Any]) -> str:
    rates = h.get("rates", {})
    link = h.get("link", {})
    state = "up" if link.get("connected") else "down"
    return (
        f"{_clock(h.get('ts'))}  {site}  health: "
        f"{rates.get('frames_per_s', 0)} frames/s, {rates.get('positions_per_s', 0)} positions/s, "
        f"{h.get('aircraft', 0)} aircraft, link {state}, outbox {link.get('outbox_depth', 0)}"
    )


def describe(topic: str, payload: bytes, prefix: str = "adsb/v1") -> list[str]:
    """Lines for one MQTT message (several for a batch of positions), safe to print."""
    return [printable(line) for line in _describe(topic, payload, prefix)]


def _describe(topic: str, payload: bytes, prefix: str) -> list[str]:
    now = _clock(time.time())
    parsed = topics.parse(topic, prefix)
    kind = parsed.kind if parsed is not None else None
    site = parsed.site if parsed is not None else "?"
    try:
        if kind == topics.POSITIONS:
            return [position_line(r) for r in json.loads(zlib.decompress(payload))]
        if kind == topics.STATUS:
            return [f"{now}  {site}  status: {payload.decode('utf-8', 'replace')}"]
        data = json.loads(payload)
    except (ValueError, zlib.error):
        return [f"{now}  {topic}: {len(payload)} bytes, not JSON"]
    if kind == topics.POSITION:
        return [position_line(data)]
    if kind == topics.EVENTS:
        return [event_line(data)]
    if kind == topics.HEALTH:
        return [health_line(site, data)]
    if kind == topics.INFO:
        rx = data.get("receiver")
        where = f", receiver {rx[0]}, {rx[1]}" if rx else ""
        return [f"{now}  {site}  info: adsb-agent {data.get('version', '?')}{where}"]
    return [f"{now}  {topic}: {payload[:80].decode('utf-8', 'replace')}"]


def run_tail(
    cfg: MqttConfig,
    site: str | None,
    stop: threading.Event,
    *,
    out: IO[str] | None = None,
    on_subscribed: Callable[[], None] | None = None,
    quiet_hint_s: float = QUIET_HINT_S,
    password: str | None = None,
) -> int:
    """Print the feed until `stop` is set; returns the exit status (2: bad URL or site).

    `password` (asked at a terminal) stands in for one the URL and files do not give.

    Connection problems are printed once per distinct reason until the link is up again
    (refused, unknown host, TLS handshake...), and paho keeps reconnecting. A broker
    may grant a subscription its ACL then never serves (mosquitto does), so silence
    after `quiet_hint_s` (every agent leaves a retained status) earns one hint line.
    """
    from agent.errors import ConfigError
    from agent.outputs import mqtt_link

    stream = out or sys.stdout
    if not cfg.url:
        stream.write("adsb-agent tail: no broker (give --mqtt URL or --config FILE)\n")
        return 2
    if site is not None and not _SITE.fullmatch(site):
        stream.write(
            f"adsb-agent tail: --site {printable(site)!r} is not a site name: use 1-64 "
            "letters, digits, '-' or '_' (no MQTT wildcards; leave --site out for every site)\n"
        )
        return 2
    try:
        where = mqtt_link.endpoint(cfg)
        if password is not None and where.password is None:
            where = dataclasses.replace(where, password=password)
        client = mqtt_link.make_client(cfg, where, f"adsb-agent-tail-{uuid.uuid4().hex[:8]}")
    except ConfigError as err:
        stream.write(f"adsb-agent tail: {'; '.join(err.problems)}\n")
        return 2
    host, port, user = where.host, where.port, where.user
    topic = topics.subscription(cfg.topic_prefix, site)
    lock = threading.Lock()
    said: set[str] = set()  # problems told since the link was last up
    subscribed_at = [0.0]
    received = [0]

    def emit(lines: list[str]) -> None:
        with lock:
            for line in lines:
                stream.write(line + "\n")
            stream.flush()

    def problem(text: str) -> None:
        if text not in said:
            said.add(text)
            emit([f"-- {text}; retrying"])

    def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            problem(f"broker {host}:{port} refused: {rc}")
            return
        said.clear()
        client.subscribe(topic, qos=1)

    def on_connect_fail(client: Any, userdata: Any) -> None:
        # paho calls this from inside its `except OSError:` around the connect, so the
        # exception being handled is the reason.
        problem(connect_failure(sys.exc_info()[1], host, port, where.tls))

    def on_subscribe(client: Any, userdata: Any, mid: Any, rcs: Any, props: Any) -> None:
        if any(rc.is_failure for rc in rcs):
            problem(
                f"subscription to {topic} refused ({rcs[0]}): the broker's ACL must let "
                f"{user or 'this client'} read it (e.g. `pattern read adsb/v1/%u/#`)"
            )
            return
        emit([f"-- subscribed to {topic} on {host}:{port}"])
        subscribed_at[0] = time.monotonic()
        if on_subscribed is not None:
            on_subscribed()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        received[0] += 1
        try:
            emit(describe(msg.topic, msg.payload, cfg.topic_prefix))
        except Exception as err:  # one odd message must not end the tail
            emit([f"-- {msg.topic}: cannot show: {err}"])

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_connect_fail = on_connect_fail
    client.reconnect_delay_set(1, 30)
    client.connect_async(host, port, keepalive=cfg.keepalive_s)
    client.loop_start()
    try:
        while not stop.wait(0.2):
            quiet = subscribed_at[0] and time.monotonic() - subscribed_at[0] > quiet_hint_s
            if quiet and not received[0]:
                subscribed_at[0] = 0.0  # say it once
                emit(
                    [
                        f"-- nothing in {quiet_hint_s:g} s, not even the retained status: "
                        f"no agent has published under {topic}, or the broker's ACL does not "
                        f"let {user or 'anonymous clients'} read it "
                        "(e.g. `pattern read adsb/v1/%u/#`)"
                    ]
                )
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


def main(
    mqtt_url: str | None,
    site: str | None,
    config: str | None,
    *,
    password_file: str | None = None,
) -> int:
    """`adsb-agent tail`: the configured broker and site unless told otherwise; at a
    terminal, asks for a password the URL's user lacks."""
    import signal

    from agent.config import DEFAULT_CONFIG, DEFAULT_CREDENTIAL, load_config
    from agent.errors import ConfigError
    from agent.outputs.mqtt_link import with_credential

    path = config
    if path is None:
        try:
            path = str(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else None
        except PermissionError:  # /etc/adsb-agent is 0750: root's and the service's
            if not mqtt_url:
                raise ConfigError(
                    [f"{DEFAULT_CONFIG}: permission denied: run with sudo, or give --mqtt URL"]
                ) from None
    cfg = load_config(path) if path else None
    mqtt = cfg.mqtt if cfg is not None else MqttConfig()
    if mqtt_url:
        mqtt = unchecked_copy(mqtt, url=mqtt_url)
    elif site is None and cfg is not None:
        site = cfg.site.name  # on the strip: this site's feed
    if password_file:
        mqtt = unchecked_copy(mqtt, password_file=password_file)
    if cfg is not None:
        mqtt = with_credential(mqtt, DEFAULT_CREDENTIAL)
    try:
        password = _ask_password(mqtt)
    except (KeyboardInterrupt, EOFError):
        sys.stderr.write("\n")
        return 130
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return run_tail(mqtt, site, stop, password=password)


def _ask_password(mqtt: MqttConfig) -> str | None:
    """The password typed at a terminal when the URL names a user and nothing else gives
    the password; None otherwise (a bad URL is left for run_tail to report)."""
    from agent.errors import ConfigError
    from agent.outputs import mqtt_link

    if not mqtt.url:
        return None
    try:
        where = mqtt_link.endpoint(mqtt)
    except ConfigError:
        return None
    return mqtt_link.ask_password(where).password if where.password is None else None
