"""The deploy, the health report, rollback and disk care against a fake Docker (no daemon).

The host tests (tests/host) prove the same engine on a real Docker Engine; these run in
seconds, so a broken rule of engine/deploy.py, health.py, rollback.py or diskcare.py
fails the fast suite: a moving tag that is never pulled again, a secret in the report,
`health` naming the failed deploy after a rollback or calling an empty host healthy,
disk care removing what a rollback needs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from engine import demodata, deploy, diskcare, envfile, health, hostcheck, reset, rollback, settings
from tests.engine.fakedocker import FakeDocker

REGISTRY = "127.0.0.1:5000/siriusscan"
IMAGES = ("sirius-postgres", "sirius-api", "sirius-ui")
# The upstream shape the engine depends on (shared facts): a one-shot migrate from the api
# image, health checks, the UI and API published; long-form ports, as `config` renders them.
COMPOSE = """\
name: sirius
services:
  sirius-postgres:
    image: ghcr.io/siriusscan/sirius-postgres:${IMAGE_TAG:-latest}
    restart: unless-stopped
    environment: {POSTGRES_PASSWORD: "${POSTGRES_PASSWORD}"}
    healthcheck: {test: ["CMD", "/usr/local/bin/pg-healthcheck.sh"], interval: 10s}
    ports: [{target: 5432, published: "5432", protocol: tcp}]
  sirius-migrate:
    image: ghcr.io/siriusscan/sirius-api:${IMAGE_TAG:-latest}
    entrypoint: ["/app/migrate"]
    restart: "no"
    depends_on: {sirius-postgres: {condition: service_healthy}}
  sirius-api:
    image: ghcr.io/siriusscan/sirius-api:${IMAGE_TAG:-latest}
    restart: unless-stopped
    healthcheck: {test: ["CMD", "wget", "--spider", "http://127.0.0.1:9001/health"], interval: 30s}
    ports: [{target: 9001, published: "9001", protocol: tcp}]
    depends_on: {sirius-postgres: {condition: service_healthy},
                 sirius-migrate: {condition: service_completed_successfully}}
  sirius-ui:
    image: ghcr.io/siriusscan/sirius-ui:${IMAGE_TAG:-latest}
    restart: unless-stopped
    environment: {NEXTAUTH_URL: "${NEXTAUTH_URL:-http://localhost:3000}"}
    healthcheck: {test: ["CMD", "wget", "--spider", "http://127.0.0.1:3000/"], interval: 30s}
    ports: [{target: 3000, published: "3000", protocol: tcp}]
    depends_on: {sirius-api: {condition: service_healthy}}
"""
BUILD = """\
services:
  sirius-ui: {build: {context: ./sirius-ui}}
"""
SERVICES = {"sirius-postgres": "sirius-postgres", "sirius-migrate": "sirius-api", "sirius-api": "sirius-api",
            "sirius-ui": "sirius-ui"}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


class NoProxy:
    """The proxy in front of the UI and API, as always up and serving: it has tests of its own
    (tests/engine/test_proxy.py with the real caddy, tests/host/test_visitor.py)."""

    error = ""

    def __init__(self, settings):
        self.s = settings

    def prepare(self, timeout: float) -> dict:
        return {}

    def container(self, project: str) -> dict:
        return {"Id": "proxy", "State": {"Status": "running"}}

    def container_id(self, project: str) -> str:
        return "proxy"

    def ensure(self, compose) -> None:
        pass

    def wait_through(self, project: str, deadline: float) -> dict:
        return {"image": self.s.proxy_image, "recreated": None, "throughSeconds": 0.0, "error": None}

    def gate(self, project: str) -> dict:
        return {}


class Host:
    """One fake host: an upstream repository, the engine's dirs, and its Docker."""

    def __init__(self, tmp_path: Path, monkeypatch):
        self.upstream = tmp_path / "upstream"
        self.upstream.mkdir()
        (self.upstream / "docker-compose.yaml").write_text(COMPOSE)
        git("init", "-q", "-b", "main", cwd=self.upstream)
        git("add", "-A", cwd=self.upstream)
        git("commit", "-q", "-m", "compose", cwd=self.upstream)
        git("tag", "v1.1.0", cwd=self.upstream)
        git("checkout", "-q", "-b", "feature", cwd=self.upstream)  # a ref whose images may be built
        (self.upstream / "docker-compose.build.yaml").write_text(BUILD)
        git("add", "-A", cwd=self.upstream)
        git("commit", "-q", "-m", "build file", cwd=self.upstream)
        git("checkout", "-q", "main", cwd=self.upstream)
        self.project_dir, self.state_dir = tmp_path / "opt" / "sirius", tmp_path / "state"
        self.docker = FakeDocker(root=str(tmp_path)).install(monkeypatch)
        monkeypatch.setattr(deploy.proxy, "Proxy", NoProxy)
        real_which = hostcheck.shutil.which
        monkeypatch.setattr(hostcheck.shutil, "which", lambda name, *a, **k: "/usr/bin/docker" if name == "docker"
                            else real_which(name, *a, **k))

    def branch(self, name: str, compose: str) -> None:
        """A ref of the upstream repository with another compose file."""
        git("checkout", "-q", "-b", name, "main", cwd=self.upstream)
        (self.upstream / "docker-compose.yaml").write_text(compose)
        git("commit", "-q", "-am", name, cwd=self.upstream)
        git("checkout", "-q", "main", cwd=self.upstream)

    def publish(self, tag: str) -> dict[str, str]:
        """Push every image at `tag` (again: a moving tag gets new digests); image -> digest."""
        return {image: self.docker.publish(f"{REGISTRY}/{image}:{tag}") for image in IMAGES}

    def settings(self, ref: str = "main", tag: str = "latest", *flags: str) -> settings.Settings:
        return settings.from_args(["--repo", f"file://{self.upstream}", "--ref", ref, "--tag", tag,
                                   "--registry", REGISTRY, "--dir", str(self.project_dir),
                                   "--state-dir", str(self.state_dir), "--health-timeout", "30",
                                   "--min-free-gb", "0", "--pull-delay", "0", "--no-demo-data",
                                   "--no-firewall", *flags])  # the firewall: tests/engine/test_firewall.py

    def deploy(self, ref: str = "main", tag: str = "latest", *flags: str) -> tuple[int, dict]:
        code = deploy.Deploy(self.settings(ref, tag, *flags)).run()
        return code, json.loads((self.state_dir / deploy.REPORT_FILE).read_text())

    def container(self, service: str) -> dict:
        return next(c for c in self.docker.containers.values()
                    if c["Config"]["Labels"]["com.docker.compose.service"] == service)

    def runs(self, digests: dict[str, str]) -> dict[str, str]:
        """What each service runs when the deploy of `digests` is up."""
        return {svc: f"{REGISTRY}/{image}@{digests[image]}" for svc, image in SERVICES.items()}

    def secrets(self) -> list[str]:
        values = envfile.parse((self.project_dir / ".env").read_text())
        return [values[name] for name in envfile.GENERATED] + [
            (self.project_dir / envfile.API_KEY_FILE).read_text().strip()]


@pytest.fixture
def host(tmp_path, monkeypatch) -> Host:
    return Host(tmp_path, monkeypatch)


# --- the deploy --------------------------------------------------------------------------


def test_a_healthy_deploy_runs_the_pulled_digests_and_becomes_the_rollback_target(host):
    digests = host.publish("latest")
    code, report = host.deploy()
    assert (code, report["status"], report["error"]) == (0, "healthy", None)
    assert host.docker.running() == host.runs(digests)
    assert {svc: entry["digest"] for svc, entry in report["services"].items()} == {
        svc: digests[image] for svc, image in SERVICES.items()}
    record = rollback.load(str(host.state_dir))
    assert record["runImages"] == host.runs(digests) and record["imageTag"] == "latest"
    assert record["commit"] == report["commit"] == git("rev-parse", "HEAD", cwd=host.upstream).strip()


def test_a_moving_tag_is_pulled_again_and_its_new_digest_runs(host):
    host.publish("latest")
    assert host.deploy()[0] == 0
    moved = host.publish("latest")  # Sirius CI pushed `latest` again
    code, report = host.deploy()
    assert code == 0 and host.docker.running() == host.runs(moved)
    assert host.docker.pulls().count(f"{REGISTRY}/sirius-ui:latest") == 2


def test_an_immutable_tag_already_here_is_not_pulled_again(host):
    digests = host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    pulled = len(host.docker.pulls())
    code, report = host.deploy("v1.1.0", "v1.1.0")
    assert code == 0 and len(host.docker.pulls()) == pulled == len(IMAGES)
    assert report["pullRounds"] == 0 and host.docker.running() == host.runs(digests)


def test_a_changed_setting_recreates_what_it_reaches_and_nothing_else(host):
    host.publish("latest")
    assert host.deploy("main", "latest", "--public-host", "203.0.113.10")[0] == 0
    postgres = host.container("sirius-postgres")["Id"]
    code, report = host.deploy("main", "latest", "--public-host", "203.0.113.20")  # same images
    assert code == 0 and "NEXTAUTH_URL=http://203.0.113.20:3000" in host.container("sirius-ui")["Config"]["Env"]
    assert host.container("sirius-postgres")["Id"] == postgres and not report["services"]["sirius-postgres"]["recreated"]
    assert report["services"]["sirius-ui"]["recreated"]


def test_the_report_says_when_each_service_turned_healthy(host):
    digests = host.publish("latest")
    host.docker.slow[digests["sirius-ui"]] = 0.6
    code, report = host.deploy()
    assert code == 0
    ui, postgres = report["services"]["sirius-ui"], report["services"]["sirius-postgres"]
    # From start to healthy, as Docker recorded it (not when the gate first looked): robust to a slow machine.
    assert ui["healthySeconds"] - ui["startedSeconds"] >= 0.55
    assert postgres["healthySeconds"] - postgres["startedSeconds"] < 0.55
    assert report["criticalPath"] == ["sirius-postgres", "sirius-migrate", "sirius-api", "sirius-ui"]


def test_an_image_that_is_not_published_is_built_and_runs_by_its_tag(host):
    digests = {image: host.docker.publish(f"{REGISTRY}/{image}:feature") for image in IMAGES[:2]}
    code, report = host.deploy("feature", "feature")
    assert code == 0 and report["builtLocally"] == ["sirius-ui"]
    assert report["services"]["sirius-ui"]["builtLocally"] and report["services"]["sirius-ui"]["digest"] is None
    assert host.docker.running() == {**host.runs({**digests, "sirius-ui": ""}), "sirius-ui": f"{REGISTRY}/sirius-ui:feature"}
    assert health.report(str(host.state_dir))["builtLocally"] == ["sirius-ui"]


def test_an_image_neither_published_nor_buildable_fails_and_the_last_healthy_deploy_serves(host):
    digests = host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    host.publish("latest")
    del host.docker.registry[f"{REGISTRY}/sirius-ui:latest"]
    code, report = host.deploy()
    assert code == 1 and report["status"] == "rolled-back" and report["pullRounds"] == 1  # no retry helps
    assert "cannot pull sirius-ui" in report["error"] and "docker-compose.build.yaml" in report["error"]
    assert host.docker.running() == host.runs(digests)


def test_a_pull_that_fails_on_the_way_is_retried(host):
    digests = host.publish("latest")
    host.docker.flaky[f"{REGISTRY}/sirius-ui:latest"] = 2
    code, report = host.deploy()
    assert code == 0 and report["pullRounds"] == 3 and host.docker.running() == host.runs(digests)


def test_a_ref_that_does_not_exist_deploys_the_default_branch_and_says_so(host):
    host.publish("latest")
    code, report = host.deploy("no-such-branch", "latest")
    assert code == 0 and report["refFellBack"] is True
    assert report["commit"] == git("rev-parse", "main", cwd=host.upstream).strip()


def test_a_ref_that_cannot_run_published_images_fails_in_the_check_and_the_demo_stays(host):
    digests = host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    host.branch("from-source", COMPOSE.replace("    image: ghcr.io/siriusscan/sirius-ui:${IMAGE_TAG:-latest}\n", ""))
    code, report = host.deploy("from-source", "latest")
    assert code == 1 and report["status"] == "failed" and report["rollback"] is None
    assert report["problems"] and report["problems"][0].startswith("sirius-ui has no image")
    assert host.docker.pulls().count(f"{REGISTRY}/sirius-api:latest") == 0  # before any pull
    assert host.docker.running() == host.runs(digests)


def test_a_container_compose_cannot_create_fails_the_deploy_at_once(host):
    host.publish("latest")
    host.docker.refuse["sirius-ui"] = "Range of CPUs is from 0.01 to 1.00, as there are only 1 CPUs available"
    code, report = host.deploy()
    assert code == 1 and report["status"] == "failed" and report["unhealthy"] == ["sirius-ui"]
    assert report["error"].startswith("docker compose up created no container for sirius-ui: ")
    assert "only 1 CPUs available" in report["error"] and report["phases"]["healthy"] == 0  # no wait


def test_the_report_never_shows_a_secret(host, capsys):
    host.publish("latest")
    assert host.deploy()[0] == 0  # the secrets are made once and kept in .env
    capsys.readouterr()
    host.docker.config_error = "invalid interpolation: POSTGRES_PASSWORD={POSTGRES_PASSWORD} in sirius-postgres"
    code, report = host.deploy()
    printed = capsys.readouterr().out
    assert code == 1 and report["status"] == "failed"
    assert "[redacted]" in report["error"] and any("[redacted]" in p for p in report["problems"])
    for secret in host.secrets():
        assert secret not in json.dumps(report) and secret not in printed


def test_diagnostics_blank_the_secrets_of_the_deploy_put_back(host, capsys):
    """The rollback target's .env can hold other secrets than the failed deploy's (here .env
    was lost in between): its diagnostics, printing the containers' logs, blank both."""
    good = host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    kept = host.secrets()
    (host.project_dir / ".env").unlink()  # the next deploy generates new secrets
    bad = host.publish("latest")
    host.docker.broken |= {bad["sirius-postgres"], good["sirius-postgres"]}
    code, report = host.deploy()
    logged = capsys.readouterr().err
    assert report["rollback"]["status"] == "failed" and "config: POSTGRES_PASSWORD=[redacted]" in logged
    for secret in kept + host.secrets():
        assert secret not in logged and secret not in json.dumps(report)


def test_a_bug_in_a_step_is_reported_redacted(host):
    d = deploy.Deploy(host.settings())
    d.secrets = ["s3cr3t-value"]
    d.report.problems = ["compose said s3cr3t-value"]
    d.record_error(KeyError("s3cr3t-value"))
    assert d.report.status == "failed" and d.report.error == "internal error (KeyError): '[redacted]'"
    assert d.report.problems == ["compose said [redacted]"]


# --- rollback ------------------------------------------------------------------------------


def test_a_failed_deploy_puts_the_last_healthy_one_back(host):
    good = host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    bad = host.publish("latest")
    host.docker.broken.add(bad["sirius-api"])
    code, report = host.deploy()
    assert code == 1 and report["status"] == "rolled-back"
    assert report["rollback"]["status"] == "healthy" and report["serving"]["imageTag"] == "v1.1.0"
    assert "sirius-api" in report["error"] and report["imageTag"] == "latest"
    assert host.docker.running() == host.runs(good)
    assert envfile.parse((host.project_dir / ".env").read_text())[envfile.TAG_KEY] == "v1.1.0"
    assert rollback.load(str(host.state_dir))["imageTag"] == "v1.1.0"  # still the target


def test_a_reset_that_fails_before_the_pull_still_serves_the_last_healthy_deploy_on_fresh_data(host):
    """The fallback of a reset stopped early (its repository gone) restores through the proxy
    and says which demo serves: the last healthy one, not "unchanged" after a wipe."""
    digests = host.publish("latest")
    assert host.deploy()[0] == 0
    record = rollback.load(str(host.state_dir))  # as on a host: the override runs the proxy too
    rollback.save(str(host.state_dir), {**record, "override": record["override"] + '  sirius-proxy: {"image": "caddy"}\n'})
    shutil.rmtree(host.upstream)  # the fetch fails: nothing of the deploy's steps ran
    code = reset.Reset(settings.remembered(str(host.state_dir))).run()
    report = json.loads((host.state_dir / reset.REPORT_FILE).read_text())
    assert code == 1 and report["reset"]["demo"] == reset.LAST_HEALTHY, report
    assert report["status"] == "rolled-back" and report["rollback"]["status"] == "healthy"
    assert "internal error" not in report["error"] and report["reset"]["removedServices"]
    assert host.docker.running() == host.runs(digests)


def test_a_rollback_restarts_a_service_that_crash_looped_only_because_of_the_failed_one(host):
    good = host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    for image in ("sirius-postgres", "sirius-ui"):  # `latest` runs the same postgres and ui as v1.1.0
        host.docker.registry[f"{REGISTRY}/{image}:latest"] = good[image]
    bad = host.docker.publish(f"{REGISTRY}/sirius-api:latest")
    host.docker.broken.add(bad)
    ui = host.container("sirius-ui")["Id"]
    code, report = host.deploy()
    assert report["unhealthy"] == ["sirius-api", "sirius-migrate", "sirius-ui"]  # the ui lost its API
    assert code == 1 and report["status"] == "rolled-back" and report["rollback"]["status"] == "healthy"
    assert host.container("sirius-ui")["Id"] != ui and host.docker.running() == host.runs(good)


def test_a_rollback_that_does_not_come_up_healthy_says_the_demo_is_down(host):
    good = host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    bad = host.publish("latest")
    host.docker.broken |= {bad["sirius-ui"], good["sirius-ui"]}  # e.g. the host's disk went bad meanwhile
    code, report = host.deploy()
    assert code == 1 and report["status"] == "unhealthy" and report["serving"] is None
    assert report["rollback"]["status"] == "failed" and report["rollback"]["unhealthy"] == ["sirius-ui"]
    assert "not healthy within" in report["rollback"]["reason"]


def test_without_an_earlier_healthy_deploy_nothing_is_put_back(host):
    bad = host.publish("latest")
    host.docker.broken.add(bad["sirius-ui"])
    code, report = host.deploy()
    assert code == 1 and report["status"] == "unhealthy" and report["unhealthy"] == ["sirius-ui"]
    assert report["rollback"]["status"] == "none" and "no earlier healthy deploy" in report["rollback"]["reason"]
    assert rollback.load(str(host.state_dir)) is None


def test_with_rollback_off_the_failed_deploy_stays(host):
    host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    bad = host.publish("latest")
    host.docker.broken.add(bad["sirius-ui"])
    code, report = host.deploy("main", "latest", "--no-rollback")
    assert code == 1 and report["status"] == "unhealthy" and report["rollback"]["status"] == "none"
    assert host.docker.running()["sirius-ui"] == f"{REGISTRY}/sirius-ui@{bad['sirius-ui']}"



def test_the_demo_data_loads_while_the_gate_still_waits_for_the_ui(host, monkeypatch):
    digests = host.publish("latest")
    host.docker.slow[digests["sirius-ui"]] = 1.0
    ui_when_loading = []

    def seed(settings, project):
        ui_when_loading.append(host.container("sirius-ui")["State"]["Health"]["Status"])
        return demodata.outcome(22, 0, None, 0.1)

    monkeypatch.setattr(demodata, "seed", seed)
    code, report = host.deploy("main", "latest", "--demo-data")
    assert code == 0 and report["demoData"]["loaded"] == 22
    assert ui_when_loading == ["starting"]  # once, from the moment the API passed, not after the gate


def test_a_rollback_waits_for_a_demo_data_load_under_way(host, monkeypatch):
    host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    bad = host.publish("latest")
    host.docker.broken.add(bad["sirius-ui"])
    ui_after_loading = []

    def seed(settings, project):
        time.sleep(0.5)  # the gate gives up on the UI meanwhile
        ui_after_loading.append(host.docker.running().get("sirius-ui"))
        return demodata.outcome(22, 0, None, 0.5)

    monkeypatch.setattr(demodata, "seed", seed)
    code, report = host.deploy("main", "latest", "--demo-data")
    assert code == 1 and report["status"] == "rolled-back"
    # The load ended on the failed deploy's stack: the rollback came after it, not during it.
    assert ui_after_loading == [f"{REGISTRY}/sirius-ui@{bad['sirius-ui']}"]
    assert report["demoData"] is None  # an unhealthy deploy reports no load

def test_a_failed_reset_falls_back_on_volumes_wiped_after_its_own_demo_data_load(host, monkeypatch):
    """A reset whose UI never passes: its API did, so its demo data load ran on the new stack.
    The fallback waits for that load, then wipes again what that stack wrote, then loads."""
    loads = []  # (the calls made so far, the containers running) at the end of each load

    def seed(settings, project):
        time.sleep(0.3)  # the gate gives up on the UI meanwhile
        loads.append((len(host.docker.calls), set(host.docker.containers)))
        return demodata.outcome(22, 0, None, 0.3)

    monkeypatch.setattr(demodata, "seed", seed)
    good = host.publish("latest")
    assert host.deploy("main", "latest", "--demo-data")[0] == 0
    host.docker.broken.add(host.publish("latest")["sirius-ui"])  # the moving tag goes bad
    loads.clear()
    code = reset.Reset(settings.remembered(str(host.state_dir))).run()
    report = json.loads((host.state_dir / reset.REPORT_FILE).read_text())
    assert code == 1 and report["reset"]["demo"] == reset.LAST_HEALTHY and report["status"] == "rolled-back"
    (calls_then, failed_stack), (_, fallback_stack) = loads  # the early load, then the fallback's
    wiped_after = {cid for argv in host.docker.calls[calls_then:] if argv[:4] == ["docker", "rm", "--force", "--volumes"]
                   for cid in argv[4:]}
    assert failed_stack <= wiped_after  # wiped once its load was done, not during it
    assert not failed_stack & fallback_stack and host.docker.running() == host.runs(good)
    assert report["demoData"]["loaded"] == 22


# --- health --------------------------------------------------------------------------------


def test_health_after_a_rollback_reports_what_runs(host, capsys):
    good = host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    bad = host.publish("latest")
    host.docker.broken.add(bad["sirius-ui"])
    assert host.deploy()[1]["status"] == "rolled-back"
    capsys.readouterr()
    assert health.main(str(host.state_dir)) == 0
    now = json.loads(capsys.readouterr().out)
    assert now["status"] == "healthy" and now["imageTag"] == "v1.1.0"
    assert now["digests"] == {svc: good[image] for svc, image in SERVICES.items()}
    assert now["builtLocally"] == [] and now["lastDeploy"]["status"] == "rolled-back"


def test_health_after_rolling_back_a_local_build_says_nothing_serving_was_built(host):
    host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    bad = {image: host.docker.publish(f"{REGISTRY}/{image}:feature") for image in IMAGES[:2]}
    host.docker.broken.add(bad["sirius-api"])
    code, report = host.deploy("feature", "feature")
    assert report["status"] == "rolled-back" and report["builtLocally"] == ["sirius-ui"]
    assert health.report(str(host.state_dir))["builtLocally"] == []


def test_health_after_a_healthy_deploy(host):
    digests = host.publish("latest")
    assert host.deploy()[0] == 0
    now = health.report(str(host.state_dir))
    assert now["status"] == "healthy" and now["imageTag"] == "latest"
    assert set(now["services"]) == set(SERVICES) and all(s["ok"] for s in now["services"].values())
    assert now["digests"] == {svc: digests[image] for svc, image in SERVICES.items()}


def test_health_looks_at_the_project_the_compose_file_names(host):
    host.publish("latest")
    host.branch("renamed", COMPOSE.replace("name: sirius\n", "name: sirius-renamed\n"))
    assert host.deploy("renamed", "latest")[0] == 0
    assert set(host.docker.running("sirius-renamed")) == set(SERVICES)
    assert health.report(str(host.state_dir))["status"] == "healthy"


def test_health_with_no_containers_is_unhealthy(host, capsys):
    assert health.main(str(host.state_dir)) == 1  # nothing deployed, nothing running
    assert json.loads(capsys.readouterr().out)["status"] == "unhealthy"
    host.publish("latest")
    assert host.deploy()[0] == 0
    host.docker.containers.clear()  # e.g. `docker compose down` by hand
    now = health.report(str(host.state_dir))
    assert now["status"] == "unhealthy"
    assert {s["state"] for s in now["services"].values()} == {"missing"} and set(now["services"]) == set(SERVICES)


def test_health_names_the_service_that_is_down(host):
    host.publish("latest")
    assert host.deploy()[0] == 0
    host.container("sirius-ui")["State"] = {"Status": "exited", "ExitCode": 137}
    now = health.report(str(host.state_dir))
    assert now["status"] == "unhealthy"
    assert [svc for svc, s in now["services"].items() if not s["ok"]] == ["sirius-ui"]
    assert now["services"]["sirius-ui"]["state"] == "exited" and now["services"]["sirius-ui"]["exitCode"] == 137


# --- disk care -----------------------------------------------------------------------------


def test_disk_care_keeps_the_running_deploy_and_the_rollback_target_only(host):
    host.docker.publish("docker.io/library/caddy:2.8.4")
    host.docker.pull("docker.io/library/caddy:2.8.4")  # not Sirius: never touched
    first = host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    second = host.publish("latest")
    assert host.deploy()[0] == 0
    third = host.publish("latest")
    code, report = host.deploy()
    assert code == 0 and report["disk"]["removedImages"] == len(IMAGES)
    local = lambda digests: {image: host.docker.image_of(f"{REGISTRY}/{image}@{d}") is not None  # noqa: E731
                             for image, d in digests.items()}
    assert local(first) == dict.fromkeys(IMAGES, False)
    assert local(second) == dict.fromkeys(IMAGES, True)  # the rollback target's
    assert local(third) == dict.fromkeys(IMAGES, True)
    assert host.docker.image_of("docker.io/library/caddy:2.8.4") is not None
    assert ["docker", "builder", "prune", "--force"] not in host.docker.calls  # nothing was built


def test_after_a_rollback_the_failed_deploys_images_go(host):
    good = host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    bad = host.publish("latest")
    host.docker.broken.add(bad["sirius-ui"])
    assert host.deploy()[1]["status"] == "rolled-back"
    assert all(host.docker.image_of(f"{REGISTRY}/{image}@{d}") is None for image, d in bad.items())
    assert all(host.docker.image_of(f"{REGISTRY}/{image}@{d}") is not None for image, d in good.items())


def test_an_unchanged_redeploy_removes_nothing(host):
    first = host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    host.publish("latest")
    assert host.deploy()[0] == 0
    code, report = host.deploy()  # `latest` did not move
    assert code == 0 and report["disk"]["removedImages"] == 0 and host.docker.removed() == []
    assert all(host.docker.image_of(f"{REGISTRY}/{image}@{d}") for image, d in first.items())


def test_after_a_rollback_the_failed_deploys_images_go_from_any_registry(host):
    host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    mirror = "127.0.0.1:5001/mirror"
    bad = {image: host.docker.publish(f"{mirror}/{image}:latest") for image in IMAGES}
    host.docker.broken.add(bad["sirius-ui"])
    assert host.deploy("main", "latest", "--registry", mirror)[1]["status"] == "rolled-back"
    assert [host.docker.image_of(f"{mirror}/{image}@{d}") for image, d in bad.items()] == [None] * len(IMAGES)


def test_prune_removes_what_nothing_keeps_and_counts_what_docker_refused(host):
    for ref in ("r/sirius-ui:old", "r/sirius-ui:used", "r/sirius-ui:kept", "r/other:x"):
        host.docker.publish(ref)
        host.docker.pull(ref)
    used = host.docker.image_of("r/sirius-ui:used")
    host.docker.containers["c1"] = {"Id": "c1", "Image": used.id, "Config": {"Image": "r/sirius-ui:used", "Labels": {
        "com.docker.compose.project": "other", "com.docker.compose.service": "x"}}}
    kept = host.docker.image_of("r/sirius-ui:kept").id
    disk = diskcare.prune({"r/sirius-ui"}, {kept}, build_cache=False)
    assert (disk.removed_images, disk.not_removed) == (1, 1)
    assert host.docker.image_of("r/sirius-ui:old") is None and host.docker.image_of("r/other:x") is not None
    assert ["docker", "builder", "prune", "--force"] not in host.docker.calls
    diskcare.prune({"r/sirius-ui"}, {kept}, build_cache=True)
    assert ["docker", "builder", "prune", "--force"] in host.docker.calls


def test_the_fake_refuses_commands_it_does_not_know(host):
    with pytest.raises(AssertionError, match="does not know"):
        diskcare.run(["docker", "system", "prune", "--all"])
    assert os.path.exists(host.upstream / "docker-compose.yaml")


# --- what `engine reset` deploys again ---------------------------------------------------------


def test_only_a_healthy_deploy_leaves_its_settings_for_a_reset(host):
    """A reset replays the remembered settings: those of the stack that runs, never those
    of a deploy that failed (rolled back, or stopped in the check)."""
    host.publish("v1.1.0")
    assert host.deploy("v1.1.0", "v1.1.0")[0] == 0
    assert settings.remembered(str(host.state_dir)).image_tag == "v1.1.0"
    bad = host.publish("latest")
    host.docker.broken.add(bad["sirius-ui"])
    assert host.deploy("main", "latest", "--public-host", "203.0.113.9")[1]["status"] == "rolled-back"
    host.branch("from-source", COMPOSE.replace("    image: ghcr.io/siriusscan/sirius-ui:${IMAGE_TAG:-latest}\n", ""))
    assert host.deploy("from-source", "latest")[1]["status"] == "failed"
    again = settings.remembered(str(host.state_dir))
    assert (again.image_tag, again.ref, again.public_host) == ("v1.1.0", "v1.1.0", "localhost")
    code = reset.Reset(again).run()  # and the reset deploys what serves, not the failed deploy
    assert code == 0 and host.docker.running()["sirius-ui"].startswith(f"{REGISTRY}/sirius-ui@")
    assert json.loads((host.state_dir / reset.REPORT_FILE).read_text())["imageTag"] == "v1.1.0"


def test_a_reset_never_changes_the_remembered_settings(host):
    host.publish("latest")
    assert host.deploy("main", "latest", "--health-timeout", "30")[0] == 0
    before = (host.state_dir / settings.REMEMBERED).read_text()
    assert reset.Reset(settings.remembered(str(host.state_dir), health_timeout=20)).run() == 0
    assert (host.state_dir / settings.REMEMBERED).read_text() == before
