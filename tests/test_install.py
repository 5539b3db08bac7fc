"""install.sh: the DESTDIR dry run lays out every file, a second run changes nothing and
keeps the technician's configuration, --uninstall keeps config and outbox, --purge
does not; the udev rule, blacklist and sysusers file say what they must."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.config import load_config
from tests import sandbox
from tests.conftest import REPO

INSTALL = REPO / "install.sh"
NOTES = sorted(p.name for p in (REPO / "firmware_notes").glob("*.md"))
# Every file the installer lays out, with its mode, and where it comes from.
FILES = {
    "etc/systemd/system/adsb-agent.service": (0o644, "systemd/adsb-agent.service"),
    "etc/udev/rules.d/60-adsb-agent-rtlsdr.rules": (0o644, "systemd/60-adsb-agent-rtlsdr.rules"),
    "etc/modprobe.d/adsb-agent-blacklist-rtlsdr.conf": (0o644, "systemd/blacklist-rtlsdr.conf"),
    "etc/sysusers.d/adsb-agent.conf": (0o644, "systemd/adsb-agent.sysusers"),
    "etc/adsb-agent/agent.toml": (0o640, "config/agent.toml"),
    "etc/adsb-agent/mqtt-password": (0o600, None),
    "opt/adsb-agent/README.md": (0o644, "README.md"),
    "opt/adsb-agent/config/agent.toml": (0o644, "config/agent.toml"),
    "opt/adsb-agent/config/site-example.toml": (0o644, "config/site-example.toml"),
    **{f"opt/adsb-agent/firmware_notes/{n}": (0o644, f"firmware_notes/{n}") for n in NOTES},
}
DIRS = {"etc/adsb-agent": 0o750, "var/lib/adsb-agent": 0o750}
LINK = "usr/local/bin/adsb-agent"


def install(dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DESTDIR": str(dest)}
    run = subprocess.run(
        ["bash", str(INSTALL), "--no-apt", "--no-systemctl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def tree(root: Path) -> dict[str, str]:
    """Every file and link under root -> a digest of its content, mode or target."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            out[rel] = f"{p.stat().st_mode & 0o777:o} {digest}"
    return out


def test_dry_run_lays_out_every_file_and_nothing_else(tmp_path):
    dest = tmp_path / "root"
    run = install(dest)
    assert "dry run" in run.stdout and "skipped: systemctl enable adsb-agent.service" in run.stdout
    files = tree(dest)
    assert set(files) == {*FILES, LINK}
    for rel, (mode, src) in FILES.items():
        path = dest / rel
        assert path.stat().st_mode & 0o777 == mode, rel
        if src is not None:
            assert path.read_bytes() == (REPO / src).read_bytes(), rel
    assert (dest / "etc/adsb-agent/mqtt-password").read_bytes() == b""
    for rel, mode in DIRS.items():
        assert (dest / rel).is_dir() and (dest / rel).stat().st_mode & 0o777 == mode
    assert os.readlink(dest / LINK) == "/opt/adsb-agent/venv/bin/adsb-agent"
    assert "not started: edit /etc/adsb-agent/agent.toml" in run.stdout
    assert "--volatile-journal" in run.stdout  # the SD card hint


def test_second_run_changes_nothing_and_keeps_the_technicians_files(tmp_path):
    dest = tmp_path / "root"
    install(dest)
    cfg = dest / "etc/adsb-agent/agent.toml"
    cfg.write_text('[site]\nname = "strip-01"\n')
    (dest / "etc/adsb-agent/mqtt-password").write_text("s3cret\n")
    (dest / "var/lib/adsb-agent/outbox.sqlite").write_bytes(b"records not yet sent")
    before = tree(dest)
    run = install(dest)
    assert tree(dest) == before
    assert "installed /" not in run.stdout  # every file reported unchanged
    assert "kept your /etc/adsb-agent/agent.toml" in run.stdout
    assert cfg.read_text() == '[site]\nname = "strip-01"\n'


def test_a_prepared_site_file_is_used_on_first_install_and_journal_goes_volatile(tmp_path):
    dest = tmp_path / "root"
    site = REPO / "config" / "site-example.toml"
    run = install(dest, "--config", str(site), "--volatile-journal")
    assert (dest / "etc/adsb-agent/agent.toml").read_bytes() == site.read_bytes()
    drop_in = dest / "etc/systemd/journald.conf.d/50-adsb-agent-volatile.conf"
    assert "Storage=volatile" in drop_in.read_text()
    assert "skipped: systemctl restart adsb-agent.service" in run.stdout  # started, not left


def test_uninstall_keeps_config_and_outbox_and_purge_removes_everything(tmp_path):
    dest = tmp_path / "root"
    install(dest, "--volatile-journal")
    (dest / "var/lib/adsb-agent/outbox.sqlite").write_bytes(b"records not yet sent")
    run = install(dest, "--uninstall")
    assert set(tree(dest)) == {
        "etc/adsb-agent/agent.toml",
        "etc/adsb-agent/mqtt-password",
        "var/lib/adsb-agent/outbox.sqlite",
    }
    assert "kept /etc/adsb-agent" in run.stdout
    install(dest, "--uninstall", "--purge")
    assert tree(dest) == {}


def test_installer_passes_shellcheck():
    exe = shutil.which("shellcheck")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("shellcheck is not installed (apt-get install shellcheck)")
        pytest.skip("shellcheck is not installed")
    run = subprocess.run([exe, str(INSTALL)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout


def test_unknown_option_is_refused_with_usage():
    run = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True)
    assert run.returncode == 2 and "unknown option: --frobnicate" in run.stderr
    assert "--uninstall" in run.stdout


def test_udev_rule_and_blacklist_cover_the_dongles():
    rules = [
        line
        for line in (REPO / "systemd/60-adsb-agent-rtlsdr.rules").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert len(rules) == 2
    for line, pid in zip(rules, ("2838", "2832"), strict=True):
        assert 'ATTRS{idVendor}=="0bda"' in line and f'ATTRS{{idProduct}}=="{pid}"' in line
        assert 'GROUP="plugdev"' in line and 'MODE="0660"' in line
    blacklisted = {
        line.split()[1]
        for line in (REPO / "systemd/blacklist-rtlsdr.conf").read_text().splitlines()
        if line.startswith("blacklist ")
    }
    assert {"dvb_usb_rtl28xxu", "rtl2832", "rtl2830"} <= blacklisted


def test_sysusers_file_creates_the_user_in_plugdev_and_dialout(tmp_path):
    """systemd-sysusers itself reads the file (dry run against an empty root)."""
    exe = shutil.which("systemd-sysusers")
    if exe is None:
        pytest.fail("systemd-sysusers is missing (apt-get install systemd)")
    src = REPO / "systemd/adsb-agent.sysusers"
    argv = [exe, "--dry-run", f"--root={tmp_path}", str(src)]
    run = (
        sandbox.run(argv)
        if sandbox.available()
        else subprocess.run(argv, capture_output=True, text=True, timeout=60)
    )
    assert run.returncode == 0, run.stderr
    said = run.stdout + run.stderr
    assert "Creating user 'adsb-agent'" in said or "Creating user adsb-agent" in said
    lines = src.read_text().splitlines()
    assert "m adsb-agent plugdev" in lines and "m adsb-agent dialout" in lines
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


def test_site_example_validates_and_its_source_urls_parse():
    cfg = load_config(REPO / "config" / "site-example.toml")
    assert cfg.site.position is not None and cfg.mqtt.username == cfg.site.name
    for source in cfg.sources:  # parsed into the kind's typed options at load
        assert source.options.gain == 40.2  # type: ignore[attr-defined]
    assert load_config(REPO / "config" / "agent.toml").state_dir == "/var/lib/adsb-agent"


def test_readme_walks_a_technician_through_the_install():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Install on a Raspberry Pi", 1)[1].split("\n## ", 1)[0]
    for step in (
        "sudo ./install.sh",
        "/etc/adsb-agent/agent.toml",
        "/etc/adsb-agent/mqtt-password",
        "sudo adsb-agent check",
        "systemctl restart adsb-agent",
        "adsb-agent status",
        "journalctl -u adsb-agent -f",
        "adsb-agent tail",
        "--uninstall",
    ):
        assert step in section, step
