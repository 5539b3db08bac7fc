"""Configuration: one TOML file, validated once at start.

Every problem is collected and reported with its key path (`filter.max_height_ft: ...`)
so a technician fixes the file in one pass; the agent then exits with EXIT_CONFIG (64),
which the systemd unit lists in RestartPreventExitStatus. The models are Settings
(agent.settings): unknown keys are refused, and so are floats that are inf or nan
(`max_age_h = inf` once passed and killed the publisher).
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from agent.errors import ConfigError, SourceError
from agent.settings import Rule, Settings, SettingsError, load, setting
from agent.sources.kind import SourceSpec
from agent.sources.kinds import parse_source

# Where install.sh puts the configuration and the broker password (the unit hands the
# latter to the service with LoadCredential=); `check` and `tail` read them by hand.
DEFAULT_CONFIG = Path("/etc/adsb-agent/agent.toml")
DEFAULT_CREDENTIAL = Path("/etc/adsb-agent/mqtt-password")
SITE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # fullmatch: "$" lets a newline through
# Topic levels the agent publishes under: no wildcards, no empty level, no "$" system topic.
_TOPIC_PREFIX = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
# MQTT client identifiers: printable ASCII without wildcards (mosquitto drops others).
_CLIENT_ID = re.compile(r"[!-~]{1,128}")
Category = Annotated[str, Rule(pattern=r"[A-D][0-7]")]
Address = Annotated[str, Rule(pattern=r"[0-9A-Fa-f]{6}")]


def _source(value: Any) -> SourceSpec:
    """A source URL parsed into its kind's typed options (agent.sources.kinds)."""
    if isinstance(value, SourceSpec):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a source URL string")
    try:
        return parse_source(value)
    except SourceError as err:
        raise ValueError(str(err)) from None


# In the file a URL string; in AgentConfig its parsed form (written back as the URL).
SourceUrl = Annotated[SourceSpec, Rule(parse=_source, dump=lambda s: s.url)]


def _topic_safe(v: str) -> str:
    if not SITE_NAME.fullmatch(v):
        raise ValueError("use 1-64 letters, digits, '-' or '_' (it is an MQTT topic level)")
    return v


class SiteConfig(Settings):
    """Where the receiver is: the reference for local CPR decoding and the GA filter."""

    name: str = setting("site", check=_topic_safe)
    lat: float | None = setting(None, ge=-90, le=90)
    lon: float | None = setting(None, ge=-180, le=180)
    elevation_ft: float = setting(0.0, ge=-1500, le=20000)
    antenna_agl_m: float = setting(10.0, ge=0, le=500)
    # Sea-level pressure; unset = estimated from aircraft that send both altitudes.
    qnh_hpa: float | None = setting(None, ge=870, le=1085)
    # Geoid undulation at the site (EGM96 N, metres): GNSS height minus this is MSL.
    geoid_m: float = setting(0.0, ge=-110, le=90)
    # Directory of SRTM .hgt tiles for ground elevation under the aircraft.
    terrain_dir: str | None = None

    def check(self) -> None:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("set both lat and lon, or neither")

    @property
    def position(self) -> tuple[float, float] | None:
        return None if self.lat is None or self.lon is None else (self.lat, self.lon)


def _upper_case(v: list[str]) -> list[str]:
    # Compared with decoded addresses and callsigns, which are upper case: once here,
    # not for every position the filter judges.
    return [x.upper() for x in v]


class FilterConfig(Settings):
    """The low-flying GA filter; every limit is optional except the height ceiling."""

    enabled: bool = True
    max_height_ft: float = setting(3000.0, gt=0, le=60000)
    max_ground_speed_kt: float | None = setting(250.0, gt=0, le=2000)
    max_distance_km: float | None = setting(150.0, gt=0, le=1000)
    allow_addresses: list[Address] = setting(factory=list, check=_upper_case)
    deny_addresses: list[Address] = setting(factory=list, check=_upper_case)
    allow_callsigns: list[str] = setting(factory=list, check=_upper_case)
    deny_callsigns: list[str] = setting(factory=list, check=_upper_case)
    keep_categories: list[Category] = setting(factory=list)
    drop_categories: list[Category] = setting(factory=lambda: ["A3", "A4", "A5", "A6"])
    # A new track whose category is not yet known is held (no record, no event) until
    # its identification arrives (every ~5 s) or this much receive time has passed.
    hold_s: float = setting(10.0, ge=0, le=60)

    def check(self) -> None:
        both = set(self.keep_categories) & set(self.drop_categories)
        if both:
            raise ValueError(f"categories both kept and dropped: {sorted(both)}")


class GeofenceConfig(Settings):
    """A named circle (center + radius_km) or polygon ([[lat, lon], ...]).

    Aircraft inside carry the tag `in:<name>`; with `keep = true` they are kept even
    when the height, speed, distance or category limits would drop them.
    """

    name: str = setting(pattern=r"[A-Za-z0-9_.-]{1,64}")
    kind: Literal["strip", "border", "area"] = "area"
    center: tuple[float, float] | None = None
    radius_km: float | None = setting(None, gt=0, le=1000)
    polygon: list[tuple[float, float]] = setting(factory=list)
    keep: bool = False

    def check(self) -> None:
        circle = self.center is not None and self.radius_km is not None
        if circle == bool(self.polygon):
            raise ValueError("give either center + radius_km, or polygon (3 or more points)")
        if self.polygon and len(self.polygon) < 3:
            raise ValueError("a polygon needs 3 or more points")
        for lat, lon in [*self.polygon, *([self.center] if self.center else [])]:
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ValueError(f"point ({lat}, {lon}) is not a latitude, longitude")


class IntelConfig(Settings):
    """Events and classification (see agent/intel)."""

    events: bool = True
    # Tell "near a known aerodrome" from "away from any" (airportsdata, ~28k entries).
    aerodromes: bool = True


def _plain_topic(v: str) -> str:
    if not _TOPIC_PREFIX.fullmatch(v):
        raise ValueError(
            "use levels of letters, digits, '.', '-' or '_' separated by '/' "
            "(no '+', '#', '$', spaces or empty levels)"
        )
    return v


def _printable_id(v: str | None) -> str | None:
    if v is not None and (not _CLIENT_ID.fullmatch(v) or "+" in v or "#" in v):
        raise ValueError("use 1-128 printable ASCII characters without '+' or '#'")
    return v


def _scheme(v: str | None) -> str | None:
    if v is not None and not re.match(r"^mqtts?://", v):
        raise ValueError("must start with mqtt:// or mqtts://")
    return v


class MqttConfig(Settings):
    """Broker connection. Secrets never live here in clear when avoidable: use
    `password_file`, or systemd's LoadCredential (file `mqtt-password` in
    $CREDENTIALS_DIRECTORY), which is read when neither URL nor file nor the environment
    variable ADSB_AGENT_MQTT_PASSWORD gives one (agent.outputs.mqtt_link)."""

    url: str | None = setting(None, check=_scheme)
    topic_prefix: str = setting("adsb/v1", check=_plain_topic)
    client_id: str | None = setting(None, check=_printable_id)
    keepalive_s: int = setting(60, ge=5, le=3600)
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False
    max_inflight: int = setting(20, ge=1, le=1000)
    drain_rate: float = setting(50.0, gt=0, le=100000)
    health_interval_s: float = setting(60.0, ge=1, le=3600)
    # The broker publishes `offline` this long after the link dies (MQTT 5 will delay):
    # a cellular hiccup of a few seconds should not flap the site's status.
    will_delay_s: int = setting(30, ge=0, le=86400)
    batch_s: float = setting(0.0, ge=0, le=3600)

    def check(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS)")


class OutboxConfig(Settings):
    """The disk outbox under state_dir: bounds for a long outage."""

    max_mb: float = setting(100.0, gt=0, le=1_000_000)
    max_age_h: float = setting(168.0, gt=0, le=24 * 366)


class LimiterConfig(Settings):
    """Per-aircraft change-based position rate (FlightAware's policy by default)."""

    enabled: bool = True
    ground_interval_s: float = setting(1.0, ge=0, le=3600)
    low_ceiling_ft: float = setting(10_000.0, ge=0, le=60_000)
    low_changed_s: float = setting(5.0, ge=0, le=3600)
    low_steady_s: float = setting(10.0, ge=0, le=3600)
    high_changed_s: float = setting(10.0, ge=0, le=3600)
    high_steady_s: float = setting(30.0, ge=0, le=3600)
    altitude_ft: float = setting(50.0, gt=0, le=10_000)
    track_deg: float = setting(2.0, gt=0, le=180)
    speed_kt: float = setting(25.0, gt=0, le=1000)
    vrate_fpm: float = setting(500.0, gt=0, le=20_000)
    deviation_m: float = setting(100.0, gt=0, le=100_000)


class TrackConfig(Settings):
    expire_s: float = setting(60.0, gt=0, le=3600)
    # Bound on the track table (agent/track.py DEFAULT_MAX_AIRCRAFT: why).
    max_aircraft: int = setting(20_000, ge=100, le=1_000_000)


def _ip_address(v: str) -> str:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        raise ValueError("give an IP address (127.0.0.1, 0.0.0.0, 192.168.1.10)") from None
    return v


class HttpConfig(Settings):
    """The technician's page (agent/outputs/web): off unless a port is set.

    On an address other than loopback the page and its endpoints need the password in
    `password_file` (or systemd's LoadCredential=http-password): the aircraft watched
    are sensitive, and a LAN at a strip is not a trusted network.
    """

    port: int = setting(0, ge=0, le=65535)  # 0 = no web server
    bind: str = setting("127.0.0.1", check=_ip_address)
    password_file: str | None = None
    # Bounded history kept in memory: plots span history_h in buckets of history_step_s.
    history_h: float = setting(24.0, gt=0, le=72)
    history_step_s: int = setting(60, ge=1, le=3600)
    trail_points: int = setting(40, ge=0, le=1000)
    events: int = setting(100, ge=1, le=10000)


class NetConfig(Settings):
    """Raw feeds for the readsb ecosystem (agent/outputs/net.py): ports 0 are off.

    Option names follow readsb's (`--net-bo-port` is `bo_port`). They carry every frame
    the CRC gate accepts, all traffic, unless `selected_only`; the GA filter applies to
    MQTT and stdout only.
    """

    bind_address: str = setting("127.0.0.1", min_length=1, max_length=253)
    bo_port: int = setting(0, ge=0, le=65535)  # Beast binary out (readsb 30005)
    ro_port: int = setting(0, ge=0, le=65535)  # AVR *HEX; out (readsb 30002)
    ro_timestamps: bool = False  # AVR lines as @TICKS HEX; (dump1090 --mlat)
    sbs_port: int = setting(0, ge=0, le=65535)  # BaseStation MSG lines (30003)
    json_dir: str | None = None  # aircraft.json, receiver.json, stats.json (--write-json)
    json_interval_s: float = setting(1.0, ge=0.2, le=60)
    selected_only: bool = False  # only aircraft the GA filter selected
    # Bytes a client may fall behind before it is dropped (readsb drops them too).
    client_buffer_kb: int = setting(512, ge=16, le=65536)
    max_clients: int = setting(64, ge=1, le=1024)  # per port

    def check(self) -> None:
        ports = [p for p in (self.bo_port, self.ro_port, self.sbs_port) if p]
        if len(ports) != len(set(ports)):
            raise ValueError("bo_port, ro_port and sbs_port must differ")


class AgentConfig(Settings):
    site: SiteConfig = setting(factory=SiteConfig)
    sources: list[SourceUrl] = setting(factory=list)
    filter: FilterConfig = setting(factory=FilterConfig)
    mqtt: MqttConfig = setting(factory=MqttConfig)
    track: TrackConfig = setting(factory=TrackConfig)
    outbox: OutboxConfig = setting(factory=OutboxConfig)
    limiter: LimiterConfig = setting(factory=LimiterConfig)
    intel: IntelConfig = setting(factory=IntelConfig)
    geofence: list[GeofenceConfig] = setting(factory=list)
    http: HttpConfig = setting(factory=HttpConfig)
    net: NetConfig = setting(factory=NetConfig)
    state_dir: str = "/var/lib/adsb-agent"
    stdout: bool = False


def build_config(data: dict) -> AgentConfig:
    """Validate a parsed TOML document; raises ConfigError listing every problem."""
    try:
        return load(AgentConfig, data)
    except SettingsError as err:
        raise ConfigError([str(p) for p in err.problems]) from None


def read_toml(path: str | Path) -> dict:
    """Parse a TOML file; unreadable or malformed files become a ConfigError."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{p}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([f"{p}: cannot read: {err}"]) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([f"{p}: not valid TOML: {err}"]) from None


def load_config(path: str | Path | None) -> AgentConfig:
    """Read and validate the TOML file at `path` (defaults only when None)."""
    return build_config({} if path is None else read_toml(path))
