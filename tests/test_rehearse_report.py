"""The rehearsal's report table (tools/rehearse.format_report): what a person reads after a
deploy or reset on their own Docker, from the report as the engine writes it."""

from tools import rehearse


def test_format_report_reads_at_a_glance():
    report = {"status": "unhealthy", "imageTag": "v1", "ref": "main", "commit": "a" * 40, "totalSeconds": 9.5,
              "error": "not healthy within 60s: sirius-ui",
              "phases": {"install": 0, "fetch": 0.2, "pull": 1.0, "build": 0, "up": 3.1, "healthy": 60.0},
              "imageFallbacks": {"sirius-ui": {"wanted": "sha-" + "c" * 40, "running": "latest"}},
              "services": {"sirius-ui": {"image": "r/sirius-ui:v1", "digest": "sha256:" + "b" * 64,
                                         "health": "starting", "builtLocally": False, "recreated": True,
                                         "createdSeconds": 1.0, "startedSeconds": 1.5, "healthySeconds": None},
                           "sirius-api": {"image": "r/sirius-api:v1", "digest": None, "health": "healthy",
                                          "builtLocally": True, "recreated": True,
                                          "createdSeconds": 0.9, "startedSeconds": 1.2, "healthySeconds": 7.25}},
              "criticalPath": ["sirius-api"]}
    text = rehearse.format_report(report)
    assert "status: unhealthy" in text and "error: not healthy within 60s: sirius-ui" in text
    assert "WARNING: sirius-ui runs latest, not sha-cccc" in text
    assert "healthy      60.0" in text
    lines = text.splitlines()
    assert lines.index([l for l in lines if l.startswith("sirius-api")][0]) < lines.index([l for l in lines if l.startswith("sirius-ui")][0])
    assert "sirius-ui   starting       1.0     1.5       -  no    yes       r/sirius-ui:v1 (sha256:bbbbbbbbbbbb)" in text
    assert "sirius-api  healthy        0.9     1.2     7.2  yes" in text
    assert text.endswith("critical path: sirius-api (7.2s)")
    after = rehearse.format_report({**report, "status": "rolled-back", "demoData": {"loaded": 0, "reason": "already loaded"},
                                    "rollback": {"status": "healthy", "seconds": 4.2,
                                                 "to": {"ref": "main", "imageTag": "v0", "commit": "d" * 40}},
                                    "disk": {"removedImages": 3, "freeGbBefore": 10.0, "freeGbAfter": 12.5}})
    assert after.splitlines()[-3:] == ["ROLLED BACK in 4.2s: serving ref main, tag v0, commit dddddddddddd",
                                       "demo data: 0 hosts loaded (already loaded)",
                                       "disk: 3 unused images removed, 10.0 -> 12.5 GiB free"]


def test_format_report_of_a_reset_says_which_demo_serves():
    report = {"kind": "reset", "status": "rolled-back", "imageTag": "v2", "ref": "main", "commit": "a" * 40,
              "error": "not healthy within 60s: sirius-ui", "phases": {},
              "reset": {"demo": "last-healthy", "removedServices": ["sirius-api", "sirius-ui"],
                        "removedVolumes": ["sirius_postgres_data", "sirius_valkey_data"]},
              "rollback": {"status": "healthy", "seconds": 9.0, "to": {"ref": "main", "imageTag": "v1", "commit": "d" * 40}},
              "demoData": {"loaded": 22, "reason": None}}
    lines = rehearse.format_report(report).splitlines()
    assert lines[-3:] == ["reset: the demo is last-healthy; removed the containers of 2 services and the volumes "
                          "sirius_postgres_data sirius_valkey_data",
                          "ROLLED BACK in 9.0s: serving ref main, tag v1, commit dddddddddddd",
                          "demo data: 22 hosts loaded"]
