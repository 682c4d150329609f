"""docs/reset.md: every command, file, setting and state it shows is the real one."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from engine import proxyconfig, reset, settings
from engine import __main__ as entry
from infra import commands, config

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "reset.md").read_text()
WORKFLOW = (ROOT / ".github" / "workflows" / "reset.yml").read_text()


def shown_commands() -> list[str]:
    return [line.strip() for line in DOC.splitlines() if line.startswith("    ")]


def test_the_host_command_is_the_one_pulumi_runs():
    assert f"`{commands.shell(commands.sudo(commands.reset_argv()))}`" in DOC
    by_hand = [c for c in shown_commands() if c.startswith("sudo python3")]
    assert by_hand == [commands.shell(commands.sudo(commands.engine_argv("reset")))]


def test_the_flags_it_names_are_the_reset_commands_and_deploy_flags_are_not(tmp_path, capsys):
    flags = set(re.findall(r"`(--[a-z-]+)", DOC.split("## Running it by hand")[1]))
    assert flags == {"--health-timeout", "--no-demo-data", "--no-rollback"}
    argv = ["reset", "--state-dir", str(tmp_path), "--health-timeout", "60", "--no-demo-data", "--no-rollback"]
    assert entry.main(argv) == 2 and "deploy first" in capsys.readouterr().err  # parsed; no deploy yet


def test_the_settings_it_shows_are_valid_and_the_files_it_names_are_the_engines():
    for key, value in re.findall(r"pulumi config set --stack demo (\w+) (\S+)", DOC):
        assert key == "nightlyReset" and config.nightly_reset(value) == value
    for name in (settings.REMEMBERED, reset.REPORT_FILE, proxyconfig.VOLUME):
        assert f"`{name}`" in DOC or f"/{name}`" in DOC, name
    template = yaml.safe_load((ROOT / "Pulumi.branch.yaml").read_text())["config"]
    assert template["sirius-demo:nightlyReset"] == "off" and "Pulumi.branch.yaml" in DOC


def test_the_states_table_is_the_engines():
    rows = re.findall(r"^\| `([a-z-]+)` \| .* \| (\d) \|$", DOC, re.M)
    assert dict(rows) == {reset.FRESH: "0", reset.LAST_HEALTHY: "1", reset.UNCHANGED: "1", reset.DOWN: "1"}


def test_the_workflow_it_describes():
    assert "gh workflow run reset.yml" in DOC and "workflow_dispatch" in WORKFLOW
    assert "sirius-demo-stack-demo" in DOC and "group: sirius-demo-stack-demo" in WORKFLOW
    assert "`reset-failed`" in DOC and "MONITOR_LABEL: reset-failed" in WORKFLOW
    laptop = next(c for c in shown_commands() if c.startswith("pulumi up"))
    assert shlex.split(laptop)[:5] == ["pulumi", "up", "--stack", "demo", "--replace"]
    assert "pulumi stack output --stack demo resetUrn" in laptop


def test_the_bench_figure_it_names_is_measured_and_kept():
    import json

    from bench import run as bench

    assert "reset_vs_fresh" in bench.TARGETS and "--only reset_vs_fresh" in DOC
    assert "reset_vs_fresh" in json.loads((ROOT / "bench" / "results.json").read_text())
