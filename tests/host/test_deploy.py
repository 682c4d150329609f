"""The engine's deploy and health against a real Docker Engine, registry and upstream's
compose project (real health-check intervals, made fast by the engine's override).

Each scenario asserts on the report and on the real containers. The fixtures (see
conftest.py) give a private dockerd, a registry on 127.0.0.1 with stand-in images
for the tags v1, v2 (UI-only change), pr-7-amd64 (api and ui only), broken (UI never
listens) and api-crash (the API exits at start).
"""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from engine import proxy
from infra import bootstrap, commands

from testbed.standins import SERVICE_IMAGES, TAG_API_CRASH, TAG_BROKEN, TAG_PR, TAG_V1, TAG_V2
from .site import Deploy, Site

SERVICES = sorted(SERVICE_IMAGES)


def assert_all_running(site: Site, deploy: Deploy) -> None:
    containers = site.containers()
    assert set(containers) == {*SERVICES, proxy.SERVICE}  # the stack, and the proxy in front of it
    for service, c in containers.items():
        if service == "sirius-migrate":
            assert (c["status"], c["exit"]) == ("exited", 0)
        else:
            assert c["status"] == "running" and c["health"] in ("healthy", None), (service, c)
    assert deploy.report["status"] == "healthy"
    assert all(s["health"] == "healthy" for s in deploy.report["services"].values())


def test_fresh_deploy_is_healthy_and_reports_everything(site, standins, no_sirius_images):
    deploy = site.deploy(TAG_V1)
    assert deploy.code == 0, deploy.stderr
    assert_all_running(site, deploy)
    report = deploy.report
    assert report["imageTag"] == TAG_V1 and report["ref"] == "main" and len(report["commit"]) == 40
    assert set(report["phases"]) == {"install", "fetch", "check", "pull", "build", "up", "healthy"}
    assert report["builtLocally"] == [] and report["unhealthy"] == [] and report["error"] is None
    assert report["startInterval"] is True and report["startIntervalNote"] is None  # Engine 26
    timings = {s: (e["createdSeconds"], e["startedSeconds"], e["healthySeconds"]) for s, e in report["services"].items()}
    for service, (created, started, healthy) in timings.items():
        assert 0 < created <= started <= healthy <= report["totalSeconds"], (service, timings)
    last = max(timings, key=lambda s: timings[s][2])
    path = report["criticalPath"]
    # From an infrastructure service that waits for nothing to the last one ready, each
    # ready later than the one before (Docker's own times, not when the gate looked).
    assert path[0] in ("sirius-rabbitmq", "sirius-postgres", "sirius-valkey") and path[-1] == last, path
    assert [timings[s][2] for s in path] == sorted(timings[s][2] for s in path), (path, timings)
    assert timings["sirius-valkey"][2] < timings["sirius-api"][2]  # ready before `up` returned
    assert 0 < report["totalSeconds"] <= deploy.seconds + 1
    for service in SERVICES:
        image = SERVICE_IMAGES[service]
        entry = report["services"][service]
        assert entry["digest"] == standins.digest(image, TAG_V1)
        assert entry["image"] == f"{site.registry.host}/siriusscan/{image}:{TAG_V1}"
        assert not entry["builtLocally"]
        # The container runs exactly the digest that was pulled.
        assert site.containers()[service]["image"].endswith(f"{image}@{entry['digest']}")
    assert json.loads((site.state / "deploy.json").read_text()) == report
    # Secrets generated on the host, files with the modes the stack needs, never printed.
    assert oct((site.project / ".env").stat().st_mode & 0o777) == "0o600"
    assert oct((site.project / "secrets" / "sirius_api_key.txt").stat().st_mode & 0o777) == "0o644"
    env = site.env_file()
    assert env["NEXTAUTH_URL"] == "http://127.0.0.1:3000" and env["IMAGE_TAG"] == TAG_V1
    assert env["DATABASE_URL"] == f"postgresql://postgres:{env['POSTGRES_PASSWORD']}@sirius-postgres:5432/sirius"
    for secret in site.secret_values():
        assert len(secret) >= 24 and secret not in deploy.stdout + deploy.stderr
    code, health = site.health()
    assert code == 0 and health["status"] == "healthy" and set(health["services"]) == {*SERVICES, proxy.SERVICE}
    assert health["digests"]["sirius-ui"] == standins.digest("sirius-ui", TAG_V1)


def test_missing_tags_are_built_locally_for_those_images_only(site, standins, no_sirius_images):
    deploy = site.deploy(TAG_PR, ref="main")
    assert deploy.code == 0, deploy.stderr
    assert_all_running(site, deploy)
    built = {s for s, e in deploy.report["services"].items() if e["builtLocally"]}
    assert built == {"sirius-postgres", "sirius-rabbitmq", "sirius-valkey", "sirius-engine"}
    assert deploy.report["builtLocally"] == sorted(built)
    assert deploy.report["pullRounds"] == 1  # a tag that does not exist is not retried
    assert deploy.report["services"]["sirius-ui"]["digest"] == standins.digest("sirius-ui", TAG_PR)
    assert deploy.report["phases"]["build"] > 0


def test_registry_down_retries_then_builds_everything(site, registry, no_sirius_images):
    registry.stop()
    deploy = site.deploy(TAG_V1, pull_attempts=3, pull_delay=1)
    assert deploy.code == 0, deploy.stderr
    assert_all_running(site, deploy)
    assert deploy.report["pullRounds"] == 3
    assert deploy.report["builtLocally"] == SERVICES
    assert "retrying in 1s" in deploy.stderr and "retrying in 2s" in deploy.stderr


def test_registry_recovering_during_retries_needs_no_build(site, registry, no_sirius_images):
    registry.stop()
    timer = threading.Timer(2.5, registry.start)
    timer.start()
    try:
        deploy = site.deploy(TAG_V1, pull_attempts=6, pull_delay=2)
    finally:
        timer.join()
    assert deploy.code == 0, deploy.stderr
    assert_all_running(site, deploy)
    assert deploy.report["pullRounds"] >= 2
    assert deploy.report["builtLocally"] == []


def test_a_service_that_never_gets_healthy_fails_within_the_deadline(site, no_sirius_images):
    deploy = site.deploy(TAG_BROKEN, health_timeout=60)
    assert deploy.code == 1
    assert deploy.seconds < 60 + 20
    assert deploy.report["status"] == "unhealthy"
    assert deploy.report["unhealthy"] == ["sirius-ui"]
    assert "not healthy within 60s: sirius-ui" in deploy.report["error"]
    assert "=== diagnostics" in deploy.stderr and "--- sirius-ui:" in deploy.stderr
    code, health = site.health()
    assert code != 0 and health["status"] == "unhealthy" and not health["services"]["sirius-ui"]["ok"]


def test_same_tag_again_changes_nothing_and_new_tag_recreates_only_what_changed(site, standins, no_sirius_images):
    first = site.deploy(TAG_V1)
    assert first.code == 0, first.stderr
    before = site.containers()
    secrets_before = site.secret_values()

    again = site.deploy(TAG_V1)
    assert again.code == 0, again.stderr
    assert not any(e["recreated"] for e in again.report["services"].values())
    assert {s: c["id"] for s, c in site.containers().items()} == {s: c["id"] for s, c in before.items()}

    upgrade = site.deploy(TAG_V2)
    assert upgrade.code == 0, upgrade.stderr
    after = site.containers()
    recreated = {s for s in SERVICES if after[s]["id"] != before[s]["id"]}
    assert recreated == {"sirius-ui"}
    assert {s for s, e in upgrade.report["services"].items() if e["recreated"]} == {"sirius-ui"}
    assert upgrade.report["services"]["sirius-ui"]["digest"] == standins.digest("sirius-ui", TAG_V2)
    assert site.secret_values() == secrets_before


def test_per_image_tags_from_the_preflight(site, standins, no_sirius_images):
    deploy = site.deploy(TAG_V1, image_tags={"sirius-ui": TAG_V2})
    assert deploy.code == 0, deploy.stderr
    assert deploy.report["services"]["sirius-ui"]["digest"] == standins.digest("sirius-ui", TAG_V2)
    assert deploy.report["services"]["sirius-api"]["digest"] == standins.digest("sirius-api", TAG_V1)
    assert deploy.report["builtLocally"] == []


def test_unknown_ref_falls_back_to_the_default_branch(site, no_sirius_images):
    deploy = site.deploy(TAG_V1, ref="no-such-branch")
    assert deploy.code == 0, deploy.stderr
    assert deploy.report["refFellBack"] is True
    assert "does not exist" in deploy.stderr


def test_low_disk_is_refused_before_pulling(site, no_sirius_images):
    deploy = site.deploy(TAG_V1, min_free_gb=10_000_000)
    assert deploy.code == 1
    assert "GiB free under" in deploy.report["error"] and "needs 10000000 GiB" in deploy.report["error"]
    assert deploy.report["phases"]["pull"] == 0 and site.containers() == {}


def test_stopped_daemon_is_a_clear_error(site, docker_engine):
    docker_engine.stop_daemon()
    deploy = site.deploy(TAG_V1)
    assert deploy.code == 1
    assert "Docker daemon is not running" in deploy.report["error"]


def test_missing_compose_plugin_is_a_clear_error(site, tmp_path):
    env = {**site.engine.env, "DOCKER_CONFIG": str(tmp_path / "empty-docker-config")}
    deploy = site.deploy(TAG_V1, env=env)
    assert deploy.code == 1
    assert "Compose v2 plugin is missing" in deploy.report["error"]


def test_health_report_sees_a_stopped_service(site, no_sirius_images):
    assert site.deploy(TAG_V1).code == 0
    container = site.containers()["sirius-valkey"]["id"]
    site.engine.run("stop", container)
    code, health = site.health()
    assert code != 0 and health["status"] == "unhealthy"
    assert health["services"]["sirius-valkey"]["state"] == "exited"
    assert health["lastDeploy"]["status"] == "healthy"


def test_bootstrap_installs_records_booted_and_the_first_deploy_reports_its_time(site, tmp_path, no_sirius_images):
    """user_data's part: the boot zipapp runs the OS setup and records it; the remote
    deploy that follows reports the setup's seconds as its install phase."""
    log = tmp_path / "bootstrap.log"
    boot = tmp_path / "boot.pyz"
    boot.write_bytes(bootstrap.boot_archive())
    argv = [*commands.bootstrap_argv(str(site.state), engine=str(boot)), "--log", str(log)]
    result = subprocess.run(argv, capture_output=True, text=True, env=site.engine.env, timeout=600)
    assert result.returncode == 0, log.read_text()
    record = json.loads((site.state / "bootstrap.json").read_text())
    assert record["status"] == "booted" and record["phases"]["install"] >= 0
    assert "install: Docker and the compose plugin are present; skipping their install" in log.read_text()
    first = site.deploy(TAG_V1)
    assert first.code == 0, first.stderr
    assert first.report["phases"]["install"] == record["phases"]["install"]
    assert site.deploy(TAG_V1).report["phases"]["install"] == 0


@pytest.fixture
def repo_with_broken_postgres_build(sirius_repo, tmp_path):
    """The fixture repo with a sirius-postgres Dockerfile that cannot build."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    work = tmp_path / "broken"
    subprocess.run([*git, "clone", "-q", sirius_repo, str(work)], check=True)
    dockerfile = work / "sirius-postgres" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\nCOPY no-such-file /nowhere\n")
    subprocess.run([*git, "-C", str(work), "commit", "-qam", "break the postgres build"], check=True)
    return work.as_uri()


def test_a_failed_build_fails_the_deploy_with_the_reason(site, repo_with_broken_postgres_build, no_sirius_images):
    site.repo_url = repo_with_broken_postgres_build
    deploy = site.deploy(TAG_PR)  # sirius-postgres has no pr-7-amd64 image: it must be built
    assert deploy.code == 1
    assert deploy.report["status"] == "failed"
    assert "local build of" in deploy.report["error"] and "sirius-postgres" in deploy.report["error"]
    assert "no-such-file" in deploy.stderr  # the build log's tail says why
    assert deploy.report["phases"]["up"] == 0 and site.containers() == {}


def test_a_crash_looping_service_fails_the_deploy_long_before_the_deadline(site, no_sirius_images):
    deploy = site.deploy(TAG_API_CRASH, health_timeout=300)
    assert deploy.code == 1 and deploy.report["status"] in ("unhealthy", "failed")
    assert "sirius-api" in deploy.report["unhealthy"]
    assert deploy.seconds < 120, deploy.seconds
    # The diagnostics name it and quote its log, with the secrets it printed blanked.
    assert "--- sirius-api: " in deploy.stderr and "CRASH build" in deploy.stderr
    for secret in site.secret_values():
        assert secret not in deploy.stderr
