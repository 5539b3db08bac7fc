"""Command line: `adsb-agent run | demo | check | status | tail | replay | demod`.

`main(argv) -> int` so tests call it in-process; exit codes follow the systemd
contract in agent.errors (64 = configuration error, do not restart).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

from agent import __version__
from agent.demod import DemodOptions
from agent.demod.heap import keep_heap_headroom
from agent.errors import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_USAGE,
    AgentError,
    ConfigError,
    OutputClosed,
    SourceError,
)

log = logging.getLogger("agent")


def _setup_logging(verbose: bool) -> None:
    from agent.logs import setup_logging

    setup_logging(verbose)  # journald fields under systemd, plain stderr lines elsewhere


def _add_site_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site-lat", type=float, help="receiver latitude (degrees)")
    p.add_argument("--site-lon", type=float, help="receiver longitude (degrees)")
    p.add_argument("--site-elevation-ft", type=float, help="receiver elevation (ft)")
    p.add_argument(
        "--site-geoid-m",
        type=float,
        help="geoid height at the site (EGM96 N, m): GNSS altitude minus it is above sea level",
    )


class _HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default where it has one worth saying (not None or False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and action.option_strings
            and default not in (None, False, argparse.SUPPRESS)
            and not isinstance(default, list)
        ):
            text += " (default %(default)s)"
        return text


def _add_password_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mqtt-password-file",
        metavar="FILE",
        help="broker password, alone on the file's first line (or $ADSB_AGENT_MQTT_PASSWORD; "
        "a password in the URL shows in `ps`)",
    )


_EPILOG = """The broker password: in a file (--mqtt-password-file, mqtt.password_file), in
$ADSB_AGENT_MQTT_PASSWORD, or asked for at a terminal by `tail` and `check` when the URL
names a user without one. Exit codes: 0 ok, 1 runtime failure, 2 usage,
64 invalid configuration.
"""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="adsb-agent",
        description="ADS-B edge agent: receive, keep low-flying general aviation, publish.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demod", help="demodulate IQ; print each accepted frame as *HEX; (AVR)")
    d.add_argument("--rate", default="2.4e6", help="sample rate: 2.0e6 or 2.4e6")
    d.add_argument("--format", default="uc8", choices=("uc8", "sc16"))
    d.add_argument("--mlat", action="store_true", help="@TTTTTTTTTTTTHEX; (12 MHz ticks first)")
    _add_demod_args(d)
    d.add_argument("file", help="IQ file, or - for standard input")

    r = sub.add_parser("replay", help="print the records the agent would publish for a recording")
    r.add_argument("--all", action="store_true", help="turn the GA filter off")
    r.add_argument("--rate", default="2.4e6", help="IQ sample rate: 2.0e6 or 2.4e6")
    r.add_argument("--format", default="uc8", choices=("uc8", "sc16", "beast", "avr"))
    r.add_argument("--config", help="TOML configuration (filter and site settings)")
    r.add_argument(
        "--start-time",
        metavar="ISO8601|UNIX_SECONDS",
        help="UTC time of the recording's first frame; later frames follow the recording's "
        "own clock (default: the wall clock now, so times depend on when you replay)",
    )
    _add_site_args(r)
    r.add_argument("file", help="recording, or - for standard input")

    run = sub.add_parser("run", help="the daemon")
    run.add_argument("--config", help="TOML configuration file")
    run.add_argument("--source", action="append", help="source URL (repeatable)")
    run.add_argument("--mqtt", help="mqtt://[user:pass@]host:port or mqtts://...")
    run.add_argument("--site", help="site name (MQTT topic level)")
    run.add_argument("--state-dir", help="directory for persistent state")
    run.add_argument("--all", action="store_true", help="turn the GA filter off")
    run.add_argument("--stdout", action="store_true", help="also print records as JSON lines")
    run.add_argument("--status-file", help="status JSON (default $RUNTIME_DIRECTORY/status.json)")
    run.add_argument("--http-port", type=int, help="serve the technician's page on this port")
    run.add_argument("--http-bind", help="address for the page (default 127.0.0.1)")
    _add_password_arg(run)
    _add_site_args(run)
    _add_net_args(run)

    demo = sub.add_parser("demo", help="built-in simulated scenario, no dongle or broker needed")
    demo.add_argument("--all", action="store_true", help="turn the GA filter off")
    demo.add_argument("--duration", type=float, default=300.0, help="scenario seconds")
    demo.add_argument("--mqtt", help="also publish to this broker")
    demo.add_argument("--state-dir", help="outbox directory with --mqtt (default: a temp dir)")
    _add_password_arg(demo)

    chk = sub.add_parser("check", help="self-check: config, dongle, source, broker, clock, disk")
    chk.add_argument("--config", help="TOML configuration (default /etc/adsb-agent/agent.toml)")
    chk.add_argument("--source", action="append", help="listen to this source URL (repeatable)")
    chk.add_argument("--mqtt", help="broker URL instead of the configured one")
    _add_password_arg(chk)

    st = sub.add_parser("status", help="show the running agent's status file")
    st.add_argument(
        "--status-file",
        help="default /run/adsb-agent/status.json (the service's); an agent run by hand "
        "writes one only with `run --status-file FILE`",
    )
    st.add_argument("--json", action="store_true", help="print the raw JSON")

    tl = sub.add_parser("tail", help="print the MQTT feed, one line per update and event")
    tl.add_argument("--mqtt", help="broker URL (default: the configured one)")
    tl.add_argument("--site", help="one site (default: the configured site with no --mqtt, else +)")
    tl.add_argument("--config", help="TOML configuration for TLS/credentials")
    _add_password_arg(tl)
    for command in sub.choices.values():  # here, so options added above get it too
        command.formatter_class = _HelpFormatter
    return ap


# readsb's option names for the raw feeds, and the `[net]` keys they set.
_NET_OPTIONS = (
    ("--net-bo-port", "bo_port", int, "Beast binary output port (readsb 30005; 0 = off)"),
    ("--net-ro-port", "ro_port", int, "AVR *HEX; output port (readsb 30002; 0 = off)"),
    ("--net-sbs-port", "sbs_port", int, "BaseStation output port (readsb 30003; 0 = off)"),
    ("--net-bind-address", "bind_address", str, "address the ports listen on (127.0.0.1)"),
    ("--write-json", "json_dir", str, "write aircraft.json, receiver.json, stats.json here"),
    ("--write-json-every", "json_interval_s", float, "seconds between JSON writes (1)"),
)


def _add_net_args(p: argparse.ArgumentParser) -> None:
    for option, key, kind, text in _NET_OPTIONS:
        p.add_argument(option, dest=f"net_{key}", type=kind, help=text)
    p.add_argument(
        "--net-ro-timestamps",
        dest="net_ro_timestamps",
        action="store_true",
        help="AVR lines with the 12 MHz counter, @TTTTTTTTTTTTHEX; (dump1090 --mlat)",
    )
    p.add_argument(
        "--net-selected-only",
        dest="net_selected_only",
        action="store_true",
        help="raw feeds and JSON carry only aircraft the GA filter selected",
    )


def main(argv: Sequence[str] | None = None) -> int:
    keep_heap_headroom()  # process-wide, so here where the process starts (see its module)
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return _COMMANDS[args.command](args)
    except ConfigError as err:
        print(f"adsb-agent: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except AgentError as err:
        print(f"adsb-agent: {err}", file=sys.stderr)
        return EXIT_RUNTIME
    except (BrokenPipeError, OutputClosed):
        _stdout_gone()
        return EXIT_OK  # `| head` closed the pipe: not an error


def _stdout_gone() -> None:
    """Point standard output at /dev/null, so the interpreter's final flush of what is
    still buffered does not print a BrokenPipeError after the command ended quietly."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return  # not a real file (tests capture it): nothing is flushed at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _add_demod_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--repair-bits",
        type=int,
        choices=(1, 2, 3),
        default=DemodOptions.repair_bits,
        help="most bits the demodulator repairs in one frame (default %(default)s)",
    )
    p.add_argument(
        "--retry-weak",
        action="store_true",
        help="decide weak replies slicing could not decode again with the trellis",
    )


def _cmd_demod(args: argparse.Namespace) -> int:
    from agent.sources import open_file_source, parse_rate

    opts = DemodOptions(repair_bits=args.repair_bits, retry_weak=args.retry_weak)
    try:
        src = open_file_source(args.file, args.format, parse_rate(args.rate), demod=opts)
    except SourceError as err:
        raise ConfigError([str(err)]) from None
    out = sys.stdout
    written = 0
    for frame in src.frames(threading.Event()):
        mlat = f"@{frame.ticks_12mhz or 0:012X}" if args.mlat else "*"
        out.write(f"{mlat}{frame.hex};\n")
        written += 1
    out.flush()
    _log_counts("demod", src.counts)
    if not written:
        return _nothing_decoded(src.name, args.format)
    return EXIT_OK


def _nothing_decoded(name: str, fmt: str) -> int:
    """Exit code 1, said on stderr: an empty result is a failure, not a quiet success.

    A wrong --format or a file that is not a recording would otherwise exit 0 with no
    output; the source has already warned what the bytes look like when it could tell.
    """
    print(f"adsb-agent: nothing decoded from {name} read as {fmt}", file=sys.stderr)
    return EXIT_RUNTIME


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line values laid over the TOML document, validated with it."""
    from agent.config import read_toml

    data: dict[str, Any] = read_toml(args.config) if getattr(args, "config", None) else {}
    site = data.setdefault("site", {})
    for key in ("lat", "lon", "elevation_ft", "geoid_m"):
        value = getattr(args, f"site_{key}", None)
        if value is not None:
            site[key] = value
    if getattr(args, "site", None):
        site["name"] = args.site
    if getattr(args, "all", False):
        data.setdefault("filter", {})["enabled"] = False
    if getattr(args, "source", None):
        data["sources"] = args.source
    if getattr(args, "mqtt", None):
        data.setdefault("mqtt", {})["url"] = args.mqtt
    if getattr(args, "state_dir", None):
        data["state_dir"] = args.state_dir
    if getattr(args, "mqtt_password_file", None):
        data.setdefault("mqtt", {})["password_file"] = args.mqtt_password_file
    if getattr(args, "stdout", False):
        data["stdout"] = True
    for key in ("port", "bind"):
        value = getattr(args, f"http_{key}", None)
        if value is not None:
            data.setdefault("http", {})[key] = value
    for key in [k for _o, k, _t, _h in _NET_OPTIONS] + ["ro_timestamps", "selected_only"]:
        value = getattr(args, f"net_{key}", None)
        if value is not None and value is not False:
            data.setdefault("net", {})[key] = value
    return data


def _cmd_replay(args: argparse.Namespace) -> int:
    from agent.config import build_config
    from agent.outputs.stdout import StdoutPublisher
    from agent.pipeline import Pipeline, run_sources
    from agent.sources import open_file_source, parse_rate
    from agent.sources.file import start_time_value

    if args.start_time is None:
        start_time = round(time.time(), 3)
        log.warning(
            "no --start-time: the recording is placed at the wall clock now (%s UTC); "
            "track_id and night_flight depend on when it is replayed",
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start_time)),
        )
    else:
        try:
            start_time = start_time_value(args.start_time)
        except ValueError as err:
            print(f"adsb-agent: --start-time {args.start_time!r}: {err}", file=sys.stderr)
            return EXIT_USAGE
    cfg = build_config(_overrides(args))
    pipeline = Pipeline(cfg, [StdoutPublisher()])
    try:
        src = open_file_source(
            args.file,
            args.format,
            parse_rate(args.rate),
            start_time=start_time,
            verifier=pipeline.verifier,
        )
    except SourceError as err:
        raise ConfigError([str(err)]) from None
    run_sources([src], pipeline, threading.Event())
    pipeline.finish()
    sys.stdout.flush()
    _log_counts(src.name, src.counts)
    _log_counts("pipeline", pipeline.stats())
    accepted = sum(v for k, v in pipeline.verifier.counts.items() if k.startswith("accepted_"))
    if not accepted:
        return _nothing_decoded(src.name, args.format)
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from agent.app import App
    from agent.config import build_config
    from agent.logs import set_site
    from agent.status import default_status_path

    cfg = build_config(_overrides(args))
    set_site(cfg.site.name)
    app = App(cfg, status_path=args.status_file or default_status_path())
    app.install_signal_handlers()
    try:
        app.start()
        sources = ", ".join(s.url for s in cfg.sources)
        log.info("started: site %s, sources %s", cfg.site.name, sources)
        app.run()
    finally:
        app.stop()
        if app.pipeline is not None:
            _log_counts("pipeline", app.pipeline.stats())
    log.info("stopped")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from agent.app import App
    from agent.config import build_config
    from agent.sim import scenario

    data: dict[str, Any] = {
        "site": {
            "name": "demo",
            "lat": scenario.SITE_LAT,
            "lon": scenario.SITE_LON,
            "elevation_ft": scenario.SITE_ELEVATION_FT,
        },
        "filter": {"enabled": not args.all},
        "stdout": True,
    }
    if args.mqtt:
        data["mqtt"] = {"url": args.mqtt}
        if args.mqtt_password_file:
            data["mqtt"]["password_file"] = args.mqtt_password_file
        data["state_dir"] = args.state_dir or tempfile.mkdtemp(prefix="adsb-agent-demo-")
    cfg = build_config(data)
    frames, _truth = scenario.demo_frames(duration_s=args.duration)
    app = App(cfg)
    try:
        app.start(with_sources=False)
        assert app.pipeline is not None
        app.feed(frames)
    finally:
        app.stop()
    if app.pipeline is not None:
        _log_counts("demo", app.pipeline.stats())
    return EXIT_OK


def _log_counts(what: str, counts: dict[str, int]) -> None:
    if counts:
        log.info("%s: %s", what, " ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def _cmd_check(args: argparse.Namespace) -> int:
    from agent.check import main as check_main

    return check_main(
        args.config,
        sources=args.source,
        mqtt_url=args.mqtt,
        password_file=args.mqtt_password_file,
    )


def _cmd_status(args: argparse.Namespace) -> int:
    from agent.status import main as status_main

    return status_main(args.status_file, as_json=args.json)


def _cmd_tail(args: argparse.Namespace) -> int:
    from agent.tail import main as tail_main

    return tail_main(args.mqtt, args.site, args.config, password_file=args.mqtt_password_file)


_COMMANDS = {
    "demod": _cmd_demod,
    "replay": _cmd_replay,
    "run": _cmd_run,
    "demo": _cmd_demo,
    "check": _cmd_check,
    "status": _cmd_status,
    "tail": _cmd_tail,
}
