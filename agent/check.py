"""`adsb-agent check`: a self-check a field technician can read.

Each check prints one PASS / WARN / FAIL / SKIP line naming what it looked at and,
when something is wrong, a `fix:` line saying what to do. The exit status is
non-zero when any check fails. Every check takes the places it looks at as
arguments (sysfs root, /dev root, state directory, configuration) so the tests stage
each failure for real: a fake sysfs tree with the DVB driver bound, a broker that
refuses, a full or read-only file system in a private mount namespace.

What is checked: the configuration; the RTL-SDR dongle present on USB, not held by
the DVB-T kernel driver, its device node usable by the plugdev group; samples or
frames arriving from a source and a sane noise floor; the broker reachable, the TLS
certificate trusted, the credentials accepted and a publish allowed; the clock
synchronised; room for the outbox; Raspberry Pi under-voltage and throttling.
"""

from __future__ import annotations

import ctypes
import grp
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from agent.config import DEFAULT_CONFIG, DEFAULT_CREDENTIAL, AgentConfig, build_config, read_toml
from agent.errors import ConfigError, SourceError

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"
# USB IDs of RTL2832U dongles (see systemd/60-adsb-agent-rtlsdr.rules).
RTLSDR_IDS = (("0bda", "2838"), ("0bda", "2832"))
DVB_DRIVERS = ("dvb_usb_rtl28xxu", "rtl2832", "rtl2830", "rtl2832_sdr")
DEVICE_GROUP = "plugdev"
# Median sample magnitude (dBFS) outside which a receiver is not working well:
# above NOISE_FAIL the ADC is overloaded (gain too high, a transmitter next door);
# above NOISE_WARN the gain leaves little headroom; below NOISE_LOW the samples are
# flat (dead tuner, nothing connected and gain at its minimum). Real recordings sit
# around -30 to -38 dBFS.
NOISE_FAIL_DBFS = -15.0
NOISE_WARN_DBFS = -24.0
NOISE_LOW_DBFS = -44.0
# How long `check --source` listens.
SOURCE_LISTEN_S = 3.0
# Broker connect + CONNACK + PUBACK budget.
BROKER_TIMEOUT_S = 8.0
# The outbox should be able to reach its configured size; below this it fails at once.
DISK_MIN_FREE_MB = 20.0
# A clock earlier than this was never set (no RTC on a Pi, fake-hwclock at image date).
PLAUSIBLE_EPOCH = 1_704_067_200  # 2024-01-01
# Raspberry Pi firmware throttling bits (vcgencmd get_throttled).
_THROTTLE_BITS = {
    0: "under-voltage now",
    1: "ARM frequency capped now",
    2: "throttled now",
    3: "soft temperature limit now",
    16: "under-voltage since boot",
    17: "ARM frequency capped since boot",
    18: "throttled since boot",
    19: "soft temperature limit since boot",
}
THROTTLED_FILE = "devices/platform/soc/soc:firmware/get_throttled"


@dataclass(frozen=True)
class Result:
    """One check's verdict: `state` is PASS, WARN, FAIL or SKIP."""

    name: str
    state: str
    detail: str
    fix: str = ""


def format_result(r: Result) -> str:
    line = f"{r.state:<4}  {r.name:<10}  {r.detail}"
    return line + (f"\n      fix: {r.fix}" if r.fix and r.state in (FAIL, WARN) else "")


# -- configuration ----------------------------------------------------------------------


def check_config(
    path: str | Path | None,
    *,
    sources: Sequence[str] | None = None,
    mqtt_url: str | None = None,
    password_file: str | None = None,
) -> tuple[Result, AgentConfig | None]:
    """Read and validate the configuration (with `--source`/`--mqtt` laid over it)."""
    try:
        data: dict[str, Any] = read_toml(path) if path is not None else {}
        if sources:
            data["sources"] = list(sources)
        if mqtt_url:
            data.setdefault("mqtt", {})["url"] = mqtt_url
        if password_file:
            data.setdefault("mqtt", {})["password_file"] = password_file
        cfg = build_config(data)
    except ConfigError as err:
        where = str(path) if path else "the command line"
        fix = SUDO_FIX if path is not None and _denied(Path(path)) else ""
        return (
            Result("config", FAIL, f"{where}: " + "; ".join(err.problems), fix),
            None,
        )
    where = str(path) if path else "defaults"
    srcs = ", ".join(s.url for s in cfg.sources) or "no sources"
    return Result("config", PASS, f"{where}: valid; site {cfg.site.name}; {srcs}"), cfg


SUDO_FIX = "run with sudo: `sudo adsb-agent check` (/etc/adsb-agent is root's and the service's)"


def _denied(path: Path) -> bool:
    """Whether this user may not read `path` (the installed files are 0640 in a 0750
    directory: a technician without sudo gets told so, not a traceback)."""
    try:
        with path.open("rb"):
            return False
    except PermissionError:
        return True
    except OSError:
        return False


# -- the dongle -------------------------------------------------------------------------


@dataclass(frozen=True)
class Dongle:
    """An RTL-SDR found in sysfs."""

    path: Path  # /sys/bus/usb/devices/<port>
    vid: str
    pid: str
    busnum: int | None
    devnum: int | None
    product: str
    serial: str
    drivers: tuple[str, ...]  # kernel drivers bound to its interfaces

    @property
    def port(self) -> str:
        return self.path.name


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def find_dongles(sysfs: Path) -> list[Dongle]:
    """RTL-SDR dongles under `<sysfs>/bus/usb/devices`, with the drivers bound to them."""
    devices = sysfs / "bus" / "usb" / "devices"
    found = []
    for dev in sorted(devices.glob("*")) if devices.is_dir() else []:
        vid, pid = _read(dev / "idVendor").lower(), _read(dev / "idProduct").lower()
        if (vid, pid) not in RTLSDR_IDS:
            continue
        drivers = []
        for intf in sorted(devices.glob(f"{dev.name}:*")) + sorted(dev.glob(f"{dev.name}:*")):
            link = intf / "driver"
            if link.exists() or link.is_symlink():
                drivers.append(os.path.basename(os.readlink(link)))
        bus, num = _read(dev / "busnum"), _read(dev / "devnum")
        found.append(
            Dongle(
                dev,
                vid,
                pid,
                int(bus) if bus.isdigit() else None,
                int(num) if num.isdigit() else None,
                _read(dev / "product") or "RTL2832U",
                _read(dev / "serial"),
                tuple(dict.fromkeys(drivers)),
            )
        )
    return found


def check_dongle(cfg: AgentConfig | None, sysfs: Path, dev: Path) -> list[Result]:
    """Dongle present, not claimed by the DVB driver, device node usable by plugdev."""
    needed = cfg is not None and any(s.kind.scheme == "rtlsdr" for s in cfg.sources)
    bad = FAIL if needed else WARN
    dongles = find_dongles(sysfs)
    loaded = [m for m in DVB_DRIVERS if (sysfs / "module" / m).is_dir()]
    if not dongles:
        if needed:
            return [
                Result(
                    "dongle",
                    FAIL,
                    "no RTL-SDR (USB 0bda:2838 or 0bda:2832) found",
                    "plug the dongle in directly or through a powered hub; `lsusb` should list "
                    "0bda:2838; a dongle that comes and goes is short of power",
                )
            ]
        return [Result("dongle", SKIP, "no RTL-SDR on USB (no rtlsdr:// source configured)")]
    out = []
    for d in dongles:
        name = f"{d.vid}:{d.pid} {d.product}" + (f" serial {d.serial}" if d.serial else "")
        claimed = [drv for drv in d.drivers if drv in DVB_DRIVERS]
        if claimed:
            out.append(
                Result(
                    "dongle",
                    bad,
                    f"{name} at USB {d.port} is held by kernel driver {claimed[0]}",
                    "install the blacklist (install.sh puts it in /etc/modprobe.d), then "
                    "`sudo modprobe -r dvb_usb_rtl28xxu` or reboot",
                )
            )
            continue
        out.append(Result("dongle", PASS, f"{name} at USB {d.port}, no kernel driver on it"))
        out.append(_node_result(d, dev, bad))
    if loaded and not any(r.state != PASS for r in out):
        out.append(
            Result(
                "dongle",
                WARN,
                f"DVB kernel module {loaded[0]} is loaded (not bound to the dongle now)",
                "install the blacklist so it cannot grab the dongle after a replug",
            )
        )
    return out


def _node_result(d: Dongle, dev: Path, bad: str) -> Result:
    if d.busnum is None or d.devnum is None:
        return Result("usb node", WARN, f"no bus/device number in sysfs for {d.port}")
    node = dev / "bus" / "usb" / f"{d.busnum:03d}" / f"{d.devnum:03d}"
    try:
        st = node.stat()
    except OSError:
        return Result("usb node", bad, f"{node} is missing", "is udev running? `udevadm trigger`")
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    mode = st.st_mode & 0o777
    usable = mode & 0o006 == 0o006 or (group == DEVICE_GROUP and mode & 0o060 == 0o060)
    if not usable:
        return Result(
            "usb node",
            bad,
            f"{node} is group {group} mode {mode:04o}: the {DEVICE_GROUP} group cannot open it",
            "install the udev rule (/etc/udev/rules.d/60-adsb-agent-rtlsdr.rules), then "
            "`sudo udevadm control --reload && sudo udevadm trigger` or replug",
        )
    return Result("usb node", PASS, f"{node} group {group} mode {mode:04o}")


# -- a source ---------------------------------------------------------------------------


def check_source(url: str, listen_s: float = SOURCE_LISTEN_S) -> list[Result]:
    """Open `url`, listen for `listen_s` seconds: data arriving, noise floor sane.

    The advice when nothing arrives is the source kind's own (SourceKind's
    cannot_open_fix and no_data_fix).
    """
    from agent.sources import OpenContext, parse_source
    from agent.sources.base import noise_floor_dbfs

    try:
        spec = parse_source(url)
        src = spec.open(OpenContext(start_time=round(time.time(), 3)))
    except SourceError as err:
        return [Result("samples", FAIL, f"{url}: cannot open: {err}")]
    except ValueError as err:  # urlsplit on a malformed URL ("beast://[::1")
        return [Result("samples", FAIL, f"{url}: not a source URL: {err}")]
    stop = threading.Event()
    frames = [0]
    failure: list[str] = []

    def consume() -> None:
        try:
            for _ in src.frames(stop):
                frames[0] += 1
        except Exception as err:  # report it, whatever the source raised
            failure.append(f"{type(err).__name__}: {err}")

    reader = threading.Thread(target=consume, name="check-source", daemon=True)
    said = _SourceWarnings()
    source_log = logging.getLogger("agent.sources")
    source_log.addHandler(said)
    started = time.monotonic()
    try:
        reader.start()
        reader.join(listen_s)
        elapsed = time.monotonic() - started
        stop.set()
        reader.join(2.0)
    finally:
        source_log.removeHandler(said)
    counts = dict(src.counts)
    if failure:
        return [Result("samples", FAIL, f"{url}: {failure[0]}")]
    samples, nbytes = counts.get("samples", 0), counts.get("bytes", 0)
    got = (
        ", ".join(f"{n} {what}" for n, what in ((samples, "samples"), (nbytes, "bytes")) if n)
        or "no samples"
    )
    if not (samples or nbytes or frames[0]):
        tries = counts.get("open_failed", 0) + counts.get("connect_failed", 0)
        if tries:
            return [
                Result(
                    "samples",
                    FAIL,
                    f"{url}: could not open or connect ({tries} attempts in {elapsed:.1f} s)"
                    + (f"; the source said: {said.first}" if said.first else ""),
                    spec.kind.cannot_open_fix,
                )
            ]
        return [
            Result(
                "samples",
                FAIL,
                f"{url}: nothing arrived in {elapsed:.1f} s",
                spec.kind.no_data_fix,
            )
        ]
    out = [Result("samples", PASS, f"{url}: {got}, {frames[0]} frames in {elapsed:.1f} s")]
    noise = noise_floor_dbfs(src)
    if noise is not None:
        out.append(judge_noise(noise))
    return out


class _SourceWarnings(logging.Handler):
    """Keeps the first warning a source logs (why it cannot open, in its words)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.first is None:
            self.first = record.getMessage()


def judge_noise(noise_dbfs: float) -> Result:
    """The verdict on a noise floor (median sample magnitude, dBFS)."""
    text = f"noise floor {noise_dbfs:.1f} dBFS"
    if noise_dbfs > NOISE_FAIL_DBFS:
        return Result(
            "noise",
            FAIL,
            f"{text}: the receiver is overloaded",
            "lower the gain (gain=30 in the source URL), add a 1090 MHz filter, move away "
            "from transmitters (firmware_notes/gain.md)",
        )
    if noise_dbfs > NOISE_WARN_DBFS:
        return Result("noise", WARN, f"{text}: high", "try a lower gain (firmware_notes/gain.md)")
    if noise_dbfs < NOISE_LOW_DBFS:
        return Result(
            "noise",
            FAIL,
            f"{text}: the samples are flat",
            "no antenna, an unpowered LNA (biastee=1?) or a dead tuner (firmware_notes/dongle.md)",
        )
    return Result("noise", PASS, text)


# -- the broker -------------------------------------------------------------------------


def check_broker(
    cfg: AgentConfig,
    *,
    credential: Path | None = DEFAULT_CREDENTIAL,
    timeout: float = BROKER_TIMEOUT_S,
    ask_password: bool = False,
) -> Result:
    """Connect as the agent would (TLS, credentials) and publish one QoS 1 probe.

    The client id is not the agent's, so a running agent keeps its session. The probe
    goes to `<prefix>/<site>/check` (not retained, no consumer listens there): an
    MQTT 5 broker answers a publish the ACL forbids with reason 0x87.
    """
    import paho.mqtt.client as mqtt

    from agent.outputs import mqtt_link, topics

    m = cfg.mqtt
    if not m.url:
        return Result("broker", SKIP, "no broker configured (records go to standard output)")
    try:
        # A password in the URL wins over the credential file (resolve_password).
        where = mqtt_link.endpoint(mqtt_link.with_credential(m, credential))
        if ask_password:  # at a terminal, for a URL with a user and no password anywhere
            where = mqtt_link.ask_password(where, interactive=True)
        client = mqtt_link.make_client(m, where, f"adsb-agent-check-{os.getpid()}")
    except ConfigError as err:
        return Result("broker", FAIL, "; ".join(err.problems))
    host, port, user = where.host, where.port, where.user
    endpoint = f"{where}" + (" (TLS)" if where.tls else "")
    v5 = m.protocol == "5"
    answers: dict[str, Any] = {}
    client.on_connect = lambda c, u, f, rc, p: answers.__setitem__("connack", rc)
    client.on_publish = lambda c, u, mid, rc, p: answers.__setitem__("puback", rc)
    try:
        client.connect(host, port, keepalive=max(10, int(timeout) * 2))
    except ssl.SSLCertVerificationError as err:
        return Result(
            "broker",
            FAIL,
            f"{endpoint}: certificate not trusted: {err.verify_message}",
            "set mqtt.ca_file to the CA that signed the broker's certificate; check the clock",
        )
    except ssl.SSLError as err:
        return Result("broker", FAIL, f"{endpoint}: TLS failed: {err.reason or err}")
    except ConnectionRefusedError:
        return Result(
            "broker",
            FAIL,
            f"{endpoint}: connection refused (nothing listening)",
            "check the host and port in mqtt.url",
        )
    except socket.gaierror as err:
        return Result(
            "broker", FAIL, f"{endpoint}: cannot resolve {host}: {err.strerror}", "check DNS"
        )
    except OSError as err:
        return Result(
            "broker",
            FAIL,
            f"{endpoint}: cannot connect: {err.strerror or err}",
            "is the link up? a firewall on the way?",
        )
    deadline = time.monotonic() + timeout
    try:
        while "connack" not in answers and time.monotonic() < deadline:
            if client.loop(0.1) not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                break
        rc = answers.get("connack")
        if rc is None:
            return Result(
                "broker",
                FAIL,
                f"{endpoint}: no answer to CONNECT in {timeout:.0f} s",
                "a client certificate may be required (mqtt.cert_file, mqtt.key_file)",
            )
        who = f"as {user}" if user else "anonymously"
        if rc.is_failure:
            return Result(
                "broker",
                FAIL,
                f"{endpoint}: refused {who}: {rc}",
                "check mqtt.username and the password (/etc/adsb-agent/mqtt-password)",
            )
        topic = topics.SiteTopics(m.topic_prefix, cfg.site.name).check
        info = client.publish(topic, b"adsb-agent check", qos=1)
        while "puback" not in answers and time.monotonic() < deadline:
            if client.loop(0.1) not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                break
        ack = answers.get("puback")
        if ack is None:
            return Result("broker", FAIL, f"{endpoint}: connected {who}, but no PUBACK")
        if ack.is_failure:
            return Result(
                "broker",
                FAIL,
                f"{endpoint}: connected {who}, but publishing to {topic} is refused: {ack}",
                "the broker's ACL must let this user write adsb/v1/<site>/# (site.name)",
            )
        del info
        note = "" if v5 else " (MQTT 3.1.1 cannot report ACL refusals)"
        return Result("broker", PASS, f"{endpoint}: connected {who}, publish allowed{note}")
    finally:
        client.disconnect()


# -- the clock --------------------------------------------------------------------------

TIME_ERROR = 5  # adjtimex(2): clock not synchronised
_STA_UNSYNC = 0x0040


@dataclass(frozen=True)
class ClockReading:
    """What adjtimex(2) says: its return state, status flags and maximum error."""

    state: int
    status: int
    maxerror_us: int
    now: float


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h), 64-bit layout; trailing padding is left generous.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("tv_sec", ctypes.c_long),
        ("tv_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_pad", ctypes.c_int * 11),
    ]


def read_clock() -> ClockReading | None:
    """The kernel's clock discipline state (read only: modes = 0); None if unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return ClockReading(state, tx.status, tx.maxerror, time.time())


def judge_clock(reading: ClockReading | None) -> Result:
    """Synchronised means NTP (chrony/timesyncd) or GPS told the kernel it is."""
    if reading is None:
        return Result("clock", SKIP, "adjtimex is not available here")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(reading.now))
    if reading.now < PLAUSIBLE_EPOCH:
        return Result(
            "clock",
            FAIL,
            f"clock says {stamp}: it was never set",
            "connect to the internet once, or fit a GPS and chrony (firmware_notes/time.md)",
        )
    if reading.state == TIME_ERROR or reading.status & _STA_UNSYNC:
        return Result(
            "clock",
            FAIL,
            f"{stamp}, not synchronised: record times may be wrong",
            "`timedatectl` should say 'System clock synchronized: yes'; without internet "
            "use GPS + chrony (firmware_notes/time.md)",
        )
    return Result(
        "clock", PASS, f"{stamp}, synchronised (max error {reading.maxerror_us / 1000:.0f} ms)"
    )


# -- disk -------------------------------------------------------------------------------


def check_disk(state_dir: str | Path, need_mb: float) -> Result:
    """The outbox directory (or the nearest existing parent) is writable and has room."""
    path = Path(state_dir)
    probe_dir = path
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=".adsb-agent-check-", dir=probe_dir)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
    except PermissionError as err:
        return Result("disk", FAIL, f"{probe_dir}: cannot write: {err.strerror}", SUDO_FIX)
    except OSError as err:
        return Result(
            "disk",
            FAIL,
            f"{probe_dir}: cannot write: {err.strerror}",
            "a read-only file system usually means SD card errors: `dmesg | grep -i ext4`; "
            "a full one: `df -h`, `journalctl --vacuum-size=50M`",
        )
    usage = shutil.disk_usage(probe_dir)
    free_mb = usage.free / 1e6
    where = f"{path}" + ("" if probe_dir == path else f" (will be created in {probe_dir})")
    text = f"{where}: {free_mb:.0f} MB free, outbox may use {need_mb:.0f} MB"
    if free_mb < DISK_MIN_FREE_MB:
        return Result("disk", FAIL, text, "free space: `df -h`, `journalctl --vacuum-size=50M`")
    if free_mb < need_mb:
        return Result("disk", WARN, text, "lower outbox.max_mb or free space")
    return Result("disk", PASS, text)


# -- Raspberry Pi power and heat --------------------------------------------------------


def read_throttled(sysfs: Path, vcgencmd: str | None = None) -> int | None:
    """The firmware's throttled bit mask from sysfs (hex text), else `vcgencmd`."""
    text = _read(sysfs / THROTTLED_FILE)
    if not text and vcgencmd:
        try:
            run = subprocess.run(
                [vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=5
            )
            text = run.stdout.strip().partition("=")[2]
        except (OSError, subprocess.SubprocessError):
            text = ""
    try:
        return int(text, 16) if text else None
    except ValueError:
        return None


def judge_throttled(mask: int | None) -> Result:
    if mask is None:
        return Result("power", SKIP, "no Raspberry Pi firmware flags (not a Pi?)")
    flags = [text for bit, text in _THROTTLE_BITS.items() if mask & (1 << bit)]
    detail = f"get_throttled=0x{mask:x}" + (": " + ", ".join(flags) if flags else ": all clear")
    fix = (
        "use the official 5.1 V supply and a short thick USB cable; a dongle with LNA or "
        "bias-tee wants a powered hub; heat: a case with airflow (firmware_notes/power.md)"
    )
    if mask & 0b0101:  # under-voltage or throttled now
        return Result("power", FAIL, detail, fix)
    if mask & 0b1010 or mask >> 16:
        return Result("power", WARN, detail, fix)
    return Result("power", PASS, detail)


# -- all of them ------------------------------------------------------------------------


@dataclass
class Places:
    """Where checks look; the tests point these at staged trees."""

    sysfs: Path = Path("/sys")
    dev: Path = Path("/dev")
    credential: Path | None = DEFAULT_CREDENTIAL
    vcgencmd: str | None = None


def run_checks(
    config: str | Path | None,
    *,
    sources: Sequence[str] | None = None,
    mqtt_url: str | None = None,
    places: Places | None = None,
    listen_s: float = SOURCE_LISTEN_S,
    password_file: str | None = None,
    ask_password: bool = False,
) -> list[Result]:
    """Every check, in the order a technician fixes things."""
    places = places or Places(vcgencmd=shutil.which("vcgencmd"))
    results: list[Result] = []
    cfg_result, cfg = check_config(
        config, sources=sources, mqtt_url=mqtt_url, password_file=password_file
    )
    results.append(cfg_result)
    results += check_dongle(cfg, places.sysfs, places.dev)
    # The sources given on the command line, else the configured ones (what would run).
    urls = list(sources) if sources else [s.url for s in cfg.sources] if cfg is not None else []
    for url in urls:
        results += check_source(url, listen_s)
    if cfg is not None:
        results.append(check_broker(cfg, credential=places.credential, ask_password=ask_password))
    results.append(judge_clock(read_clock()))
    if cfg is not None:
        results.append(check_disk(cfg.state_dir, cfg.outbox.max_mb))
    results.append(judge_throttled(read_throttled(places.sysfs, places.vcgencmd)))
    return results


def report(results: Iterable[Result], out: IO[str] | None = None) -> int:
    """Print every result; 1 when any failed, else 0."""
    stream = out or sys.stdout
    failed = 0
    for r in results:
        stream.write(format_result(r) + "\n")
        failed += r.state == FAIL
    stream.write(
        f"{failed} check(s) failed\n" if failed else "all checks passed (warnings above, if any)\n"
    )
    stream.flush()
    return 1 if failed else 0


def main(
    config: str | None,
    *,
    sources: Sequence[str] | None = None,
    mqtt_url: str | None = None,
    password_file: str | None = None,
    out: IO[str] | None = None,
) -> int:
    """`adsb-agent check`: the installed configuration unless `config` names another;
    at a terminal, asks for a broker password the URL's user lacks."""
    path: str | Path | None = config
    if path is None:
        try:
            installed = DEFAULT_CONFIG.exists()
        except PermissionError:  # /etc/adsb-agent is 0750: check_config says "sudo"
            installed = True
        path = DEFAULT_CONFIG if installed else None
    results = run_checks(
        path,
        sources=sources,
        mqtt_url=mqtt_url,
        password_file=password_file,
        ask_password=sys.stdin is not None and sys.stdin.isatty(),
    )
    return report(results, out)
