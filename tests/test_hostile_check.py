"""`check --config` tries every configured source, as `check --source` does (issue 14)."""

from __future__ import annotations

from agent import check
from agent.check import FAIL, PASS
from agent.cli import main
from tests.conftest import free_port, shared_data


def test_check_config_tries_each_configured_source(tmp_path) -> None:
    gone = f"avr://127.0.0.1:{free_port()}"
    recording = f"file://{shared_data('beast/traffic_sample_dump1090.bin')}?format=beast"
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'state_dir = "{tmp_path / "state"}"\nsources = ["{gone}", "{recording}"]\n'
        '[site]\nname = "strip-01"\n'
    )
    results = check.run_checks(cfg, listen_s=1.0)
    samples = [r for r in results if r.name == "samples"]
    assert [r.state for r in samples] == [FAIL, PASS]
    assert samples[0].detail.startswith(f"{gone}: could not open or connect")
    # The source's own words for why, not only a count of attempts.
    assert "the source said:" in samples[0].detail and "refused" in samples[0].detail.lower()
    assert "frames" in samples[1].detail


def test_check_command_with_a_config_fails_on_a_dead_source(tmp_path, capsys) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'state_dir = "{tmp_path / "state"}"\nsources = ["beast://127.0.0.1:{free_port()}"]\n'
        '[site]\nname = "strip-01"\n'
    )
    assert main(["check", "--config", str(cfg)]) != 0
    out = capsys.readouterr().out
    assert "FAIL  samples" in out and "could not open or connect" in out
