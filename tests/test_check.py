"""`adsb-agent check`: every failure it claims to detect, staged for real.

Staging: a sysfs/dev tree laid out like the kernel's, with the DVB driver bound or
the device node owned by the wrong group; IQ files that are empty, saturated or flat;
a TCP receiver that accepts and says nothing; real mosquitto brokers that refuse the
password, forbid the site's topics or present a certificate from another CA; a full
and a read-only tmpfs in a private mount namespace; Raspberry Pi firmware flags in a
fake sysfs file. The clock cannot be unsynchronised on purpose, so its verdict is
tested on adjtimex readings given as data, and the reading itself on this machine.
"""

from __future__ import annotations

import dataclasses
import grp
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent import check
from agent.check import FAIL, PASS, SKIP, WARN, Places
from agent.cli import main
from agent.config import build_config
from tests import sandbox
from tests.conftest import REPO, Broker, free_port, shared_data
from tests.helpers import TcpServer
from tests.pki import make_pki

ACL = "pattern write adsb/v1/%u/#\n"


def _states(results: list[check.Result]) -> list[tuple[str, str]]:
    return [(r.name, r.state) for r in results]


# -- config -----------------------------------------------------------------------------


def test_config_problems_are_listed_with_their_paths(tmp_path):
    bad = tmp_path / "agent.toml"
    bad.write_text('[filter]\nmax_height_ft = -5\n[site]\nname = "a b"\ncolour = 1\n')
    result, cfg = check.check_config(bad)
    assert cfg is None and result.state == FAIL
    assert "filter.max_height_ft" in result.detail and "site.colour: unknown key" in result.detail
    assert str(bad) in result.detail


def test_site_example_config_passes(tmp_path):
    result, cfg = check.check_config(REPO / "config" / "site-example.toml")
    assert result.state == PASS and cfg is not None


def test_check_command_exits_non_zero_and_names_the_config_failure(tmp_path, capsys):
    bad = tmp_path / "agent.toml"
    bad.write_text("sources = ['ftp://x']\n")
    assert main(["check", "--config", str(bad)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("FAIL  config")
    assert "check(s) failed" in out


# -- the dongle -------------------------------------------------------------------------


def _sysfs(
    tmp_path: Path, *, pid: str = "2838", driver: str | None = None, module: bool = False
) -> Places:
    """A /sys and /dev like the kernel's for one dongle on bus 1, port 1-1.3, device 4."""
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    usb = sysfs / "bus" / "usb" / "devices"
    d = usb / "1-1.3"
    d.mkdir(parents=True)
    for name, value in {
        "idVendor": "0bda",
        "idProduct": pid,
        "busnum": "1",
        "devnum": "4",
        "product": "RTL2838UHIDIR",
        "serial": "00001090",
    }.items():
        (d / name).write_text(value + "\n")
    hub = usb / "1-1"  # another device on the bus, not a dongle
    hub.mkdir()
    (hub / "idVendor").write_text("0424\n")
    (hub / "idProduct").write_text("2514\n")
    intf = usb / "1-1.3:1.0"
    intf.mkdir()
    if driver:
        target = sysfs / "bus" / "usb" / "drivers" / driver
        target.mkdir(parents=True)
        (intf / "driver").symlink_to(target)
    if module:
        (sysfs / "module" / "dvb_usb_rtl28xxu").mkdir(parents=True)
    node = dev / "bus" / "usb" / "001" / "004"
    node.parent.mkdir(parents=True)
    node.write_bytes(b"")
    node.chmod(0o664)
    return Places(sysfs=sysfs, dev=dev, credential=None)


def _rtlsdr_cfg():
    return build_config({"sources": ["rtlsdr://"]})


def test_no_dongle_fails_only_when_an_rtlsdr_source_needs_one(tmp_path):
    (tmp_path / "sys").mkdir()
    r = check.check_dongle(_rtlsdr_cfg(), tmp_path / "sys", tmp_path / "dev")
    assert _states(r) == [("dongle", FAIL)] and "0bda:2838" in r[0].detail
    r = check.check_dongle(build_config({"sources": ["beast://h:1"]}), tmp_path / "sys", tmp_path)
    assert _states(r) == [("dongle", SKIP)]


def test_dongle_held_by_the_dvb_driver_is_named(tmp_path):
    p = _sysfs(tmp_path, pid="2832", driver="dvb_usb_rtl28xxu", module=True)
    r = check.check_dongle(_rtlsdr_cfg(), p.sysfs, p.dev)
    assert _states(r) == [("dongle", FAIL)]
    assert "0bda:2832" in r[0].detail and "dvb_usb_rtl28xxu" in r[0].detail
    assert "modprobe -r dvb_usb_rtl28xxu" in r[0].fix


def test_device_node_without_the_udev_rule_is_reported(tmp_path):
    p = _sysfs(tmp_path)
    r = check.check_dongle(_rtlsdr_cfg(), p.sysfs, p.dev)
    assert _states(r) == [("dongle", PASS), ("usb node", FAIL)]
    assert "serial 00001090" in r[0].detail and "mode 0664" in r[1].detail
    assert "udev" in r[1].fix


def test_dongle_with_udev_rule_applied_passes_and_a_loaded_dvb_module_warns(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chown to plugdev needs root")
    p = _sysfs(tmp_path, module=True)
    node = p.dev / "bus" / "usb" / "001" / "004"
    os.chown(node, 0, grp.getgrnam("plugdev").gr_gid)
    node.chmod(0o660)
    r = check.check_dongle(_rtlsdr_cfg(), p.sysfs, p.dev)
    assert _states(r) == [("dongle", PASS), ("usb node", PASS), ("dongle", WARN)]
    assert "group plugdev mode 0660" in r[1].detail


# -- samples and noise ------------------------------------------------------------------


def test_samples_and_noise_floor_of_a_real_recording_pass():
    path = shared_data("iq/modes1.bin")
    r = check.check_source(f"file:{path}?format=uc8&rate=2.0e6", 3.0)
    assert _states(r) == [("samples", PASS), ("noise", PASS)], r
    assert "frames" in r[0].detail and "dBFS" in r[1].detail


def test_no_samples_overload_and_flat_samples_are_failures(tmp_path):
    empty = tmp_path / "empty.uc8"
    empty.write_bytes(b"")
    r = check.check_source(f"file:{empty}?format=uc8", 1.0)
    assert _states(r) == [("samples", FAIL)] and "nothing arrived" in r[0].detail
    saturated = tmp_path / "saturated.uc8"
    saturated.write_bytes(b"\xff\x00" * 300_000)
    r = check.check_source(f"file:{saturated}?format=uc8", 3.0)
    assert _states(r) == [("samples", PASS), ("noise", FAIL)] and "overloaded" in r[1].detail
    flat = tmp_path / "flat.uc8"
    flat.write_bytes(b"\x7f\x80" * 300_000)
    r = check.check_source(f"file:{flat}?format=uc8", 3.0)
    assert _states(r) == [("samples", PASS), ("noise", FAIL)] and "flat" in r[1].detail
    assert check.judge_noise(-20.0).state == WARN


def test_a_receiver_that_accepts_and_says_nothing_fails(tmp_path):
    conns: list[socket.socket] = []
    srv = TcpServer(conns.append, name="silent-receiver").start()  # holds, sends nothing
    try:
        r = check.check_source(f"beast://127.0.0.1:{srv.port}", 0.8)
    finally:
        srv.close()
        for c in conns:
            c.close()
    assert srv.accepted >= 1
    assert _states(r) == [("samples", FAIL)]
    assert "nothing arrived" in r[0].detail and "dump1090" in r[0].fix


# -- the broker -------------------------------------------------------------------------


def _cfg(url: str, **mqtt: str) -> check.AgentConfig:
    return build_config({"site": {"name": "site-01"}, "mqtt": {"url": url, **mqtt}})


def _auth_broker(d: Path) -> Broker:
    pw = d / "passwd"
    pw.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "site-01", "s1"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "site-02", "s2"], check=True)
    pw.chmod(0o600)
    acl = d / "acl"
    acl.write_text(ACL)
    return Broker(d, f"allow_anonymous false\npassword_file {pw}\nacl_file {acl}\n").start()


def test_broker_reachable_passes_and_nothing_listening_fails(broker):
    r = check.check_broker(_cfg(broker.url), credential=None)
    assert r.state == PASS and "publish allowed" in r.detail
    r = check.check_broker(_cfg(f"mqtt://127.0.0.1:{free_port()}"), credential=None)
    assert r.state == FAIL and "connection refused" in r.detail


def test_broker_refusing_the_password_or_the_topic_fails(tmp_path):
    b = _auth_broker(tmp_path)
    try:
        r = check.check_broker(_cfg(f"mqtt://site-01:wrong@127.0.0.1:{b.port}"), credential=None)
        assert r.state == FAIL and "refused as site-01" in r.detail
        # Right password, but this user may only write adsb/v1/site-02/#.
        cfg = build_config(
            {"site": {"name": "site-01"}, "mqtt": {"url": f"mqtt://site-02:s2@127.0.0.1:{b.port}"}}
        )
        r = check.check_broker(cfg, credential=None)
        assert r.state == FAIL and "publishing to adsb/v1/site-01/check is refused" in r.detail
        # The password from the credential file the unit would load (LoadCredential=).
        cred = tmp_path / "mqtt-password"
        cred.write_text("s1\n")
        cfg = _cfg(f"mqtt://127.0.0.1:{b.port}", username="site-01")
        assert check.check_broker(cfg, credential=cred).state == PASS
    finally:
        b.stop()


def test_broker_certificate_from_another_ca_fails(tmp_path):
    pki = make_pki(tmp_path / "pki")
    conf = (
        f"cafile {pki.path('ca.crt')}\ncertfile {pki.path('server.crt')}\n"
        f"keyfile {pki.path('server.key')}\nallow_anonymous true\n"
    )
    b = Broker(tmp_path, conf).start()
    try:
        url = f"mqtts://127.0.0.1:{b.port}"
        r = check.check_broker(_cfg(url, ca_file=pki.path("stranger.crt")), credential=None)
        assert r.state == FAIL and "certificate not trusted" in r.detail and "ca_file" in r.fix
        r = check.check_broker(_cfg(url, ca_file=pki.path("ca.crt")), credential=None)
        assert r.state == PASS and "(TLS)" in r.detail
    finally:
        b.stop()


# -- clock, disk, power -----------------------------------------------------------------


def test_clock_verdicts():
    assert check.read_clock() is not None  # adjtimex answers on Linux
    now = time.time()
    assert check.judge_clock(check.ClockReading(0, 0, 20_000, now)).state == PASS
    unsynced = check.judge_clock(check.ClockReading(check.TIME_ERROR, 0x40, 16_000_000, now))
    assert unsynced.state == FAIL and "not synchronised" in unsynced.detail
    never_set = check.judge_clock(check.ClockReading(0, 0, 0, 1_000_000.0))
    assert never_set.state == FAIL and "never set" in never_set.detail


def test_disk_with_room_passes_and_a_small_one_warns(tmp_path):
    assert check.check_disk(tmp_path / "state", 1).state == PASS
    r = check.check_disk(tmp_path, 1e12)
    assert r.state == WARN and "outbox may use" in r.detail


def test_full_and_read_only_state_directories_fail(tmp_path):
    """Real ENOSPC and EROFS: tmpfs mounts in a private mount namespace."""
    if not sandbox.available():
        if os.environ.get("CI"):
            pytest.fail("needs root and unshare for private mounts")
        pytest.skip("needs root and unshare for private mounts")
    full, ro = tmp_path / "full", tmp_path / "ro"
    full.mkdir()
    ro.mkdir()
    prelude = (
        f"mount -t tmpfs -o size=64k tmpfs {sandbox.quote(full)}\n"
        f"dd if=/dev/zero of={sandbox.quote(full / 'fill')} bs=4k 2>/dev/null || true\n"
        f"mount -t tmpfs -o ro tmpfs {sandbox.quote(ro)}"
    )
    code = (
        "import dataclasses, json, sys; from agent.check import check_disk; "
        "print(json.dumps([dataclasses.asdict(check_disk(p, 100)) for p in sys.argv[1:]]))"
    )
    run = sandbox.run(
        [sys.executable, "-c", code, str(full / "state"), str(ro)], prelude=prelude, cwd=REPO
    )
    assert run.returncode == 0, run.stderr
    on_full, on_ro = (check.Result(**r) for r in json.loads(run.stdout))
    assert on_full.state == FAIL and "No space left on device" in on_full.detail
    assert on_ro.state == FAIL and "Read-only file system" in on_ro.detail
    assert "SD card" in on_ro.fix
    assert not (full / "fill").exists()  # the mounts lived in the namespace only


@pytest.mark.parametrize(
    ("text", "state", "words"),
    [
        ("50005\n", FAIL, "under-voltage now"),
        ("50000\n", WARN, "under-voltage since boot"),
        ("80008\n", WARN, "soft temperature limit now"),
        ("0\n", PASS, "all clear"),
    ],
)
def test_raspberry_pi_under_voltage_and_throttling(tmp_path, text, state, words):
    f = tmp_path / "sys" / check.THROTTLED_FILE
    f.parent.mkdir(parents=True)
    f.write_text(text)
    r = check.judge_throttled(check.read_throttled(tmp_path / "sys"))
    assert r.state == state and words in r.detail


def test_not_a_pi_skips_the_power_check(tmp_path):
    assert check.judge_throttled(check.read_throttled(tmp_path)).state == SKIP


# -- all together -----------------------------------------------------------------------


def test_run_checks_prints_a_line_per_check_and_fails_on_any_failure(tmp_path, broker):
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'state_dir = "{tmp_path / "state"}"\nsources = ["rtlsdr://"]\n'
        f'[site]\nname = "strip-01"\n[mqtt]\nurl = "{broker.url}"\n'
    )
    places = _sysfs(tmp_path, driver="dvb_usb_rtl28xxu")
    results = check.run_checks(cfg, places=places, listen_s=0.5)
    names = [r.name for r in results]
    # "samples": the configured source is tried too (issue 14), as --source would be.
    assert names == ["config", "dongle", "samples", "broker", "clock", "disk", "power"]
    out = io.StringIO()
    assert check.report(results, out) == 1
    text = out.getvalue()
    assert "FAIL  dongle" in text and "fix: install the blacklist" in text
    assert "PASS  broker" in text and "PASS  disk" in text and "SKIP  power" in text
    passing = [dataclasses.replace(r, state=PASS) for r in results]
    assert check.report(passing, io.StringIO()) == 0


def test_a_receiver_that_is_not_there_is_reported_as_unreachable():
    r = check.check_source(f"avr://127.0.0.1:{free_port()}", 0.8)
    assert _states(r) == [("samples", FAIL)]
    assert "could not open or connect" in r[0].detail and "port" in r[0].fix


# -- without sudo, and passwords kept off the command line -------------------------------


def test_without_sudo_the_installed_config_says_run_with_sudo_not_a_traceback(tmp_path):
    """/etc/adsb-agent is 0750 root:adsb-agent. Root without the DAC capabilities stands
    in for a technician's own user: the directory's mode then applies to it too."""
    etc = tmp_path / "etc-adsb-agent"
    etc.mkdir()
    (etc / "agent.toml").write_text(f'state_dir = "{tmp_path / "state"}"\n')
    etc.chmod(0)
    script = (
        "import sys\nfrom pathlib import Path\nimport agent.check as c\n"
        f"c.DEFAULT_CONFIG = Path({str(etc / 'agent.toml')!r})\n"
        "sys.exit(c.main(None))\n"
    )
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    try:
        run = subprocess.run(
            [*(drop if os.geteuid() == 0 else []), sys.executable, "-c", script],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=60,
        )
    finally:
        etc.chmod(0o755)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    first = run.stdout.splitlines()[:2]
    assert first[0].startswith("FAIL  config") and "Permission denied" in first[0]
    assert first[1].strip().startswith("fix: run with sudo")


def test_the_broker_password_from_a_file_or_the_environment(tmp_path, capsys, monkeypatch):
    b = _auth_broker(tmp_path)
    secret = tmp_path / "pw"
    secret.write_text("s1\n")
    url = f"mqtt://site-01@127.0.0.1:{b.port}"
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'state_dir = "{tmp_path}"\n[site]\nname = "site-01"\n')
    try:
        main(["check", "--config", str(cfg), "--mqtt", url, "--mqtt-password-file", str(secret)])
        by_file = capsys.readouterr().out
        monkeypatch.setenv("ADSB_AGENT_MQTT_PASSWORD", "s1")
        main(["check", "--config", str(cfg), "--mqtt", url])
        by_env = capsys.readouterr().out
        monkeypatch.setenv("ADSB_AGENT_MQTT_PASSWORD", "not-s1-xyz")
        main(["check", "--config", str(cfg), "--mqtt", url])
        wrong = capsys.readouterr().out
    finally:
        b.stop()
    assert "PASS  broker" in by_file and "connected as site-01" in by_file
    assert "PASS  broker" in by_env
    assert "FAIL  broker" in wrong and "refused as site-01" in wrong and "xyz" not in wrong


def test_a_malformed_source_url_fails_its_lines_without_a_traceback(capsys):
    example = str(REPO / "config" / "site-example.toml")
    assert main(["check", "--config", example, "--source", "beast://[::1"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  config") and "sources.0: Invalid IPv6 URL" in out
    assert "FAIL  samples     beast://[::1: not a source URL" in out
