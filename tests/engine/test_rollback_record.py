"""The rollback record and disk care's choices: pure parts, no Docker."""

from __future__ import annotations

import fcntl
import json
import os

from engine import deploy, diskcare, report, rollback, settings

RECORD = {"ref": "main", "imageTag": "v1", "commit": "a" * 40, "project": "sirius",
          "runImages": {"sirius-ui": "127.0.0.1:5000/siriusscan/sirius-ui@sha256:" + "1" * 64},
          "imageIds": {"sirius-ui": "sha256:" + "2" * 64}, "env": "POSTGRES_PASSWORD=secret\n", "override": "services: {}\n"}


def test_the_record_is_one_private_file_and_a_partial_one_is_not_loaded(tmp_path):
    rollback.save(str(tmp_path), RECORD)
    path = tmp_path / rollback.RECORD
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # it holds .env's secrets
    assert rollback.load(str(tmp_path)) == RECORD
    path.write_text(json.dumps({k: v for k, v in RECORD.items() if k != "override"}))
    assert rollback.load(str(tmp_path)) is None
    path.write_text("{not json")
    assert rollback.load(str(tmp_path)) is None


def test_only_an_identical_deploy_has_nothing_to_put_back():
    same = (RECORD["commit"], RECORD["runImages"], RECORD["env"], RECORD["override"])
    assert rollback.is_same_deploy(RECORD, *same)
    assert not rollback.is_same_deploy(RECORD, "b" * 40, *same[1:])
    assert not rollback.is_same_deploy(RECORD, same[0], {"sirius-ui": "other"}, *same[2:])
    assert not rollback.is_same_deploy(RECORD, *same[:2], "POSTGRES_PASSWORD=secret\nNEXTAUTH_URL=x\n", same[3])
    assert not rollback.is_same_deploy(RECORD, *same[:3], "services: {a: {}}\n")


def test_what_is_served_names_no_secret():
    served = report.to_json(rollback.served(RECORD))
    assert served == {"ref": "main", "imageTag": "v1", "commit": "a" * 40}
    assert "secret" not in json.dumps(served) + rollback.describe(rollback.served(RECORD))


def test_repository_of_a_reference_by_tag_or_digest():
    assert diskcare.repository_of("127.0.0.1:5000/siriusscan/sirius-ui:v1") == "127.0.0.1:5000/siriusscan/sirius-ui"
    assert diskcare.repository_of("127.0.0.1:5000/siriusscan/sirius-ui@sha256:ab") == "127.0.0.1:5000/siriusscan/sirius-ui"
    assert diskcare.repository_of("ghcr.io/siriusscan/sirius-ui") == "ghcr.io/siriusscan/sirius-ui"


def test_only_unkept_images_of_sirius_repositories_are_removable():
    rows = [{"Repository": "r/sirius-ui", "ID": "sha256:old"}, {"Repository": "r/sirius-ui", "ID": "sha256:kept"},
            {"Repository": "r/sirius-ui", "ID": "sha256:old"}, {"Repository": "postgres", "ID": "sha256:other"},
            {"Repository": "<none>", "ID": "sha256:dangling"}]
    assert diskcare.removable(rows, {"r/sirius-ui"}, {"sha256:kept"}) == ["sha256:old"]


def test_low_disk_advice_says_how_to_free_space():
    advice = diskcare.low_disk_advice("/var/lib/docker", 2.0, 8)
    assert "2.0 GiB free under /var/lib/docker" in advice and "needs 8 GiB" in advice
    assert "docker builder prune" in advice and "volumeSize" in advice


def test_a_deploy_that_cannot_get_the_lock_fails_with_the_reason(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    with open(state / deploy.LOCK_FILE, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        s = settings.from_args(["--state-dir", str(state), "--dir", str(tmp_path / "p"), "--health-timeout", "1"])
        assert deploy.Deploy(s).run() == 1
    report = json.loads((state / deploy.REPORT_FILE).read_text())
    assert report["status"] == "failed" and report["error"].startswith("another deploy held")
    assert not os.path.exists(tmp_path / "p")  # nothing fetched, nothing switched


def test_a_new_record_replaces_the_old_file_whole(tmp_path):
    """Written aside and renamed over: the old file is never rewritten in place, so a crash
    mid-write leaves the last complete record (a reader holding it keeps all of it)."""
    rollback.save(str(tmp_path), RECORD)
    path = tmp_path / rollback.RECORD
    os.link(path, tmp_path / "held-by-a-reader")
    newer = {**RECORD, "imageTag": "v2", "commit": "b" * 40}
    rollback.save(str(tmp_path), newer)
    assert rollback.load(str(tmp_path)) == newer and oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads((tmp_path / "held-by-a-reader").read_text()) == RECORD
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([rollback.RECORD, "held-by-a-reader"])  # no leftovers
