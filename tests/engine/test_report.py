"""The deploy report as typed data (engine/report.py): written and read by the same code,
its JSON keys the ones stack outputs, CI and the rehearsal read, and a report written by
the previous engine on a host still readable (what it lacks takes the defaults)."""

from __future__ import annotations

import json

import pytest

from engine import deploy, health, report, reset
from tests.engine.fakedocker import FakeDocker

# The keys the engine wrote before the report was typed (its dict literal, plus `demoData`
# after a healthy deploy): stack outputs, ci/markdown.py, tools/rehearse.py and the README read them.
DEPLOY_KEYS = {
    "schema", "status", "error", "ref", "gitRef", "commit", "refFellBack", "project", "imageTag", "registry",
    "startedAt", "finishedAt", "totalSeconds", "pullRounds", "phases", "startInterval", "startIntervalNote",
    "imageFallbacks", "builtLocally", "buildSeconds", "unhealthy", "problems", "criticalPath", "services",
    "rollback", "serving", "disk", "moved", "commitRange", "firewall", "proxy", "demoData"}
SERVICE_KEYS = {"image", "digest", "builtLocally", "recreated", "health", "createdSeconds", "startedSeconds",
                "healthySeconds"}

# deploy.json as the previous engine version wrote it after a rollback: no demoData (it
# wrote that key only when healthy), a service without its timings (not recreated), and a
# key this engine does not know.
OLD_REPORT = {
    "schema": 2, "status": "rolled-back", "error": "not healthy within 600s: sirius-ui", "ref": "main",
    "gitRef": "main", "commit": "c" * 40, "refFellBack": False, "project": "sirius", "imageTag": "latest",
    "registry": "ghcr.io/siriusscan", "startedAt": "2026-11-28T16:00:00Z", "finishedAt": "2026-11-28T16:11:10Z",
    "totalSeconds": 670.2, "pullRounds": 1,
    "phases": {"install": 0, "fetch": 1.1, "check": 0.4, "pull": 21.3, "build": 0, "up": 3.2, "healthy": 600.0},
    "startInterval": True, "startIntervalNote": None, "imageFallbacks": {}, "builtLocally": [], "buildSeconds": {},
    "unhealthy": ["sirius-ui"], "problems": [], "criticalPath": [],
    "services": {"sirius-ui": {"image": "ghcr.io/siriusscan/sirius-ui:latest", "digest": "sha256:" + "1" * 64,
                               "builtLocally": False, "recreated": True, "health": "starting"},
                 "sirius-api": {"image": "ghcr.io/siriusscan/sirius-api:latest", "digest": None}},
    "rollback": {"status": "healthy", "reason": None, "to": {"ref": "v1.1.0", "imageTag": "v1.1.0", "commit": "d" * 40},
                 "seconds": 9.1, "unhealthy": []},
    "serving": {"ref": "v1.1.0", "imageTag": "v1.1.0", "commit": "d" * 40},
    "disk": {"freeGbBefore": 18.2, "freeGbAfter": 21.9, "removedImages": 3, "notRemoved": 0},
    "fromAnOlderEngine": 1,
}


def test_every_key_is_written_always_and_under_its_old_name(tmp_path):
    written = json.loads(report.write(str(tmp_path / "deploy.json"), report.DeployReport()))
    assert set(written) == DEPLOY_KEYS
    assert list(written["phases"]) == ["install", "fetch", "check", "pull", "build", "up", "healthy"]
    entry = report.to_json(report.ServiceEntry())
    assert set(entry) == SERVICE_KEYS
    assert set(report.to_json(report.RollbackEntry())) == {"status", "reason", "to", "seconds", "unhealthy"}
    assert set(report.to_json(report.Disk())) == {"freeGbBefore", "freeGbAfter", "removedImages", "notRemoved"}
    reset_keys = set(report.to_json(report.ResetReport()))
    assert reset_keys == DEPLOY_KEYS | {"kind", "reset"}
    assert set(report.to_json(report.ResetEntry())) == {"demo", "removedServices", "removedVolumes", "wipeSeconds"}


def test_a_report_reads_back_as_it_was_written(tmp_path):
    written = report.DeployReport(status="rolled-back", ref="main", commit="a" * 40, pull_rounds=2,
                                  services={"sirius-ui": report.ServiceEntry(image="r/sirius-ui:v1", recreated=True,
                                                                             healthy_seconds=7.5)},
                                  rollback=report.RollbackEntry(status="healthy", to=report.Served("v0", "v0", "b" * 40)),
                                  serving=report.Served("v0", "v0", "b" * 40), disk=report.Disk(1.0, 2.0, 3, 0),
                                  moved={"sirius-ui": {"from": "sha256:1", "to": None}}, proxy={"error": None})
    written.phases.pull = 12.5
    path = str(tmp_path / "deploy.json")
    line = report.write(path, written)
    assert report.read(path) == written and json.loads(line) == report.to_json(written)
    assert open(path).read() == line + "\n"
    again = report.ResetReport(status=reset.RESET_OK, reset=report.ResetEntry(demo=reset.FRESH, removed_volumes=["v"]))
    report.write(path, again)
    assert report.read(path) == again and isinstance(report.read(path), report.ResetReport)


def test_a_report_of_the_previous_engine_reads_with_defaults(tmp_path):
    (tmp_path / deploy.REPORT_FILE).write_text(json.dumps(OLD_REPORT))
    old = report.read(str(tmp_path / deploy.REPORT_FILE))
    assert old.status == "rolled-back" and old.phases.healthy == 600.0 and old.phases.install == 0
    assert old.demo_data is None and old.firewall is None and old.proxy is None and old.moved == {}
    assert old.services["sirius-api"] == report.ServiceEntry(image="ghcr.io/siriusscan/sirius-api:latest")
    assert old.services["sirius-ui"].healthy_seconds is None and old.services["sirius-ui"].recreated
    assert old.rollback.to == report.Served("v1.1.0", "v1.1.0", "d" * 40) and old.disk.removed_images == 3
    assert set(report.to_json(old)) == DEPLOY_KEYS  # the unknown key dropped, the missing ones there


def test_the_health_report_reads_an_old_report_on_a_host(tmp_path, monkeypatch):
    """After an engine upgrade, `health` on a host whose last deploy the previous engine wrote."""
    FakeDocker(root=str(tmp_path)).install(monkeypatch)
    (tmp_path / deploy.REPORT_FILE).write_text(json.dumps({**OLD_REPORT, "status": "healthy"}))
    now = health.report(str(tmp_path))
    assert now["status"] == "unhealthy"  # nothing runs on this fake host
    assert set(now["services"]) == {"sirius-ui", "sirius-api"} and now["imageTag"] == "latest"
    assert now["digests"] == {"sirius-ui": "sha256:" + "1" * 64, "sirius-api": None}
    assert now["deploySeconds"] == 670.2 and now["phases"]["pull"] == 21.3
    assert now["lastDeploy"]["demoData"] is None and now["lastReset"] is None


@pytest.mark.parametrize("garbage", [None, [], "text", {"phases": [1], "services": {"a": 5}, "rollback": "x"}])
def test_what_is_not_a_report_reads_as_the_defaults(garbage):
    """The CI summary and the rehearsal read reports from outputs and logs: never a crash."""
    parsed = report.from_json(garbage)
    assert parsed.phases == report.Phases() and parsed.rollback is None
    assert all(entry == report.ServiceEntry() for entry in parsed.services.values())


def test_a_missing_or_broken_file_reads_as_none(tmp_path):
    assert report.read(str(tmp_path / "none.json")) is None
    (tmp_path / "broken.json").write_text("{")
    assert report.read(str(tmp_path / "broken.json")) is None
