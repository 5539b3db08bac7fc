"""Per-site credentials, ACL, TLS and shared subscriptions against a real mosquitto."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agent.config import MqttConfig, SiteConfig
from agent.outbox import Outbox
from agent.outputs.mqtt import MqttPublisher
from agent.records import position_record
from tests.conftest import Broker
from tests.helpers import located_aircraft, wait_until
from tests.mqtt_helpers import Subscriber
from tests.pki import Pki, make_pki

ACL = """
pattern write adsb/v1/%u/#
pattern read adsb/v1/%u/#
user central
topic read adsb/#
"""


def _passwords(d: Path, users: dict[str, str]) -> Path:
    pw = d / "passwd"
    pw.touch()
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True)
    pw.chmod(0o600)
    return pw


def _auth_broker(d: Path) -> Broker:
    pw = _passwords(d, {"site-01": "s1", "site-02": "s2", "central": "c"})
    acl = d / "acl"
    acl.write_text(ACL)
    conf = f"allow_anonymous false\npassword_file {pw}\nacl_file {acl}\n"
    return Broker(d, conf).start()


def _record(site: str, i: int) -> dict:
    return position_record(located_aircraft(i), SiteConfig(name=site), ("low",))


def _agent(tmp: Path, name: str, cfg: MqttConfig, site: str) -> MqttPublisher:
    return MqttPublisher(cfg, site, Outbox(tmp / f"{name}.sqlite")).start()


def test_site_cannot_publish_outside_its_prefix_and_reports_it(tmp_path):
    b = _auth_broker(tmp_path)
    try:
        url = f"mqtt://site-01:s1@127.0.0.1:{b.port}"
        # This site's credentials, another site's topic level: the ACL refuses (0x87).
        pub = _agent(tmp_path, "a", MqttConfig(url=url), "site-02")
        assert pub.wait_connected(10)
        for i in range(30):
            pub.publish(_record("site-02", i))
        assert wait_until(lambda: pub.publish_refused is not None)
        assert "authori" in pub.publish_refused.lower()
        assert pub.link_health()["refused"] == pub.publish_refused
        state = pub.link_state()  # what the status file is coloured from
        assert state.connected and state.refused == pub.publish_refused
        time.sleep(0.5)
        # No retry storm: one window at most, and nothing acknowledged or deleted.
        assert pub.counts["sent"] <= pub.cfg.max_inflight
        assert pub.outbox.depth == 30
        pub.close(timeout=0.5)
    finally:
        b.stop()


def test_site_publishes_under_its_own_prefix(tmp_path):
    b = _auth_broker(tmp_path)
    try:
        central = Subscriber(b.port, "adsb/#", username="central", password="c")
        pub = _agent(
            tmp_path,
            "a",
            MqttConfig(
                url=f"mqtt://127.0.0.1:{b.port}",
                username="site-01",
                password_file=str(_secret(tmp_path, "s1")),
            ),
            "site-01",
        )
        for i in range(10):
            pub.publish(_record("site-01", i))
        assert pub.flush(10)
        assert central.wait_for(lambda s: len(s.records()) == 10)
        central.close()
        pub.close()
    finally:
        b.stop()


def _secret(d: Path, text: str) -> Path:
    p = d / "secret"
    p.write_text(text + "\n")
    p.chmod(0o600)
    return p


def test_password_comes_from_systemd_credentials(tmp_path, monkeypatch):
    b = _auth_broker(tmp_path)
    try:
        creds = tmp_path / "creds"
        creds.mkdir()
        (creds / "mqtt-password").write_text("s1")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
        cfg = MqttConfig(url=f"mqtt://127.0.0.1:{b.port}", username="site-01")
        pub = _agent(tmp_path, "a", cfg, "site-01")
        assert pub.wait_connected(10)
        pub.close()
    finally:
        b.stop()


def _tls_broker(d: Path, pki: Pki, require_cert: bool) -> Broker:
    conf = (
        f"cafile {pki.path('ca.crt')}\ncertfile {pki.path('server.crt')}\n"
        f"keyfile {pki.path('server.key')}\nallow_anonymous true\n"
    )
    if require_cert:
        conf += "require_certificate true\nuse_identity_as_username true\n"
    return Broker(d, conf).start()


@pytest.fixture
def pki(tmp_path) -> Pki:
    return make_pki(tmp_path / "pki")


def test_tls_with_the_wrong_ca_fails_clearly(tmp_path, pki, caplog):
    b = _tls_broker(tmp_path, pki, require_cert=False)
    try:
        cfg = MqttConfig(url=f"mqtts://127.0.0.1:{b.port}", ca_file=pki.path("stranger.crt"))
        pub = _agent(tmp_path, "a", cfg, "site-01")
        pub.publish(_record("site-01", 1))
        assert wait_until(lambda: pub.counts["connect_failed"] >= 1)
        assert not pub.connected.is_set()
        assert pub.outbox.depth == 1  # kept for when the CA is fixed
        assert "CERTIFICATE_VERIFY_FAILED" in pub.connect_error
        assert any("check mqtt.ca_file" in r.getMessage() for r in caplog.records)
        pub.close(timeout=0.2)
    finally:
        b.stop()


def test_tls_with_the_right_ca_and_mutual_tls_work(tmp_path, pki):
    b = _tls_broker(tmp_path, pki, require_cert=True)
    try:
        no_cert = _agent(
            tmp_path,
            "n",
            MqttConfig(url=f"mqtts://127.0.0.1:{b.port}", ca_file=pki.path("ca.crt")),
            "site-01",
        )
        assert not no_cert.wait_connected(2)  # the broker wants a client certificate
        no_cert.close(timeout=0.2)
        cfg = MqttConfig(
            url=f"mqtts://127.0.0.1:{b.port}",
            ca_file=pki.path("ca.crt"),
            cert_file=pki.path("site-01.crt"),
            key_file=pki.path("site-01.key"),
        )
        pub = _agent(tmp_path, "a", cfg, "site-01")
        assert pub.wait_connected(10)
        pub.publish(_record("site-01", 1))
        assert pub.flush(10)
        pub.close()
    finally:
        b.stop()


def test_two_agents_and_three_shared_subscription_consumers_get_every_record(broker, tmp_path):
    consumers = [Subscriber(broker.port, "$share/central/adsb/v1/+/position/#") for _ in range(3)]
    agents = [
        _agent(tmp_path, site, MqttConfig(url=broker.url), site) for site in ("site-01", "site-02")
    ]
    n = 200
    for i in range(n):
        for site, pub in zip(("site-01", "site-02"), agents, strict=True):
            pub.publish(_record(site, i))
    for pub in agents:
        assert pub.flush(20)
    assert wait_until(lambda: sum(len(c.records()) for c in consumers) >= 2 * n, 20)
    got = [(p["site"], p["seq"]) for c in consumers for _, p in c.records()]
    assert sorted(set(got)) == sorted(
        (s, q) for s in ("site-01", "site-02") for q in range(1, n + 1)
    )
    assert all(c.records() for c in consumers), "each consumer took a share"
    for x in consumers:
        x.close()
    for pub in agents:
        pub.close()
