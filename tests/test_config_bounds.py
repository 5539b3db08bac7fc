"""Every number is bounded and every name is safe where it ends up (topics, client ids).

Each case once passed validation and then broke the running agent: `max_age_h = inf`
killed the publisher thread, a site name with a trailing newline or a wildcard topic
prefix made the broker drop the connection with nothing logged.
"""

from __future__ import annotations

import pytest

from agent.cli import main
from agent.config import build_config
from agent.errors import EXIT_CONFIG, ConfigError


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"outbox": {"max_age_h": float("inf")}}, "outbox.max_age_h"),
        ({"outbox": {"max_age_h": 1e300}}, "outbox.max_age_h"),
        ({"outbox": {"max_mb": float("inf")}}, "outbox.max_mb"),
        ({"outbox": {"max_mb": float("nan")}}, "outbox.max_mb"),
        ({"limiter": {"low_steady_s": 1e300}}, "limiter.low_steady_s"),
        ({"filter": {"max_distance_km": float("inf")}}, "filter.max_distance_km"),
        ({"mqtt": {"drain_rate": float("inf")}}, "mqtt.drain_rate"),
        ({"site": {"lat": float("nan"), "lon": 0.0}}, "site.lat"),
    ],
)
def test_infinite_and_huge_numbers_are_refused(doc, path):
    with pytest.raises(ConfigError) as err:
        build_config(doc)
    assert any(p.startswith(path + ":") for p in err.value.problems), err.value.problems


@pytest.mark.parametrize("name", ["strip-01\n", "strip\x00", "strip/01", "a" * 65, ""])
def test_site_names_that_are_not_one_topic_level_are_refused(name):
    with pytest.raises(ConfigError, match=r"site\.name"):
        build_config({"site": {"name": name}})


@pytest.mark.parametrize("prefix", ["adsb/+/#", "adsb/#", "adsb//v1", "/adsb", "$SYS/x", "a b"])
def test_wildcard_or_empty_topic_prefixes_are_refused(prefix):
    with pytest.raises(ConfigError, match=r"mqtt\.topic_prefix"):
        build_config({"mqtt": {"topic_prefix": prefix}})


@pytest.mark.parametrize("client_id", ["agent\x00", "agent#1", "agent+", "a b", "é"])
def test_client_ids_the_broker_would_drop_are_refused(client_id):
    with pytest.raises(ConfigError, match=r"mqtt\.client_id"):
        build_config({"mqtt": {"client_id": client_id}})


def test_sane_values_still_pass():
    cfg = build_config(
        {
            "site": {"name": "strip_01-b"},
            "mqtt": {"topic_prefix": "customs/adsb.v1", "client_id": "strip-01.agent"},
            "outbox": {"max_mb": 500, "max_age_h": 720},
        }
    )
    assert cfg.mqtt.topic_prefix == "customs/adsb.v1"


def test_run_with_an_infinite_outbox_age_exits_64(tmp_path, capsys):
    conf = tmp_path / "agent.toml"
    conf.write_text('sources = ["beast://127.0.0.1:1"]\n[outbox]\nmax_age_h = inf\n')
    assert main(["run", "--config", str(conf)]) == EXIT_CONFIG
    assert "outbox.max_age_h" in capsys.readouterr().err


def test_site_geoid_option_reaches_the_validated_config(tmp_path, capsys):
    empty = tmp_path / "empty.avr"
    empty.write_text("")
    argv = ["replay", "--format", "avr", "--site-geoid-m", "500", str(empty)]
    assert main(argv) == EXIT_CONFIG  # 500 m is no geoid height: refused with the rest
    assert "site.geoid_m" in capsys.readouterr().err
