"""install.sh: the DESTDIR dry run lays out every file, a second run changes nothing and
keeps the technician's configuration, --uninstall keeps config and outbox, --purge
does not; the udev rule, blacklist and sysusers file say what they must.

Real installs (no DESTDIR) run in a private mount namespace with throw-away overlay
layers on /etc, /opt, /var/lib and /usr/local, so install.sh really writes where it
would on a Pi and the host keeps nothing: a unit that fails to start, a system
without systemd as PID 1 (a chroot), --uninstall as root.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
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
    scripts = sorted(str(p) for p in (REPO / "scripts").glob("*.sh"))
    run = subprocess.run([exe, str(INSTALL), *scripts], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout


def test_readme_names_the_slow_install_checks_and_they_are_executable():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Install on a Raspberry Pi", 1)[1].split("\n## ", 1)[0]
    assert "scripts/pi-qemu-install.sh" in section
    assert "scripts/oldest-deps.sh" in readme
    for name in ("pi-qemu-install.sh", "oldest-deps.sh", "test.sh", "demo.sh"):
        assert os.access(REPO / "scripts" / name, os.X_OK), name


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


# --- real installs in a throw-away copy of this system ------------------------------

# The trees install.sh writes into outside DESTDIR, each overlaid in the namespace.
OVERLAID = ("/etc", "/opt", "/var/lib", "/usr/local")
# systemd itself cannot run in the test's namespace, so with /run/systemd/system staged
# these stand in for it, logging their calls: a systemctl whose `restart
# adsb-agent.service` fails the way a broken unit does, one that succeeds, the journal
# the broken unit left, and udevadm.
FAILING_SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$CALLS"
if [ "$1" = restart ] && [ "$2" = adsb-agent.service ]; then
    echo "Job for adsb-agent.service failed because the control process exited with error code." >&2
    exit 1
fi
"""
SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$CALLS"
"""
JOURNALCTL = """#!/bin/sh
echo "journalctl $*" >> "$CALLS"
echo "adsb-agent[4242]: invalid configuration: sources: nothing to listen to"
"""
UDEVADM = """#!/bin/sh
echo "udevadm $*" >> "$CALLS"
"""


@pytest.fixture
def overlay_root(tmp_path):
    """A function running a bash script on this system seen through overlay layers.

    `booted` stages /run/systemd/system (systemd as PID 1, as install.sh tests it);
    `fakes` are scripts put first on PATH. The agent's venv is this test run's own
    environment, linked where install.sh expects it (the tests pass --no-venv)."""
    if not sandbox.available():
        if os.environ.get("CI"):
            pytest.fail("mount namespaces are needed (run the tests as root)")
        pytest.skip("needs root for a mount namespace")

    def run(
        script: str, *, booted: bool, fakes: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        mounts = []
        for n, top in enumerate(OVERLAID):
            upper, work = tmp_path / f"layer{n}" / "upper", tmp_path / f"layer{n}" / "work"
            upper.mkdir(parents=True)
            work.mkdir()
            opts = f"lowerdir={top},upperdir={upper},workdir={work}"
            mounts.append(f"mount -t overlay overlay -o {opts} {top}")
        if booted:
            mounts.append("mkdir -p /run/systemd/system")
        fake_bin = tmp_path / "fake-bin"
        fake_bin.mkdir()
        for name, body in (fakes or {}).items():
            (fake_bin / name).write_text(body)
            (fake_bin / name).chmod(0o755)
        mounts.append(f"mkdir -p /opt/adsb-agent && ln -s {sys.prefix} /opt/adsb-agent/venv")
        env = {
            **os.environ,
            "PATH": f"{fake_bin}:{os.environ['PATH']}",
            "CALLS": str(tmp_path / "calls"),
        }
        env.pop("DESTDIR", None)
        return sandbox.run(
            ["bash", "-euo", "pipefail", "-c", textwrap.dedent(script)],
            prelude="\n".join(mounts),
            env=env,
            timeout=120,
        )

    return run


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_a_unit_that_fails_to_start_does_not_stop_the_install_before_the_self_check(
    tmp_path, overlay_root
):
    run = overlay_root(
        f"bash {INSTALL} --no-apt --no-venv --config {REPO}/config/agent.toml",
        booted=True,
        fakes={"systemctl": FAILING_SYSTEMCTL, "journalctl": JOURNALCTL, "udevadm": UDEVADM},
    )
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "systemctl restart adsb-agent.service" in calls(tmp_path)
    assert "adsb-agent.service did not start; its last log lines:" in out
    assert "adsb-agent[4242]: invalid configuration" in out  # the journal, shown
    # ... and then the real self-check ran on the installed configuration.
    check = out.index("self-check (sudo adsb-agent check runs it again)")
    assert out.index("did not start") < check
    assert "PASS  config      /etc/adsb-agent/agent.toml: valid" in out[check:]
    assert out.rstrip().endswith("logs: journalctl -u adsb-agent -f")


def test_without_systemd_as_pid1_files_are_installed_and_enabled_and_nothing_started(
    tmp_path, overlay_root
):
    """A chroot (an image build, scripts/pi-qemu-install.sh): the real systemctl enables
    the unit offline; reloading or starting would only fail there."""
    if shutil.which("systemctl") is None:
        pytest.fail("systemctl is missing (apt-get install systemd)")
    run = overlay_root(
        f"""
        bash {INSTALL} --no-apt --no-venv --config {REPO}/config/agent.toml
        test -L /etc/systemd/system/multi-user.target.wants/adsb-agent.service
        echo ENABLED
        test -f /etc/systemd/system/adsb-agent.service && echo UNIT
        """,
        booted=False,
    )
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "systemd is not running here (no /run/systemd/system" in out
    assert "sudo systemctl restart adsb-agent && sudo adsb-agent check" in out
    assert "skipped: systemctl daemon-reload" in out
    assert "skipped: systemctl restart adsb-agent.service" in out
    assert "System has not been booted" not in out + run.stderr  # no raw systemctl error
    assert "PASS  config      /etc/adsb-agent/agent.toml: valid" in out  # self-check ran
    assert "ENABLED" in out and "UNIT" in out


def test_uninstall_as_root_without_destdir_removes_the_agent_and_keeps_the_config(
    tmp_path, overlay_root
):
    run = overlay_root(
        f"""
        bash {INSTALL} --no-apt --no-venv --no-check
        test -f /etc/systemd/system/adsb-agent.service && echo INSTALLED
        bash {INSTALL} --uninstall
        for path in /etc/systemd/system/adsb-agent.service /usr/local/bin/adsb-agent \\
                /opt/adsb-agent /etc/udev/rules.d/60-adsb-agent-rtlsdr.rules; do
            if [ -e "$path" ] || [ -L "$path" ]; then echo "LEFT $path"; fi
        done
        test -f /etc/adsb-agent/agent.toml && echo KEPT
        bash {INSTALL} --uninstall --purge
        if [ -e /etc/adsb-agent ] || [ -e /var/lib/adsb-agent ]; then echo LEFT_DATA; fi
        if getent passwd adsb-agent >/dev/null; then echo LEFT_USER; fi
        echo FINISHED
        """,
        booted=True,
        fakes={"systemctl": SYSTEMCTL, "journalctl": JOURNALCTL, "udevadm": UDEVADM},
    )
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "INSTALLED" in out and "KEPT" in out and "FINISHED" in out
    assert "LEFT" not in out
    assert "removed /opt/adsb-agent" in out and "removed user adsb-agent" in out
    assert "systemctl disable --now adsb-agent.service" in calls(tmp_path)


def _unit_directory_modes() -> dict[str, int]:
    """XDirectory= -> its XDirectoryMode= (systemd's default 0755 when unset)."""
    settings = [
        line.split("=", 1)
        for line in (REPO / "systemd/adsb-agent.service").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    ]
    values = dict(settings)
    dirs = {"StateDirectory": "/var/lib", "ConfigurationDirectory": "/etc"}
    return {
        f"{dirs[key][1:]}/{value}": int(values.get(f"{key}Mode", "0755"), 8)
        for key, value in settings
        if key in dirs
    }


def test_the_units_directory_modes_are_the_ones_install_sh_creates(tmp_path):
    """systemd warns on every start when a StateDirectory / ConfigurationDirectory
    exists with another mode than the unit asks for."""
    dest = tmp_path / "root"
    install(dest)
    modes = _unit_directory_modes()
    assert set(modes) == {"etc/adsb-agent", "var/lib/adsb-agent"}
    for rel, mode in modes.items():
        assert (dest / rel).stat().st_mode & 0o777 == mode, rel


# --- the oldest numpy the agent declares (Debian bookworm's is 1.24) ----------------


def _declared_lower_bound(dist: str) -> str:
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if d.split(">=")[0].strip().lower() == dist]
    return spec.split(">=")[1].split(",")[0].strip()


def test_demo_runs_on_the_oldest_numpy_declared_and_sends_the_same_records(tmp_path):
    """install.sh's venv sees Debian's python3-numpy (1.24 on bookworm, what a Pi gets);
    the agent must not use anything newer than the bound pyproject.toml declares.
    scripts/oldest-deps.sh does this for every dependency, in a fresh venv."""
    bound = _declared_lower_bound("numpy")
    target = tmp_path / "numpy-oldest"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            f"numpy=={bound}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if pip.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot install numpy=={bound}: {pip.stderr}")
        pytest.skip(f"cannot install numpy=={bound} (offline?)")
    demo = (
        "import sys, numpy; print('numpy', numpy.__version__, file=sys.stderr)\n"
        "from agent.cli import main; sys.exit(main(['demo']))"
    )

    def run_demo(numpy_path: str | None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [numpy_path, str(REPO)]))}
        return subprocess.run(
            [sys.executable, "-c", demo], env=env, capture_output=True, text=True, timeout=120
        )

    oldest, current = run_demo(str(target)), run_demo(None)
    assert oldest.returncode == 0, oldest.stderr[-3000:]
    wanted = ".".join([*bound.split("."), "0", "0"][:3])
    assert f"numpy {wanted}\n" in oldest.stderr
    assert f"numpy {wanted}\n" not in current.stderr  # really two numpys
    assert '"type":"event"' in oldest.stdout
    assert oldest.stdout == current.stdout  # same frames, same records
