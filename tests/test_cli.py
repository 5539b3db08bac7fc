"""The command-line contract other checks depend on (issue 2), run as real processes."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys

from agent.crc import syndrome
from agent.errors import EXIT_CONFIG, EXIT_RUNTIME
from agent.verify import ADDRESS_PARITY_DFS
from tests.conftest import REPO, shared_data
from tests.helpers import validate


def agent(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
        check=False,
    )


def _frames(out: bytes) -> list[bytes]:
    lines = out.decode().splitlines()
    assert all(line.startswith("*") and line.endswith(";") for line in lines)
    return [bytes.fromhex(line[1:-1]) for line in lines]


def _assert_valid(frames: list[bytes]) -> None:
    """Every frame CRC-clean, or address/parity with an address seen in a clean frame."""
    clean = {m[1:4] for m in frames if m[0] >> 3 in (11, 17) and syndrome(m) == 0}
    for m in frames:
        df = m[0] >> 3
        if df in ADDRESS_PARITY_DFS:
            assert syndrome(m).to_bytes(3, "big") in clean
        elif df == 11:
            assert syndrome(m) <= 0x7F
        else:
            assert syndrome(m) == 0


def test_demod_finds_at_least_antirez_count_on_modes1_at_both_rates():
    low = agent("demod", "--rate", "2.0e6", str(shared_data("iq/modes1.bin")))
    high = agent("demod", "--rate", "2.4e6", str(shared_data("iq/modes1_2400.uc8")))
    for run in (low, high):
        assert run.returncode == 0, run.stderr
        frames = _frames(run.stdout)
        assert len(frames) >= 284
        _assert_valid(frames)


def test_demod_finds_more_with_more_repair_and_the_retry():
    # Each setting finds every frame of the one before it, and all stay CRC-valid.
    path = str(shared_data("iq/modes1_2400.uc8"))
    runs = [
        agent("demod", "--repair-bits", "1", path),
        agent("demod", path),  # 3 bits
        agent("demod", "--retry-weak", path),
    ]
    found = []
    for run in runs:
        assert run.returncode == 0, run.stderr
        found.append(_frames(run.stdout))
        _assert_valid(found[-1])
    assert set(found[0]) <= set(found[1]) <= set(found[2])


def test_demod_reads_stdin():
    data = shared_data("iq/modes1_2400.uc8").read_bytes()
    from_file = agent("demod", str(shared_data("iq/modes1_2400.uc8")))
    from_stdin = agent("demod", "-", stdin=data)
    assert from_stdin.returncode == 0
    assert from_stdin.stdout == from_file.stdout


def _records(run: subprocess.CompletedProcess[bytes]) -> list[dict]:
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in run.stdout.decode().splitlines()]
    for r in records:
        validate(r)
    return records


def test_replay_all_on_modes1_gives_4d2023_with_a_position():
    records = _records(
        agent("replay", "--all", "--rate", "2.0e6", str(shared_data("iq/modes1.bin")))
    )
    positions = [r for r in records if r["type"] == "position" and r["icao"] == "4D2023"]
    assert positions and any(p["callsign"] == "AMC421" for p in positions)


def test_replay_all_on_the_beast_recording_gives_positions():
    path = str(shared_data("beast/traffic_sample_dump1090.bin"))
    records = _records(agent("replay", "--all", "--format", "beast", path))
    assert {r["icao"] for r in records if r["type"] == "position"} == {"48520A"}


def test_replay_with_the_ga_filter_drops_the_airliner():
    path = str(shared_data("beast/traffic_sample_dump1090.bin"))
    assert _records(agent("replay", "--format", "beast", path)) == []


def test_garbage_iq_is_counted_not_fatal():
    junk = os.urandom(100_001)  # odd length: a truncated sample at the end
    run = agent("demod", "--rate", "2.4e6", "-", stdin=junk)
    # Counted, no traceback; but nothing decoded is exit 1, said on stderr (issue 13).
    assert run.returncode == EXIT_RUNTIME
    assert b"Traceback" not in run.stderr
    assert b"nothing decoded from stdin read as uc8" in run.stderr
    assert b"truncated_bytes=1" in run.stderr


def test_beast_stream_cut_mid_frame_with_junk_is_counted():
    data = shared_data("beast/traffic_sample_dump1090.bin").read_bytes()
    mangled = data[:1000] + b"\x00garbage\x1a\x39junk" + data[1000:2001]
    run = agent("replay", "--all", "--format", "beast", "-", stdin=mangled)
    assert any(r["type"] == "position" for r in _records(run))  # what was whole still counts
    assert b"beast_resync=1" in run.stderr and b"beast_junk_bytes=14" in run.stderr
    assert b"beast_partial_dropped=1" in run.stderr  # the frame cut at the end


def test_avr_lines_with_bad_hex_are_counted():
    lines = b"*8D4840D6202CC371C32CE0576098;\n*8D4840D6202CC371C32CE05760ZZ;\nnonsense\n"
    run = agent("replay", "--all", "--format", "avr", "-", stdin=lines)
    assert run.returncode == 0
    assert b"avr_bad_hex=1" in run.stderr and b"avr_garbage=1" in run.stderr


def test_missing_input_file_is_a_clear_error():
    run = agent("demod", "/nonexistent/capture.uc8")
    assert run.returncode == EXIT_CONFIG
    assert b"/nonexistent/capture.uc8" in run.stderr


def test_demo_runs_without_dongle_or_broker_and_never_shows_the_airliner():
    run = agent("demo")
    records = _records(run)
    events = [r["event"] for r in records if r["type"] == "event"]
    for kind in ("takeoff", "landing", "lost_low"):
        assert kind in events
    callsigns = {r["callsign"] for r in records if r["type"] == "position"}
    assert {"PTABC", "PRHLC"} <= callsigns and "TAM3054" not in callsigns


def test_demo_also_publishes_to_a_broker(broker, tmp_path):
    from tests.mqtt_helpers import Subscriber

    sub = Subscriber(broker.port, "adsb/v1/demo/#")
    run = agent("demo", "--duration", "120", "--mqtt", broker.url, "--state-dir", str(tmp_path))
    printed = _records(run)
    assert sub.wait_for(lambda s: len(s.records()) == len(printed), 15)
    sub.close()


def test_version_and_the_help_name_every_command_and_show_defaults():
    version = agent("--version")
    assert version.returncode == 0 and version.stdout.decode().strip() == "adsb-agent 0.1.0"
    top = agent("--help").stdout.decode()
    for command in ("run", "demo", "check", "status", "tail", "replay", "demod"):
        assert f"\n    {command} " in top, top
    assert "ADSB_AGENT_MQTT_PASSWORD" in top and "64 invalid configuration" in top
    demod = agent("demod", "--help").stdout.decode()
    assert "*HEX; (AVR)" in top and "(default 2.4e6)" in demod and "(default 3)" in demod
    status = " ".join(agent("status", "--help").stdout.decode().split())
    assert "run --status-file FILE" in status
    for command in ("run", "demo", "check", "tail"):
        assert "--mqtt-password-file" in agent(command, "--help").stdout.decode()


def _into_head(*args: str) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """`adsb-agent ARGS | head -1` through a real pipe, shrunk to one page so the agent
    is still writing when head has gone (a 64 KiB pipe could swallow all of it)."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", *args],
        stdout=write_end,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    head = subprocess.Popen(["head", "-1"], stdin=read_end, stdout=subprocess.PIPE)
    os.close(read_end)
    os.close(write_end)
    first, _ = head.communicate(timeout=120)
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, b"", err), first


def test_replay_and_demod_into_head_end_quietly():
    path = str(shared_data("iq/modes1_2400.uc8"))
    run, first = _into_head("replay", "--all", path)
    assert run.returncode == 0, run.stderr
    assert json.loads(first)["type"] in ("position", "event")
    assert b"Traceback" not in run.stderr and b"BrokenPipe" not in run.stderr
    assert b"frame_errors" not in run.stderr and b"failed in the pipeline" not in run.stderr
    run, first = _into_head("demod", path)
    assert run.returncode == 0, run.stderr
    assert first.startswith(b"*") and b"BrokenPipe" not in run.stderr


def test_a_malformed_broker_url_is_a_configuration_error_not_a_traceback():
    for url in ("mqtt://u:secret@[::1", "mqtt://[::1:1883", "mqtt://host:99999"):
        run = agent("run", "--mqtt", url, "--site", "x", "--state-dir", "/nonexistent/x")
        assert run.returncode == EXIT_CONFIG, run.stderr
        assert b"Traceback" not in run.stderr and b"mqtt.url" in run.stderr
        assert b"secret" not in run.stderr  # the password is starred even in a bad URL


def test_an_unknown_key_gets_the_nearest_real_one_suggested(tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[mqtt]\nurl = "mqtt://127.0.0.1"\npasword_file = "/x"\n[site]\ncolour = 1\n')
    run = agent("run", "--config", str(cfg))
    assert run.returncode == EXIT_CONFIG
    assert b"mqtt.pasword_file: unknown key; did you mean 'password_file'?" in run.stderr
    assert b"site.colour: unknown key\n" in run.stderr + b"\n"  # nothing near: no guess


def test_demo_and_run_take_the_broker_password_from_a_file(tmp_path):
    """`--mqtt-password-file` (not a password in the URL, which `ps` shows)."""
    from agent import cli
    from tests.conftest import Broker
    from tests.mqtt_helpers import Subscriber

    pw = tmp_path / "passwd"
    pw.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "demo", "d3mo"], check=True)
    pw.chmod(0o600)
    b = Broker(tmp_path, f"allow_anonymous false\npassword_file {pw}\n").start()
    secret = tmp_path / "mqtt-password"
    secret.write_text("d3mo\n")
    sub = Subscriber(b.port, "adsb/v1/demo/#", username="demo", password="d3mo")
    try:
        url = f"mqtt://demo@127.0.0.1:{b.port}"
        run = agent(
            *("demo", "--duration", "120", "--mqtt", url, "--mqtt-password-file", str(secret)),
            *("--state-dir", str(tmp_path / "state")),
        )
        printed = _records(run)
        assert sub.wait_for(lambda s: len(s.records()) == len(printed), 15)
    finally:
        sub.close()
        b.stop()
    args = cli._parser().parse_args(["run", "--mqtt", url, "--mqtt-password-file", str(secret)])
    assert cli._overrides(args)["mqtt"] == {"url": url, "password_file": str(secret)}


_IMPORTS_AFTER = """
import contextlib, io, sys
from agent.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(" ".join(m for m in ("numpy", "pyModeS") if m in sys.modules) or "-")
"""


def test_help_and_check_start_without_numpy(tmp_path):
    """numpy takes 1.8 s to import on a Pi under emulation: not for --help or check.

    (A check of a configured dongle demodulates its samples and needs numpy then; the
    site here has a network feed, so the check's own start is what is measured.)"""
    config = tmp_path / "agent.toml"
    example = (REPO / "config" / "site-example.toml").read_text()
    config.write_text(re.sub(r'"rtlsdr://[^"]*"', '"beast://127.0.0.1:9"', example, count=1))
    for argv in (["--help"], ["run", "--help"], ["check", "--config", str(config)]):
        probe = subprocess.run(
            [sys.executable, "-c", _IMPORTS_AFTER, *argv],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
            check=True,
        )
        assert probe.stdout.split() == ["-"], (argv, probe.stdout, probe.stderr)
