"""python -m tools.rehearse: the user's local loop, on the tests' Docker Engine."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import requests

from testbed.standins import SIRIUS_IMAGES, TAG_LATEST, TAG_V1, TAG_V2
from tests.host.test_preflight import retag


def test_rehearsal_deploys_and_prints_a_table(clean_project, registry, sirius_repo, standins, no_sirius_images, tmp_path):
    argv = [sys.executable, "-m", "tools.rehearse", "--ref", "main", "--tag", TAG_V1,
            "--registry", f"{registry.host}/siriusscan", "--repo", sirius_repo, "--home", str(tmp_path),
            "--health-timeout", "120", "--min-free-gb", "1"]
    result = subprocess.run(argv, capture_output=True, text=True, env=clean_project.env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fetch:" in result.stderr and "pull:" in result.stderr and "deploy: healthy" in result.stderr
    table = result.stdout
    assert f"status: healthy  tag: {TAG_V1}  ref: main" in table
    for phase in ("install", "fetch", "check", "pull", "build", "up", "healthy"):
        assert f"\n{phase} " in table
    assert "sirius-ui" in table and "sirius-migrate" in table
    assert re.search(r"^critical path: sirius-(rabbitmq|postgres|valkey) \(.*s\)$", table, re.M)
    assert table.rstrip().splitlines()[-2:][0] == "demo data: 22 hosts loaded"
    assert re.fullmatch(r"disk: 0 unused images removed, [\d.]+ -> [\d.]+ GiB free", table.rstrip().splitlines()[-1])

    down = subprocess.run([sys.executable, "-m", "tools.rehearse", "--down", "--home", str(tmp_path)],
                          capture_output=True, text=True, env=clean_project.env, timeout=300)
    assert down.returncode == 0, down.stderr
    ps = clean_project.run("ps", "-aq", "--filter", "label=com.docker.compose.project=sirius").stdout.split()
    assert ps == []


def test_rehearsal_refuses_bad_input_with_the_config_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tools.rehearse", "--ref", "main;reboot", "--home", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--ref:" in result.stderr and "';'" in result.stderr and "sirius-demo:" not in result.stderr


def test_a_reset_rehearsal_before_any_deploy_says_deploy_first(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tools.rehearse", "--reset", "--home", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "deploy first" in result.stderr
    assert "the engine printed no report" in result.stdout


def pinned_rehearsal(registry, sirius_repo, home, env) -> tuple[subprocess.CompletedProcess, dict]:
    """`rehearse --pin` of main/latest, as the canary deploys it; the report as the engine wrote it."""
    argv = [sys.executable, "-m", "tools.rehearse", "--ref", "main", "--tag", TAG_LATEST, "--pin",
            "--registry", f"{registry.host}/siriusscan", "--repo", sirius_repo, "--home", str(home),
            "--health-timeout", "120", "--min-free-gb", "1"]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads((home / "state" / "deploy.json").read_text())


def test_the_canary_rehearsal_a_new_ui_under_latest_recreates_only_the_ui(
        clean_project, registry, sirius_repo, standins, no_sirius_images, tmp_path):
    """Deploy latest (pinned), Sirius CI pushes a new UI under latest, the same deploy again:
    only the UI is recreated, it runs the new digest, and the report names old and new."""
    for image in SIRIUS_IMAGES:  # latest of every image (another test may have deleted some: republish v1's)
        if registry.digest(f"siriusscan/{image}", TAG_LATEST) is None:
            retag(registry, image, TAG_V1, TAG_LATEST)
            standins.digests.pop((image, TAG_LATEST), None)
    manifests = f"http://{registry.host}/v2/siriusscan/sirius-ui/manifests"
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    original = requests.get(f"{manifests}/{TAG_LATEST}", headers={"Accept": accept}, timeout=10)
    original.raise_for_status()
    old = standins.digest("sirius-ui", TAG_LATEST)
    try:
        first, report = pinned_rehearsal(registry, sirius_repo, tmp_path, clean_project.env)
        assert report["services"]["sirius-ui"]["digest"] == old and report["moved"] == {}
        before = _container_ids(clean_project)

        retag(registry, "sirius-ui", TAG_V2, TAG_LATEST)  # a new UI build, published as latest
        standins.digests.pop(("sirius-ui", TAG_LATEST), None)
        new = standins.digest("sirius-ui", TAG_LATEST)
        assert new != old

        second, report = pinned_rehearsal(registry, sirius_repo, tmp_path, clean_project.env)
        after = _container_ids(clean_project)
        assert {svc for svc in after if after[svc] != before.get(svc)} == {"sirius-ui"}
        assert {svc for svc, e in report["services"].items() if e["recreated"]} == {"sirius-ui"}
        assert report["services"]["sirius-ui"]["digest"] == new
        assert report["moved"] == {"sirius-ui": {"from": old, "to": new}} and report["commitRange"] is None
        assert f"moved: sirius-ui {old} -> {new}" in second.stdout
    finally:
        requests.put(f"{manifests}/{TAG_LATEST}", data=original.content,
                     headers={"Content-Type": original.headers["Content-Type"]}, timeout=10).raise_for_status()
        standins.digests.pop(("sirius-ui", TAG_LATEST), None)
        subprocess.run([sys.executable, "-m", "tools.rehearse", "--down", "--home", str(tmp_path)],
                       capture_output=True, text=True, env=clean_project.env, timeout=300)


def _container_ids(engine) -> dict[str, str]:
    ids = engine.run("ps", "-aq", "--filter", "label=com.docker.compose.project=sirius").stdout.split()
    found = json.loads(engine.run("inspect", *ids).stdout) if ids else []
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c["Id"] for c in found}
