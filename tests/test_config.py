"""Configuration: the annotated example is valid; every problem is reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main
from agent.config import build_config, load_config
from agent.errors import EXIT_CONFIG, ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_annotated_example_is_valid():
    cfg = load_config(REPO / "config" / "agent.toml")
    assert cfg.site.position == (-15.6, -56.1)
    assert cfg.filter.drop_categories == ["A3", "A4", "A5", "A6"]


def test_every_problem_is_listed_with_its_path():
    with pytest.raises(ConfigError) as err:
        build_config(
            {
                "site": {"name": "bad name", "lat": 95, "colour": "red"},
                "filter": {"max_height_ft": -1, "keep_categories": ["Z9"]},
                "mqtt": {"url": "http://x"},
                "sources": ["ftp://x"],
                "bogus": 1,
            }
        )
    paths = {p.split(":")[0] for p in err.value.problems}
    assert paths == {
        "site.name",
        "site.lat",
        "site.colour",
        "filter.max_height_ft",
        "filter.keep_categories.0",
        "mqtt.url",
        "sources.0",  # each URL is parsed into its kind's options: the bad one is named
        "bogus",
    }
    assert "site.colour: unknown key" in err.value.problems


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="set both lat and lon"):
        build_config({"site": {"lat": 1.0}})
    with pytest.raises(ConfigError, match="both kept and dropped"):
        build_config({"filter": {"keep_categories": ["A3"]}})


def test_run_refuses_to_start_with_exit_64(tmp_path, capsys):
    bad = tmp_path / "agent.toml"
    bad.write_text('[site]\nname = "x"\nlat = 100\n[filter]\nmax_height_ft = "high"\n')
    assert main(["run", "--config", str(bad)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "site.lat" in err and "filter.max_height_ft" in err


def test_unparseable_toml_and_missing_file_are_config_errors(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text("[site\nname=")
    assert main(["run", "--config", str(broken)]) == EXIT_CONFIG
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["run", "--config", str(tmp_path / "nope.toml")]) == EXIT_CONFIG
    assert "file not found" in capsys.readouterr().err


def test_command_line_overrides_are_validated_too(capsys):
    assert main(["run", "--source", "gopher://x", "--site", "ok"]) == EXIT_CONFIG
    assert "sources" in capsys.readouterr().err


def test_an_unknown_key_names_the_nearest_real_one_at_every_level():
    with pytest.raises(ConfigError) as err:
        build_config(
            {
                "sorces": [],
                "site": {"nmae": "x", "colour": "red"},
                "filter": {"max_hieght_ft": 3},
                "geofence": [{"name": "g", "center": [1, 2], "radius_km": 1, "kepp": True}],
            }
        )
    assert set(err.value.problems) == {
        "sorces: unknown key; did you mean 'sources'?",
        "site.nmae: unknown key; did you mean 'name'?",
        "site.colour: unknown key",
        "filter.max_hieght_ft: unknown key; did you mean 'max_height_ft'?",
        "geofence.0.kepp: unknown key; did you mean 'keep'?",
    }


def test_a_malformed_broker_url_is_refused_with_exit_64_not_a_traceback(capsys):
    for url in ("mqtt://u:p@[::1", "mqtts://[fe80::1"):
        assert main(["run", "--mqtt", url, "--site", "x", "--state-dir", "/nonexistent"]) == 64
        err = capsys.readouterr().err
        assert "mqtt.url:" in err and "IPv6: mqtt://[::1]:1883" in err and ":p@" not in err
