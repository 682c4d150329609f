"""ci.reset: when the hourly reset workflow is due, and what its summary says."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ci import reset
from engine import report as engine_report

UTC = timezone.utc


@pytest.mark.parametrize(("started", "slot"), [
    ("2026-12-03T23:59:00", "2026-12-03T23:59"),
    ("2026-12-04T00:20:31", "2026-12-03T23:59"),  # GitHub started the 23:59 run 21 minutes late
    ("2026-12-04T00:58:59", "2026-12-03T23:59"),
    ("2026-12-04T00:59:00", "2026-12-04T00:59"),
])
def test_a_late_run_belongs_to_the_last_hh59(started, slot):
    assert reset.slot(datetime.fromisoformat(started).replace(tzinfo=UTC)).strftime("%Y-%m-%dT%H:%M") == slot


@pytest.mark.parametrize(("setting", "event", "now", "expected"), [
    ("23:59", "schedule", "2026-12-03T23:59:05", True),
    ("23:59", "schedule", "2026-12-04T00:15:00", True),  # late, still that night's run
    ("23:59", "schedule", "2026-12-03T22:59:00", False),
    ("04:59", "schedule", "2026-12-03T04:59:00", True),
    ("04:59", "schedule", "2026-12-03T23:59:00", False),
    ("off", "schedule", "2026-12-03T23:59:00", False),
    ("23:59", "workflow_dispatch", "2026-12-03T10:00:00", True),
])
def test_due_at_the_stacks_hour_or_by_hand(setting, event, now, expected):
    due, reason = reset.due(setting, event, datetime.fromisoformat(now).replace(tzinfo=UTC))
    assert due is expected and reason


def test_by_hand_with_the_reset_off_says_how_to_turn_it_on():
    with pytest.raises(reset.ResetError, match="nightlyReset is off.*pulumi config set nightlyReset 23:59"):
        reset.due("off", "workflow_dispatch", datetime.now(UTC))


def test_the_setting_comes_from_the_committed_stack_config_or_the_default(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text((reset.ROOT / "Pulumi.yaml").read_text())
    assert reset.stack_setting("demo", tmp_path) == "23:59"  # no stack file: Pulumi.yaml's default
    (tmp_path / "Pulumi.demo.yaml").write_text("config:\n  aws:region: us-west-2\n  sirius-demo:nightlyReset: '03:59'\n")
    assert reset.stack_setting("demo", tmp_path) == "03:59"
    (tmp_path / "Pulumi.demo.yaml").write_text("config:\n  sirius-demo:nightlyReset: '03:00'\n")
    with pytest.raises(reset.ResetError, match="Pulumi.demo.yaml: sirius-demo:nightlyReset .*HH:59"):
        reset.stack_setting("demo", tmp_path)
    assert reset.stack_setting("demo") == "23:59"  # the shared demo, as committed
    assert reset.stack_setting("branch") == "off"  # the branch stacks' template


def test_due_cli_prints_github_outputs(capsys):
    assert reset.main(["due", "--stack=demo", "--event=schedule", "--now=2026-12-03T23:59:30Z"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "due=true"
    assert reset.main(["due", "--stack=demo", "--event=schedule", "--now=2026-12-03T12:59:30Z"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "due=false"
    assert reset.main(["due", "--stack=branch", "--event=workflow_dispatch"]) == 2
    assert "nightlyReset is off" in capsys.readouterr().err


def test_the_report_is_found_in_pulumis_log_however_it_is_prefixed():
    log = ("Updating (demo)\n     +-  command:remote:Command sirius-reset replacing (2s) "
           '{"schema":2,"kind":"deploy","status":"healthy"}\n'
           '    {"schema":2,"kind":"reset","status":"reset","reset":{"demo":"fresh"}}\n'
           '    {"schema": broken\n')
    assert reset.reset_report(log)["status"] == "reset"
    assert reset.reset_report("error: update failed\n") is None


def test_the_summary_says_what_serves_what_was_removed_and_the_demo_data():
    """From the report as the engine writes it (engine/report.py)."""
    fell_back = engine_report.to_json(engine_report.ResetReport(
        status="rolled-back", error="not healthy within 600s: sirius-ui", total_seconds=81.2,
        serving=engine_report.Served("main", "v1.1.0", "c" * 40),
        reset=engine_report.ResetEntry(demo="last-healthy", removed_services=["sirius-api", "sirius-ui"],
                                       removed_volumes=["sirius_postgres_data"]),
        demo_data={"loaded": 22, "skipped": 0, "reason": None}))
    text, ok = reset.render_summary(fell_back, stack="demo", outcome="success")
    assert not ok and text.splitlines()[2:] == [
        f"- **The demo now serves:** last-healthy: {reset.DEMO_STATES['last-healthy']}",
        f"- Version: ref `main`, tag `v1.1.0`, commit `{'c' * 12}`",
        "- Error: not healthy within 600s: sirius-ui",
        "- Removed: the containers of sirius-api, sirius-ui; volumes sirius_postgres_data",
        "- Demo data: 22 hosts loaded",
        "- Took 81.2 s (status `rolled-back`)",
        "- The `pulumi up` step succeeded, but the report does not say `reset`: treated as failed."]
    fresh = {**fell_back, "status": "reset", "error": None}
    assert reset.render_summary(fresh, stack="demo", outcome="success")[1]
    assert not reset.render_summary(fresh, stack="demo", outcome="failure")[1]
    deploy = {**fresh, "kind": "deploy"}  # not a reset's report: never a done reset
    assert not reset.render_summary(deploy, stack="demo", outcome="success")[1]


def test_the_due_job_needs_nothing_but_the_pyyaml_it_installs():
    """reset.yml's due job installs only PyYAML (the line of requirements.txt it greps)."""
    import re
    import subprocess
    import sys

    lines = (reset.ROOT / "requirements.txt").read_text().splitlines()
    assert len([line for line in lines if re.match(r"(?i)^pyyaml", line)]) == 1
    blocked = "pulumi pulumi_aws pulumi_command pulumi_tls requests".split()
    code = (f"import sys; sys.modules.update(dict.fromkeys({blocked!r}))\n"
            "from ci import reset; sys.exit(reset.main(['due', '--stack=demo', '--event=workflow_dispatch']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=reset.ROOT, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("due=true"), result.stderr
