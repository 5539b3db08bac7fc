"""The technician's page (agent/outputs/web) in a real browser, and who may see it.

The agent here is the real one, `run`'s App, in-process so its monitor can be given a
short `link_red_s` (HealthJudge's) and a half-second round: the broker badge turns red
after the link has been down that long, rather than after the five minutes a field
site gets. Its feed is the demo scenario
played over a real Beast TCP socket at the pace of the air; its broker a real
mosquitto, which the test stops. The browser is Debian's Chromium driven by selenium
through Debian's chromedriver; screenshots at phone and desktop sizes go to
$ADSB_AGENT_ARTIFACTS or tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import shutil
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import cli
from agent.app import App
from agent.config import AgentConfig, build_config
from agent.errors import EXIT_CONFIG, ConfigError
from agent.outputs.web import auth, build_outputs
from agent.pipeline import Pipeline
from agent.sim import scenario
from tests.beast_feed import DemoBeastFeed
from tests.conftest import REPO, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PASSWORD = "correct horse battery staple"
PHONE = (412, 915)
DESKTOP = (1280, 800)
# The monitor's round and the broker link's red delay for this test (the agent's
# defaults are 5 s and 300 s).
MONITOR_INTERVAL_S = 0.5
LINK_RED_S = 3.0


def artifacts_dir() -> Path:
    path = Path(os.environ.get("ADSB_AGENT_ARTIFACTS", REPO / "tests" / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def site_config(tmp_path: Path, **http: Any) -> dict[str, Any]:
    lat, lon = scenario.SITE_LAT, scenario.SITE_LON
    return {
        "site": {
            "name": "strip-demo",
            "lat": lat,
            "lon": lon,
            "elevation_ft": scenario.SITE_ELEVATION_FT,
        },
        "state_dir": str(tmp_path / "state"),
        "geofence": [
            {"name": "strip-demo", "kind": "strip", "center": [lat, lon], "radius_km": 1.5},
            {
                "name": "border-east",
                "kind": "border",
                "polygon": [
                    [lat + 0.05, lon + 0.06],
                    [lat + 0.05, lon + 0.08],
                    [lat - 0.06, lon + 0.08],
                ],
            },
        ],
        "http": {"port": free_port(), "history_step_s": 5, **http},
    }


def start_agent(cfg: AgentConfig) -> tuple[App, threading.Thread]:
    """`adsb-agent run` in this process: the App, its monitor quicker to judge (see the
    module docstring), its sources read in a thread."""
    app = App(cfg)
    app.start()
    assert app.monitor is not None
    app.monitor.interval = MONITOR_INTERVAL_S  # from the round after the first
    app.monitor.judge.link_red_s = LINK_RED_S
    thread = threading.Thread(target=app.run, name="agent", daemon=True)
    thread.start()
    return app, thread


def chrome(user_data: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("apt-get install chromium chromium-driver (the browser tests need them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        f"--user-data-dir={user_data}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        opts.add_argument(arg)
    return webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))


def viewport(driver: Any, size: tuple[int, int], *, mobile: bool) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": mobile},
    )


def screenshot(driver: Any, path: Path, *, full_page: bool) -> Path:
    """The viewport, or the whole page as tall as it is (Chrome's own capture)."""
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": full_page}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    return path


def wait(driver: Any, what: str, script: str, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    logs = driver.get_log("browser") if hasattr(driver, "get_log") else []
    raise AssertionError(f"timed out waiting for {what}; browser log: {logs}")


BROKER_STATE = (
    "const b = document.querySelector('#health li[data-name=\"broker link\"]');"
    "return b ? b.dataset.state : null;"
)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    d = chrome(tmp_path / "chromium")
    yield d
    d.quit()


def test_page_shows_aircraft_and_the_broker_badge_turns_red(broker, tmp_path, driver):
    frames, _truth = scenario.demo_frames(duration_s=300.0)
    feed = DemoBeastFeed(frames).start()
    data = site_config(tmp_path)
    data["sources"] = [f"beast://127.0.0.1:{feed.port}"]
    data["mqtt"] = {"url": broker.url}
    app, runner = start_agent(build_config(data))
    out = artifacts_dir()
    try:
        url = f"http://127.0.0.1:{data['http']['port']}/"
        viewport(driver, PHONE, mobile=True)
        driver.get(url)
        # The light aircraft on the strip and the helicopter are selected; both rows
        # come, highlighted, with a position on the map.
        wait(
            driver,
            "two selected aircraft in the table",
            "return document.querySelectorAll('#aircraft tbody tr.selected').length >= 2",
        )
        wait(
            driver,
            "aircraft on the map",
            "return document.querySelectorAll('g.plane.selected').length >= 2",
        )
        rows = driver.execute_script(
            "return [...document.querySelectorAll('#aircraft tbody tr')].map(r => r.dataset.icao)"
        )
        assert "E48C01" in rows, rows  # the light aircraft taking off from the strip
        assert wait(driver, "broker link green", BROKER_STATE) == "green"
        # The fixed layers: site, strip, border, aerodromes from airportsdata.
        fences = "return document.querySelectorAll('#layer-fences .fence').length"
        assert driver.execute_script(fences) == 2
        assert driver.execute_script("return document.querySelectorAll('.aerodrome').length") >= 1
        wait(driver, "events listed", "return document.querySelectorAll('#events li').length > 0")
        # Let the trails, the coverage outline and a few history steps build up.
        wait(
            driver,
            "trails",
            "return [...document.querySelectorAll('#layer-trails polyline')].length >= 2",
        )
        driver.execute_script("refreshCoverage(); refreshHistory();")
        wait(driver, "coverage outline", "return !!document.getElementById('coverage-outline')")
        screenshot(driver, out / "page-phone.png", full_page=False)
        screenshot(driver, out / "page-phone-full.png", full_page=True)
        viewport(driver, DESKTOP, mobile=False)
        driver.execute_script("refreshHistory();")
        wait(driver, "plots drawn", "return document.getElementById('plot-messages').width > 300")
        screenshot(driver, out / "page-desktop.png", full_page=True)

        # The broker goes away: the page says so, amber at once, red after LINK_RED_S.
        broker.stop()
        t_stop = time.monotonic()
        wait(
            driver,
            "broker link amber",
            "const b = document.querySelector('#health li[data-name=\"broker link\"]');"
            "return b && b.dataset.state === 'amber';",
            timeout=10,
        )
        wait(
            driver,
            "broker link red",
            "const b = document.querySelector('#health li[data-name=\"broker link\"]');"
            "return b && b.dataset.state === 'red';",
            timeout=LINK_RED_S + 30,
        )
        assert time.monotonic() - t_stop >= LINK_RED_S
        text, fix = driver.execute_script(
            "const b = document.querySelector('#health li[data-name=\"broker link\"]');"
            "return [b.querySelector('.text').textContent, b.querySelector('.fix').textContent];"
        )
        assert "not connected" in text and "Connection refused" in text, text
        assert "adsb-agent check" in fix, fix
        viewport(driver, PHONE, mobile=True)
        screenshot(driver, out / "page-phone-broker-red.png", full_page=False)
        # Still live: aircraft keep coming while the outbox holds the records.
        assert driver.execute_script("return document.getElementById('live').textContent") == "live"
    finally:
        app.stop()
        runner.join(10)
        feed.close()


# -- who may see it ----------------------------------------------------------------------


def lan_address() -> str:
    """An address of this machine that is not loopback, else the wildcard (0.0.0.0),
    which is reachable from the network just the same."""
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            addr = str(info[4][0])
            if not auth.is_loopback(addr):
                with socket.socket() as s:
                    s.bind((addr, 0))  # really ours
                return addr
    return "0.0.0.0"


def request(
    host: str, port: int, path: str, authorization: str | None = None
) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(host if host != "0.0.0.0" else "127.0.0.1", port, timeout=5)
    headers = {"Authorization": authorization} if authorization else {}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read() if path != "/api/stream" else resp.read1(4096)
    out = resp.status, dict(resp.getheaders()), body
    conn.close()
    return out


def basic(password: str, user: str = "tech") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


PATHS = (
    "/",
    "/index.html",
    "/app.js",
    "/style.css",
    "/api/status",
    "/api/aircraft",
    "/api/events",
    "/api/coverage",
    "/api/history",
    "/api/map",
    "/api/stream",
    "/nothing-here",
)


@pytest.fixture
def lan_page(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[tuple[str, int]]:
    secret = tmp_path / "http-password"
    secret.write_text(PASSWORD + "\n")
    bind = lan_address()
    data = site_config(tmp_path, bind=bind, password_file=str(secret))
    cfg = build_config(data)
    caplog.set_level(logging.DEBUG, logger="agent")
    pipeline = Pipeline(cfg, [])
    outputs = [o.start() for o in build_outputs(cfg, pipeline)]
    assert len(outputs) == 1
    try:
        yield bind, cfg.http.port
    finally:
        for o in outputs:
            o.close()


def test_a_lan_address_answers_401_without_the_password(lan_page, caplog):
    host, port = lan_page
    for path in PATHS:
        for header in (
            None,
            basic("wrong password here"),
            basic(PASSWORD[:-1]),
            basic(PASSWORD + "x"),
            "Bearer " + PASSWORD.upper(),
            "Digest " + PASSWORD,
        ):
            status, headers, body = request(host, port, path, header)
            assert status == 401, (path, header, status)
            assert headers["WWW-Authenticate"].startswith("Basic realm=")
            assert PASSWORD.encode() not in body
    # Never in a URL: a password in the query string is no password.
    quoted = urllib.parse.quote(PASSWORD)
    assert request(host, port, f"/api/status?password={quoted}")[0] == 401
    assert request(host, port, f"/api/status?token={quoted}")[0] == 401


def test_the_password_opens_every_endpoint_and_shows_up_nowhere(lan_page, caplog):
    host, port = lan_page
    for header in (basic(PASSWORD), basic(PASSWORD, user=""), "Bearer " + PASSWORD):
        for path in PATHS:
            status, headers, body = request(host, port, path, header)
            assert status == (404 if path == "/nothing-here" else 200), (path, status)
            assert PASSWORD.encode() not in body
            assert all(PASSWORD not in v for v in headers.values())
            assert headers["Cache-Control"] == "no-store"
            assert "default-src 'self'" in headers["Content-Security-Policy"]
        status, _, body = request(host, port, "/api/status", header)
        assert json.loads(body)["site"] == "strip-demo"
    started = "\n".join(r.getMessage() for r in caplog.get_records("setup"))
    assert "password required" in started  # the start line says the page is locked
    assert PASSWORD not in caplog.text + started


def test_the_comparison_is_constant_time_over_fixed_length_digests(monkeypatch):
    """Every check, right or wrong, short or long or missing, compares two 32-byte
    SHA-256 digests with hmac.compare_digest (the timings are in bench/webpage.py)."""
    seen: list[tuple[int, int]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    gate = auth.Gate(PASSWORD.encode())
    offers = [
        None,
        "",
        basic(PASSWORD),
        "Bearer " + PASSWORD,
        basic("x"),
        basic(PASSWORD * 50),
        basic(PASSWORD[:-1]),
        "Basic !!!not base64",
        "Bearer ",
    ]
    verdicts = [gate.allows(o) for o in offers]
    assert verdicts == [False, False, True, True, False, False, False, False, False]
    assert seen == [(32, 32)] * len(offers)


def test_a_lan_bind_without_a_password_refuses_to_start(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    code = cli.main(
        [
            "run",
            "--source",
            "beast://127.0.0.1:9",
            "--state-dir",
            str(tmp_path / "state"),
            "--http-port",
            str(free_port()),
            "--http-bind",
            "0.0.0.0",
        ]
    )
    assert code == EXIT_CONFIG
    assert "http.bind: 0.0.0.0 is reachable from the network" in capsys.readouterr().err


def test_the_password_comes_from_the_systemd_credential(tmp_path, monkeypatch):
    (tmp_path / auth.CREDENTIAL_NAME).write_text(PASSWORD + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    path = auth.password_path(None)
    assert path == tmp_path / auth.CREDENTIAL_NAME
    assert auth.read_password(path) == PASSWORD.encode()
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(ConfigError, match="fewer than 8"):
        auth.read_password(tmp_path / "short")


def test_http_config_is_checked_at_load():
    with pytest.raises(ConfigError) as err:
        build_config({"http": {"port": 70000, "bind": "localhost", "history_h": 0, "extra": 1}})
    problems = "\n".join(err.value.problems)
    assert "http.port" in problems and "http.bind: give an IP address" in problems
    assert "http.history_h" in problems and "http.extra: unknown key" in problems
    assert build_config({}).http.port == 0  # off unless configured
    assert build_config({}).http.bind == "127.0.0.1"


def test_the_open_loopback_page_answers_only_to_local_host_names(tmp_path):
    """Without a password, a request naming another host (DNS rebinding) is refused."""
    cfg = build_config(site_config(tmp_path))
    outputs = [o.start() for o in build_outputs(cfg, Pipeline(cfg, []))]
    try:
        port = cfg.http.port
        for host, code in (
            (f"127.0.0.1:{port}", 200),
            (f"localhost:{port}", 200),
            (f"[::1]:{port}", 200),
            (f"evil.example.com:{port}", 403),
            ("", 403),
        ):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.putrequest("GET", "/api/status", skip_host=True)
            if host:
                conn.putheader("Host", host)
            conn.endheaders()
            assert conn.getresponse().status == code, host
            conn.close()
    finally:
        for o in outputs:
            o.close()


def test_the_page_is_off_by_default(tmp_path):
    cfg = build_config({"state_dir": str(tmp_path)})
    assert build_outputs(cfg, Pipeline(cfg, [])) == []
