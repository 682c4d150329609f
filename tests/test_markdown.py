"""Markdown for GitHub (ci/markdown.py): the deploy's job summary and PR comment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci.markdown import COMMENT_MARKER, render_summary
from engine import report as engine_report

ROOT = Path(__file__).resolve().parent.parent

OUTPUTS = {
    "uiUrl": "http://52.10.20.30:3000",
    "apiUrl": "http://52.10.20.30:9001",
    "imageTag": "pr-42-amd64",
    "ref": "pr-42",
    "instanceId": "i-0123456789abcdef0",
    "adminPassword": "[secret]",
    "sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----",
    "health": {
        "status": "healthy",
        "checkedAt": "2026-12-01T02:00:00Z",
        "services": {"sirius-ui": {"ok": True}, "sirius-api": {"ok": False}},
    },
}


def test_health_is_labelled_as_the_health_at_the_last_deploy():
    """The `health` output is taken right after a deploy; the summary and the docs must
    not pass it off as the state now."""
    text = render_summary(OUTPUTS, stack="pr-42")
    assert "| health at the last deploy | **healthy**" in text and "| health |" not in text
    assert "<summary>health at the last deploy</summary>" in text
    outputs_row = next(line for line in (ROOT / "docs" / "operations.md").read_text().splitlines()
                       if line.startswith("| `health` |"))
    assert "not a live reading" in outputs_row


def test_summary_shows_url_and_health_and_never_secrets():
    text = render_summary(OUTPUTS, stack="pr-42", expires_at="2026-12-04T02:00:00Z", marker=True)
    assert text.startswith(COMMENT_MARKER + "\n")
    assert "| UI | http://52.10.20.30:3000 |" in text
    assert "**healthy** (checked 2026-12-01T02:00:00Z); not ok: sirius-api" in text
    assert "Expires at 2026-12-04T02:00:00Z" in text
    assert '"sirius-ui"' in text  # the report, folded
    assert "PRIVATE KEY" not in text and "[secret]" not in text and "adminPassword" not in text


@pytest.mark.parametrize(
    ("health", "says"),
    [
        (None, "not reported"),
        (json.dumps({"status": "unhealthy"}), "**unhealthy**"),
        ("not json", "not json"),
        ({"services": "odd"}, "**unknown**"),
    ],
)
def test_summary_health_variants(health, says):
    outputs = {"uiUrl": "http://1.2.3.4:3000"} | ({} if health is None else {"health": health})
    assert says in render_summary(outputs, stack="demo")


def test_summary_without_outputs_and_escaping():
    assert "No stack outputs" in render_summary({}, stack="demo")
    assert "No stack outputs" not in render_summary({}, stack="pr-1", note="Destroyed.")
    text = render_summary({"uiUrl": "x|<b>`y`\nz", "health": {"status": "a```b"}}, stack="demo")
    assert "x\\|&lt;b&gt;'y' z" in text
    assert text.count("```") == 2  # only the fence of the report


def test_summary_carries_the_last_deploys_measured_timeline():
    """The report as the engine writes it (engine/report.py), every key there."""
    report = engine_report.to_json(engine_report.DeployReport(
        status="healthy", total_seconds=71.5,
        phases=engine_report.Phases(install=60.0, fetch=1.2, check=0.3, pull=20.0, build=0.0, up=3.0, healthy=9.4),
        services={"sirius-ui": engine_report.ServiceEntry(created_seconds=24.0, started_seconds=25.1,
                                                          healthy_seconds=33.9, recreated=True),
                  "sirius-api": engine_report.ServiceEntry(recreated=False)},
        critical_path=["sirius-postgres", "sirius-api", "sirius-ui"]))
    text = render_summary({"health": {"status": "healthy", "lastDeploy": report}}, stack="demo")
    assert "Last deploy: 71.5 s" in text
    assert "| install | fetch | check | pull | build | up | healthy |" in text
    assert "| 60.0 | 1.2 | 0.3 | 20.0 | 0.0 | 3.0 | 9.4 |" in text
    assert "| sirius-ui | 24.0 | 25.1 | 33.9 | yes |" in text and "| sirius-api | - | - | - | no |" in text
    assert "Critical path: sirius-postgres → sirius-api → sirius-ui" in text
    assert "Last deploy" not in render_summary({"health": {"status": "healthy"}}, stack="demo")
    older = render_summary({"health": {"status": "healthy", "lastDeploy": {"phases": {"pull": 20.0, "up": 3.0}}}},
                           stack="demo")  # an older engine's report: no install, check, build, healthy
    assert "| install | fetch | check | pull | build | up | healthy |" in older and "| - | - | - | 20.0 | - | 3.0 | - |" in older


def test_summary_says_what_the_canary_deploy_moved():
    """The engine's `moved` (image -> old and new digest, None for a local build) and
    `commitRange`, as the engine writes them; an entry of another shape is left out."""
    report = engine_report.to_json(engine_report.DeployReport(
        status="healthy", total_seconds=12.0,
        moved={"sirius-ui": {"from": "sha256:" + "a" * 64, "to": None}, "sirius-api": "garbled"},
        commit_range={"from": "1" * 40, "to": "2" * 40}))
    text = render_summary({"health": {"status": "healthy", "lastDeploy": report}}, stack="demo")
    assert f"Moved: sirius-ui sha256:{'a' * 64} → a local build\n" in text
    assert f"Commits: {'1' * 12}..{'2' * 12}" in text
    quiet = render_summary({"health": {"status": "healthy", "lastDeploy": engine_report.to_json(
        engine_report.DeployReport(status="healthy"))}}, stack="demo")
    assert "Moved:" not in quiet and "Commits:" not in quiet
