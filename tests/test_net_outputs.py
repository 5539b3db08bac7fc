"""The raw feeds (Beast, AVR, SBS) and the JSON files, read by real peers.

dump1090-mutability is the consumer of record: fed the agent's Beast output through
socat it must build the same aircraft as when fed the same recording directly. Slow,
stuck, many and vanishing clients must never hold up decoding or MQTT delivery.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import build_config
from agent.errors import ConfigError
from agent.frame import Frame
from agent.notify import Notifier
from agent.outbox import Outbox
from agent.outputs.base import Output
from agent.outputs.mqtt import MqttPublisher
from agent.outputs.net import NetOutput, build_net_outputs, frame_address
from agent.outputs.net_formats import avr_line, beast_frame, sbs_line, signal_byte
from agent.pipeline import Pipeline
from agent.service import ServiceMonitor, pipeline_probe
from agent.sources import open_file_source
from agent.sources.stream import signal_dbfs
from tests.conftest import free_port, shared_data, wait_port
from tests.helpers import wait_until
from tests.mqtt_helpers import Subscriber

BEAST_REC = "beast/traffic_sample_dump1090.bin"
IQ_REC = "iq/modes1_2400.uc8"  # 2.4 MS/s UC8: dump1090 --ifile reads it as is
SBS_LINE = re.compile(
    r"MSG,[1-8],1,1,[0-9A-F]{6},1,\d{4}/\d\d/\d\d,\d\d:\d\d:\d\d\.\d{3},"
    r"\d{4}/\d\d/\d\d,\d\d:\d\d:\d\d\.\d{3}(,[^,]*){12}\r\n"
)


def _recording(relpath: str, start: float = 1_767_225_600.0) -> list[Frame]:
    src = open_file_source(str(shared_data(relpath)), "beast", start_time=start)
    return list(src.frames(threading.Event()))


class _Tap(Output):
    """Keeps every frame the CRC gate let through (what the raw feeds must carry)."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.counts: Counter[str] = Counter()

    def publish(self, record: dict[str, Any]) -> None:
        pass

    def on_frame(self, frame: Frame) -> None:
        self.frames.append(frame)


class _Reader(threading.Thread):
    """A client that reads everything until EOF (or closes after `vanish_after` bytes,
    with a reset when `reset`)."""

    def __init__(self, port: int, vanish_after: int | None = None, reset: bool = False):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.vanish_after = vanish_after
        self.reset = reset
        self.data = bytearray()
        self.start()

    def run(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                self.data += chunk
                if self.vanish_after is not None and len(self.data) >= self.vanish_after:
                    if self.reset:  # RST instead of FIN: the server's next send fails
                        self.sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    break
        except OSError:
            pass
        finally:
            self.sock.close()


def _net_cfg(tmp_path: Path, **net: Any) -> Any:
    return build_config(
        {"filter": {"enabled": False}, "state_dir": str(tmp_path / "state"), "net": net}
    )


def _outputs(pipeline: Pipeline, cfg: Any) -> list[Output]:
    outputs = build_net_outputs(
        cfg,
        aircraft=pipeline.tracker.aircraft.values,
        selected=pipeline.selections.__contains__,
    )
    return [out.start() for out in outputs]


# --- formats, byte for byte -------------------------------------------------------


def test_beast_message_escapes_every_0x1a_after_the_lead_and_carries_ticks_and_signal():
    msg = bytes.fromhex("8D1A1A1A58C382D690C8AC2863A7")  # 0x1a inside the message
    frame = Frame(msg, 0.0, signal_dbfs=signal_dbfs(0x1A), ticks_12mhz=0x1A0000001A1A)
    escaped_ticks = "1a1a0000001a1a1a1a"  # 1a 00 00 00 1a 1a
    escaped_signal = "1a1a"
    escaped_msg = "8d1a1a1a1a1a1a58c382d690c8ac2863a7"
    expected = "1a33" + escaped_ticks + escaped_signal + escaped_msg
    assert beast_frame(frame) == bytes.fromhex(expected)
    short = Frame(bytes.fromhex("5D4CA7C3123456"), 0.0, ticks_12mhz=None, signal_dbfs=None)
    assert beast_frame(short) == bytes.fromhex("1a32000000000000005d4ca7c3123456")
    assert beast_frame(Frame(bytes.fromhex("2000"), 0.0, ticks_12mhz=1))[:2] == b"\x1a\x31"


def test_signal_byte_round_trips_every_level_through_the_beast_reader():
    assert [signal_byte(signal_dbfs(level)) for level in range(1, 256)] == list(range(1, 256))
    assert signal_byte(None) == 0
    assert signal_byte(0.0) == 255 and signal_byte(6.0) == 255 and signal_byte(-200.0) == 1


def test_a_beast_recording_is_re_served_byte_for_byte():
    frames = _recording(BEAST_REC)
    raw = shared_data(BEAST_REC).read_bytes()
    assert len(frames) == 239
    assert b"".join(beast_frame(f) for f in frames) == raw


def test_iq_frames_go_out_with_the_demodulators_counter():
    src = open_file_source(str(shared_data(IQ_REC)), "uc8", 2.4e6, start_time=1.0)
    frames = list(src.frames(threading.Event()))
    bodies = [beast_frame(f)[2:].replace(b"\x1a\x1a", b"\x1a") for f in frames]
    ticks = [int.from_bytes(body[:6], "big") for body in bodies]
    assert ticks == [f.ticks_12mhz for f in frames]
    assert all(t > 0 for t in ticks) and ticks == sorted(ticks)


def test_avr_lines_with_and_without_the_counter():
    frame = Frame(bytes.fromhex("8D4CA7C358C382D690C8AC2863A7"), 0.0, ticks_12mhz=0xABCDEF012345)
    assert avr_line(frame) == b"*8D4CA7C358C382D690C8AC2863A7;\n"
    assert avr_line(frame, timestamps=True) == b"@ABCDEF0123458D4CA7C358C382D690C8AC2863A7;\n"
    untimed = dataclasses.replace(frame, ticks_12mhz=None)
    assert avr_line(untimed, timestamps=True).startswith(b"@000000000000")


def test_address_of_a_parity_frame_is_the_syndrome():
    # DF5 from 4CA7C3? the syndrome is the address the parity was overlaid with.
    df17 = Frame(bytes.fromhex("8D4CA7C358C382D690C8AC2863A7"), 0.0)
    assert frame_address(df17) == "4CA7C3"
    frames = _recording(BEAST_REC)
    pipeline = Pipeline(build_config({"filter": {"enabled": False}}), [])
    seen = set()
    for f in frames:
        pipeline.handle(f)
        seen.add(frame_address(f))
    assert set(pipeline.tracker.aircraft) <= seen


def test_sbs_line_has_22_fields_in_dump1090_layout():
    frame = Frame(bytes.fromhex("8D4CA7C358C382D690C8AC2863A7"), 1_767_225_600.25, -20.0)
    fields = {"icao": "4ca7c3", "typecode": 11, "altitude": 38000, "latitude": 52.25,
              "longitude": 3.9193}  # fmt: skip
    line = sbs_line(frame, fields, logged=1_767_225_600.5)
    assert line is not None and SBS_LINE.fullmatch(line.decode())
    cols = line.decode().rstrip("\r\n").split(",")
    assert len(cols) == 22
    assert cols[:6] == ["MSG", "3", "1", "1", "4CA7C3", "1"]
    assert cols[7].endswith(".250") and cols[9].endswith(".500")
    assert cols[11:16] == ["38000", "", "", "52.25000", "3.91930"]
    assert cols[21] == "0"  # airborne position: not on the ground
    squawk = Frame(bytes.fromhex("2A00051E000000"), 1_767_225_600.0)
    cols = sbs_line(squawk, {"icao": "3981E4", "squawk": "7700", "flight_status": 1})
    assert cols is not None
    cols = cols.decode().rstrip("\r\n").split(",")
    assert cols[1] == "6" and cols[17:22] == ["7700", "0", "-1", "0", "-1"]
    assert sbs_line(Frame(bytes.fromhex("8D4CA7C3E0000000000000000000"), 0.0),
                    {"icao": "4CA7C3", "typecode": 28}) is None  # fmt: skip


# --- through the pipeline and real sockets ---------------------------------------


def test_sbs_and_avr_clients_read_every_accepted_frame_as_a_consumer_would(tmp_path):
    sbs_port, ro_port = free_port(), free_port()
    cfg = _net_cfg(tmp_path, sbs_port=sbs_port, ro_port=ro_port, ro_timestamps=True)
    tap = _Tap()
    pipeline = Pipeline(cfg, [tap])
    (net,) = _outputs(pipeline, cfg)
    pipeline.publishers.append(net)
    sbs, avr = _Reader(sbs_port), _Reader(ro_port)
    assert wait_until(lambda: net.sbs.clients == 1 and net.avr.clients == 1)
    for frame in _recording(BEAST_REC):
        pipeline.handle(frame)
    net.close()
    sbs.join(10), avr.join(10)
    assert bytes(avr.data) == b"".join(avr_line(f, True) for f in tap.frames)
    text = sbs.data.decode("ascii")
    lines = text.splitlines(keepends=True)
    assert lines and all(SBS_LINE.fullmatch(line) for line in lines), lines[:3]
    rows = [line.rstrip("\r\n").split(",") for line in lines]
    assert all(len(r) == 22 for r in rows)
    types = {r[1] for r in rows}
    assert {"1", "3", "4", "5", "6", "8"} <= types, types
    positions = [r for r in rows if r[1] == "3" and r[14]]
    assert {r[4] for r in positions} == {"48520A"}
    assert abs(float(positions[-1][14]) - 43.6566) < 0.001
    assert any(r[1] == "1" and r[4] == "48520A" and r[10] == "TRA89M" for r in rows)
    assert net.counts["clients_connected"] == 2


def test_aircraft_json_receiver_and_stats_parse_as_tar1090_reads_them(tmp_path):
    out_dir = tmp_path / "json"
    cfg = build_config(
        {
            "filter": {"enabled": False},
            "site": {"lat": 43.6, "lon": 1.3},
            "net": {"json_dir": str(out_dir), "json_interval_s": 0.2},
        }
    )
    pipeline = Pipeline(cfg, [])
    (writer,) = _outputs(pipeline, cfg)
    pipeline.publishers.append(writer)
    receiver = json.loads((out_dir / "receiver.json").read_text())
    assert receiver["refresh"] == 200 and receiver["history"] == 0
    assert (receiver["lat"], receiver["lon"]) == (43.6, 1.3)
    assert receiver["version"].startswith("adsb-agent")
    # Replayed faster than real time: snapshots follow frame time.
    for frame in _recording(BEAST_REC, start=time.time()):
        pipeline.handle(frame)

    def aircraft() -> dict[str, dict[str, Any]]:
        doc = json.loads((out_dir / "aircraft.json").read_text())
        return {a["hex"]: a for a in doc["aircraft"]}

    def messages() -> int:
        return json.loads((out_dir / "aircraft.json").read_text())["messages"]

    assert wait_until(lambda: messages() == 229)  # the next write after the last frame
    doc = json.loads((out_dir / "aircraft.json").read_text())
    assert isinstance(doc["now"], float)
    ac = aircraft()["48520a"]
    assert ac["flight"] == "TRA89M" and ac["alt_baro"] == 38000 and ac["squawk"] == "5516"
    assert abs(ac["lat"] - 43.656647) < 1e-6 and abs(ac["lon"] - 1.229638) < 1e-6
    assert ac["category"] == "A3" and ac["seen"] >= 0 and ac["seen_pos"] >= ac["seen"]
    assert isinstance(ac["rssi"], float) and ac["messages"] > 100
    assert set(aircraft()) == {"48520a", "3981e4", "44ce69"}
    writer.close()
    stats = json.loads((out_dir / "stats.json").read_text())
    assert stats["total"]["messages"] == 229
    assert stats["total"]["remote"]["accepted"][0] == 229
    assert {"latest", "last1min", "last5min", "last15min", "total"} <= set(stats)
    assert "48520a" in aircraft()  # the last view stays after the end
    assert not list(out_dir.glob(".*"))  # no temporary files left behind


def test_selected_only_restricts_the_feeds_to_selected_aircraft(tmp_path):
    port = free_port()
    cfg = build_config(
        {
            "filter": {"enabled": True},
            "site": {"lat": 43.6, "lon": 1.3},
            "net": {"bo_port": port, "selected_only": True},
        }
    )
    tap = _Tap()
    pipeline = Pipeline(cfg, [tap])
    (net,) = _outputs(pipeline, cfg)
    pipeline.publishers.append(net)
    reader = _Reader(port)
    assert wait_until(lambda: net.beast.clients == 1)
    for frame in _recording(BEAST_REC):  # airliners at FL250-380: none is selected
        pipeline.handle(frame)
    pipeline.finish()
    assert not pipeline.selections
    first_pass = len(tap.frames)
    pipeline.selections["48520A"] = object()  # type: ignore[assignment]  # now one is
    for frame in _recording(BEAST_REC, start=1_767_229_000.0):
        pipeline.handle(frame)
    net.close()
    reader.join(10)
    expected = [f for f in tap.frames[first_pass:] if frame_address(f) == "48520A"]
    assert len(expected) > 100
    assert bytes(reader.data) == b"".join(beast_frame(f) for f in expected)


# --- a real peer: dump1090-mutability ----------------------------------------------


class _Dump1090:
    """dump1090-mutability with every port off but one Beast input (or reading IQ from
    its standard input), writing its view to a directory."""

    def __init__(self, tmp_path: Path, name: str, *, ifile: bool = False):
        exe = shutil.which("dump1090-mutability")
        if exe is None:
            pytest.fail(
                "dump1090-mutability is not installed (apt-get install dump1090-mutability)"
            )
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.port = 0 if ifile else free_port()
        args = [exe, "--quiet", "--write-json", str(self.dir), "--write-json-every", "1"]
        args += ["--ifile", "-"] if ifile else ["--net-only"]
        for opt in ("--net-ri-port", "--net-ro-port", "--net-sbs-port", "--net-bo-port"):
            args += [opt, "0"]
        args += ["--net-bi-port", str(self.port)]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if ifile else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not ifile:
            wait_port(self.port)

    def view(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / "aircraft.json").read_text())
        except (OSError, ValueError):
            return {"now": 0, "messages": 0, "aircraft": []}

    def settled(self, timeout: float = 30.0) -> dict[str, Any]:
        """Its view once messages stopped changing across two writes."""
        last: list[tuple[float, int]] = []

        def still() -> bool:
            doc = self.view()
            mark = (doc["now"], doc["messages"])
            if not last or mark[0] != last[-1][0]:
                last.append(mark)
            return len(last) >= 3 and last[-1][1] == last[-2][1] == last[-3][1] > 0

        assert wait_until(still, timeout), f"dump1090 never settled: {last}"
        return self.view()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _socat(*addresses: str) -> subprocess.Popen:
    exe = shutil.which("socat")
    if exe is None:
        pytest.fail("socat is not installed (apt-get install socat)")
    return subprocess.Popen([exe, "-u", *addresses], stderr=subprocess.DEVNULL)


def _through_agent(frames_of: Any, tmp_path: Path, peer: _Dump1090) -> NetOutput:
    """The agent's Beast output piped into `peer` by socat."""
    port = free_port()
    cfg = _net_cfg(tmp_path, bo_port=port)
    pipeline = Pipeline(cfg, [])
    (net,) = _outputs(pipeline, cfg)
    pipeline.publishers.append(net)
    pipe = _socat(f"TCP:127.0.0.1:{port}", f"TCP:127.0.0.1:{peer.port}")
    assert wait_until(lambda: net.beast.clients == 1)
    for frame in frames_of(pipeline):
        pipeline.handle(frame)
    net.close()  # EOF: socat ends, dump1090 has it all
    pipe.wait(10)
    return net


def _planes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["hex"]: a for a in doc["aircraft"]}


def test_dump1090_fed_our_beast_output_builds_the_same_aircraft_as_from_the_recording(tmp_path):
    direct = _Dump1090(tmp_path, "direct")
    via = _Dump1090(tmp_path, "via")
    try:
        _socat(f"OPEN:{shared_data(BEAST_REC)}", f"TCP:127.0.0.1:{direct.port}").wait(10)
        _through_agent(lambda _p: _recording(BEAST_REC), tmp_path, via)
        a, b = _planes(direct.settled()), _planes(via.settled())
    finally:
        direct.stop(), via.stop()
    assert set(a) == set(b) == {"48520a", "3981e4"}
    for hex_ in a:
        for key in ("flight", "altitude", "squawk", "category", "speed", "track"):
            assert a[hex_].get(key) == b[hex_].get(key), (hex_, key)


def test_dump1090_fed_our_demodulated_beast_has_the_same_positions_as_from_iq(tmp_path):
    """The IQ recording demodulated by the agent and served as Beast, against
    dump1090's own demodulator on the same samples: the same aircraft, positioned."""
    iq = shared_data(IQ_REC)
    direct = _Dump1090(tmp_path, "direct", ifile=True)
    via = _Dump1090(tmp_path, "via")
    try:
        assert direct.proc.stdin is not None
        direct.proc.stdin.write(iq.read_bytes())
        direct.proc.stdin.flush()  # kept open: dump1090 stops at EOF, before its JSON

        def frames(pipeline: Pipeline) -> Iterator[Frame]:
            src = open_file_source(
                str(iq), "uc8", 2.4e6, start_time=1_767_225_600.0, verifier=pipeline.verifier
            )
            return src.frames(threading.Event())

        net = _through_agent(frames, tmp_path, via)
        a, b = _planes(direct.settled()), _planes(via.settled())
        direct.proc.stdin.close()
    finally:
        direct.stop(), via.stop()
    positioned_a = {h for h, p in a.items() if "lat" in p}
    positioned_b = {h for h, p in b.items() if "lat" in p}
    assert positioned_a == positioned_b == {"4d2023"}
    pa, pb = a["4d2023"], b["4d2023"]
    # The last position each kept may come from a different frame (dump1090 decodes
    # fewer of these weak replies): a few km apart along the track, never an alias.
    assert abs(pa["lat"] - pb["lat"]) < 0.05 and abs(pa["lon"] - pb["lon"]) < 0.05
    assert pa["flight"] == pb["flight"] and pa["squawk"] == pb["squawk"]
    assert b["4d2023"]["messages"] >= 300
    assert net.counts["bytes_out"] > 0


# --- clients that cannot hurt the pipeline -----------------------------------------


def test_stuck_many_and_vanishing_clients_never_hold_up_decoding_or_mqtt(broker, tmp_path):
    bo_port, sbs_port = free_port(), free_port()
    cfg = build_config(
        {
            "site": {"name": "strip-01"},
            "filter": {"enabled": False},
            "mqtt": {"url": broker.url},
            "state_dir": str(tmp_path / "state"),
            "net": {"bo_port": bo_port, "sbs_port": sbs_port, "client_buffer_kb": 256},
        }
    )
    sub = Subscriber(broker.port, "adsb/v1/strip-01/#")
    tap = _Tap()
    pipeline = Pipeline(cfg, [tap])
    mqtt = MqttPublisher(cfg.mqtt, cfg.site.name, Outbox(tmp_path / "o.sqlite")).start()
    (net,) = _outputs(pipeline, cfg)
    pipeline.publishers += [mqtt, net]

    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # and never reads
    stuck.connect(("127.0.0.1", bo_port))
    readers = [_Reader(bo_port) for _ in range(50)]
    vanishing = [_Reader(bo_port, vanish_after=2000, reset=i % 2 == 0) for i in range(6)]
    sbs_readers = [_Reader(sbs_port) for _ in range(3)]
    assert wait_until(lambda: net.beast.clients == 57 and net.sbs.clients == 3)

    base = _recording(BEAST_REC)
    passes = [0]

    def run_pass() -> None:
        shift = passes[0] * 120.0  # tracks end between passes
        for f in base:
            pipeline.handle(dataclasses.replace(f, rx_time=f.rx_time + shift))
        passes[0] += 1

    def feed() -> None:
        while not net.counts["clients_dropped_slow"] and passes[0] < 2000:
            run_pass()
        for _ in range(10):  # and on after it was dropped
            run_pass()

    worker = threading.Thread(target=feed, daemon=True)
    worker.start()
    worker.join(300)
    assert not worker.is_alive(), "the pipeline was held up"
    assert net.counts["clients_dropped_slow"], "the stuck client was never dropped"
    pipeline.finish()
    assert pipeline.counts["frames"] == passes[0] * len(base)

    # MQTT got every record the pipeline made.
    assert mqtt.flush(30)
    made = pipeline.counts["records_position"] + pipeline.counts["records_event"]
    assert sub.wait_for(lambda s: len(s.records()) >= made, 30)
    assert len(sub.records()) == made

    # The status file shows the feeds and what happened to their clients.
    status = ServiceMonitor(
        pipeline_probe(pipeline, []), threading.Event(), Notifier({}), site="strip-01"
    ).check()
    net_status = status["components"]["net"]
    assert net_status["state"] == "green"
    assert f"beast :{bo_port} 50 clients" in net_status["message"], net_status
    assert "1 dropped slow" in net_status["message"]
    health = pipeline.health()["counters"]
    assert health["NetOutput.clients_dropped_slow"] == 1
    assert health["NetOutput.clients_disconnected"] >= 6
    assert health["NetOutput.clients_connected"] == 60

    net.close()
    mqtt.close()
    sub.close()
    stuck.close()
    for r in readers + vanishing + sbs_readers:
        r.join(10)
    expected = b"".join(beast_frame(f) for f in tap.frames)
    assert all(bytes(r.data) == expected for r in readers)  # every byte, in order
    assert all(2000 <= len(r.data) < len(expected) for r in vanishing)
    assert all(r.data.count(b"\r\n") > 1000 for r in sbs_readers)


# --- configuration and command line --------------------------------------------------


def test_readsb_option_names_on_run_land_in_the_net_table():
    from agent.cli import _overrides, _parser

    args = _parser().parse_args(
        ["run", "--net-bo-port", "30005", "--net-sbs-port", "30003", "--net-ro-port", "30002",
         "--net-bind-address", "0.0.0.0", "--write-json", "/run/x", "--write-json-every", "2",
         "--net-ro-timestamps", "--net-selected-only"]
    )  # fmt: skip
    net = build_config(_overrides(args)).net
    assert (net.bo_port, net.sbs_port, net.ro_port) == (30005, 30003, 30002)
    assert net.bind_address == "0.0.0.0" and net.json_dir == "/run/x"
    assert net.json_interval_s == 2.0 and net.ro_timestamps and net.selected_only
    plain = build_config(_overrides(_parser().parse_args(["run"]))).net
    assert plain.bind_address == "127.0.0.1" and not (plain.bo_port or plain.json_dir)


@pytest.mark.parametrize(
    ("net", "path"),
    [
        ({"bo_port": 70000}, "net.bo_port"),
        ({"sbs_port": -1}, "net.sbs_port"),
        ({"json_interval_s": float("inf")}, "net.json_interval_s"),
        ({"json_interval_s": 0.0}, "net.json_interval_s"),
        ({"client_buffer_kb": 10**9}, "net.client_buffer_kb"),
        ({"max_clients": 0}, "net.max_clients"),
        ({"bo_port": 30005, "ro_port": 30005}, "net"),
    ],
)
def test_net_numbers_are_bounded(net, path):
    with pytest.raises(ConfigError) as err:
        build_config({"net": net})
    assert any(p.startswith(path + ":") for p in err.value.problems), err.value.problems


def test_a_port_already_taken_is_a_configuration_error_naming_the_option(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        cfg = _net_cfg(tmp_path, sbs_port=port)
        with pytest.raises(ConfigError, match=rf"net\.sbs_port: cannot listen on 127.0.0.1:{port}"):
            NetOutput(cfg.net)


def test_the_app_serves_a_beast_source_byte_for_byte_and_writes_its_json(tmp_path):
    from agent.app import App

    port, out_dir = free_port(), tmp_path / "json"
    rec = shared_data(BEAST_REC)
    cfg = build_config(
        {
            "sources": [f"file:{rec}?format=beast"],
            "filter": {"enabled": False},
            "net": {"bo_port": port, "json_dir": str(out_dir)},
        }
    )
    app = App(cfg).start()
    try:
        (net,) = [o for o in app.outputs if isinstance(o, NetOutput)]
        reader = _Reader(port)
        assert wait_until(lambda: net.beast.clients == 1)
        app.run()
    finally:
        app.stop()
    reader.join(10)
    tap = _Tap()  # what the CRC gate lets through, the same way on its own
    alone = Pipeline(cfg, [tap])
    for frame in _recording(BEAST_REC):
        alone.handle(frame)
    assert len(tap.frames) == 229
    assert bytes(reader.data) == b"".join(beast_frame(f) for f in tap.frames)
    doc = json.loads((out_dir / "aircraft.json").read_text())
    assert {a["hex"] for a in doc["aircraft"] if "lat" in a} == {"48520a"}
