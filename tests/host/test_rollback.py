"""Rollback to the last healthy deploy, and disk care, on a real Docker Engine.

A deploy that ends unhealthy or fails to start puts back what ran before (commit,
.env, pinned images) on the same volumes and still exits non-zero; a ref that fails
the compatibility check touches nothing; after healthy deploys at most two sets of
Sirius images stay.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from testbed.standins import SERVICE_IMAGES, TAG_API_CRASH, TAG_BROKEN, TAG_LATEST, TAG_V1, TAG_V2
from .site import Site

SERVICES = sorted(SERVICE_IMAGES)


def volumes(site: Site) -> dict[str, str]:
    """name -> creation time of the project's volumes: the same after a rollback means kept."""
    names = site.engine.run("volume", "ls", "-q", "--filter", "label=com.docker.compose.project=sirius").stdout.split()
    return {v["Name"]: v["CreatedAt"] for v in json.loads(site.engine.run("volume", "inspect", *names).stdout)}


def head(site: Site) -> str:
    return subprocess.run(["git", "-C", str(site.project), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def assert_serves_v1(site: Site, standins) -> None:
    containers = site.containers()
    for service in SERVICES:
        image = SERVICE_IMAGES[service]
        assert containers[service]["image"].endswith(f"{image}@{standins.digest(image, TAG_V1)}"), service
        if service != "sirius-migrate":
            assert containers[service]["health"] in ("healthy", None), (service, containers[service])
    assert site.env_file()["IMAGE_TAG"] == TAG_V1
    code, health = site.health()
    assert code == 0 and health["status"] == "healthy"


@pytest.mark.parametrize(("bad_tag", "bad_service"), [(TAG_BROKEN, "sirius-ui"), (TAG_API_CRASH, "sirius-api")],
                         ids=["never-healthy", "exits"])
def test_a_bad_new_tag_is_rolled_back_to_the_last_healthy_deploy(site, standins, no_sirius_images, bad_tag, bad_service):
    # One health timeout for both: it is part of the override (start_period), and a changed
    # override recreates every service.
    good = site.deploy(TAG_V1, health_timeout=40)
    assert good.code == 0, good.stderr
    kept_volumes, good_ids = volumes(site), {s: c["id"] for s, c in site.containers().items()}

    bad = site.deploy(bad_tag, health_timeout=40)
    assert bad.code == 1, bad.stderr
    report = bad.report
    assert report["status"] == "rolled-back"
    assert bad_service in report["unhealthy"] and bad_service in report["error"]  # the failed deploy's diagnosis
    assert "=== diagnostics" in bad.stderr and f"--- {bad_service}:" in bad.stderr
    assert report["rollback"]["status"] == "healthy" and report["rollback"]["seconds"] > 0
    assert report["serving"] == {"ref": "main", "imageTag": TAG_V1, "commit": good.report["commit"]}
    assert report["rollback"]["to"] == report["serving"]
    last_line = bad.stderr.strip().splitlines()[-1]
    assert "ROLLED BACK" in last_line and f"tag {TAG_V1}" in last_line and good.report["commit"][:12] in last_line
    assert_serves_v1(site, standins)
    assert volumes(site) == kept_volumes
    # Only what the bad tag changed was recreated, twice; the rest never stopped.
    untouched = {s for s, c in site.containers().items() if c["id"] == good_ids[s]}
    assert bad_service not in untouched and "sirius-postgres" in untouched
    for secret in site.secret_values():
        assert secret not in bad.stdout + bad.stderr
    # The record is still the healthy deploy: a later good deploy goes on from there.
    again = site.deploy(TAG_V2, health_timeout=40)
    assert again.code == 0 and again.report["rollback"] is None, again.stderr


def test_rollback_off_leaves_the_failed_deploy_running(site, no_sirius_images):
    assert site.deploy(TAG_V1, health_timeout=30).code == 0
    bad = site.deploy(TAG_BROKEN, health_timeout=30, rollback=False)
    assert bad.code == 1 and bad.report["status"] == "unhealthy"
    assert bad.report["rollback"]["status"] == "none" and "--no-rollback" in bad.report["rollback"]["reason"]
    assert site.env_file()["IMAGE_TAG"] == TAG_BROKEN


def test_the_first_deploy_has_nothing_to_roll_back_to(site, no_sirius_images):
    bad = site.deploy(TAG_BROKEN, health_timeout=30)
    assert bad.code == 1 and bad.report["status"] == "unhealthy"
    assert bad.report["rollback"] == {"status": "none", "reason": "no earlier healthy deploy on this host",
                                      "to": None, "seconds": None, "unhealthy": []}


def test_a_ref_that_fails_the_check_touches_nothing(site, no_sirius_images):
    good = site.deploy(TAG_V1)
    assert good.code == 0, good.stderr
    before = {s: c["id"] for s, c in site.containers().items()}
    env_before = (site.project / ".env").read_text()
    override_before = (site.state / "compose.run.yaml").read_text()

    bad = site.deploy(TAG_V1, ref="demo")  # stale: infra services have no image
    assert bad.code == 1 and bad.report["status"] == "failed"
    assert "compatibility check" in bad.report["error"]
    assert bad.report["rollback"] is None  # nothing was switched, so nothing to put back
    assert head(site) == good.report["commit"]
    assert (site.project / ".env").read_text() == env_before
    assert (site.state / "compose.run.yaml").read_text() == override_before
    assert {s: c["id"] for s, c in site.containers().items()} == before
    assert not (site.state / "staging").exists()


def test_tag_changes_keep_at_most_two_sets_of_images(site, standins, no_sirius_images):
    """v1 -> latest -> v2 -> latest: without disk care the UI alone would have three images."""
    removed = 0
    for tag in (TAG_V1, TAG_LATEST, TAG_V2, TAG_LATEST):
        deploy = site.deploy(tag)
        assert deploy.code == 0, deploy.stderr
        disk = deploy.report["disk"]
        removed += disk["removedImages"]
        assert disk["freeGbAfter"] > 0 and disk["notRemoved"] == 0
        for image in set(SERVICE_IMAGES.values()):
            repo = f"{site.registry.host}/siriusscan/{image}"
            ids = set(site.engine.run("image", "ls", "-q", "--no-trunc", repo).stdout.split())
            assert 1 <= len(ids) <= 2, (tag, image, ids)
    # The last two deploys' images are the ones kept: v2's UI, and latest's.
    ui = f"{site.registry.host}/siriusscan/sirius-ui"
    kept = site.engine.run("image", "ls", "--digests", "--format", "{{.Digest}}", ui).stdout.split()
    assert set(kept) == {standins.digest("sirius-ui", TAG_V2), standins.digest("sirius-ui", TAG_LATEST)}
    assert removed >= 1
    again = site.deploy(TAG_LATEST)  # the same images again: nothing to look for
    assert again.code == 0 and again.report["disk"]["removedImages"] == 0 and "disk: removed" not in again.stderr
