"""The fixture is upstream's Sirius as a deploy meets it, proven with plain `docker compose`.

No deploy engine here: only the fixture repo (``make_sirius_repo``), the stand-in images
and Docker Compose, so these tests say what upstream's compose file does with an
installer-like ``.env`` -- and what it does without one of its lines.  Every ``up``
uses the loopback override (the fixture publishes on all addresses, as upstream does)
and, except where a test is about the intervals themselves, the start_interval override.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from testbed.compose_checkout import (
    compose_config,
    compose_files,
    container_state,
    remove_project,
    sirius_env,
    wait_for,
    write_loopback_override,
    write_runtime_files,
)
from testbed.docker_engine import DockerCommandError
from testbed.fixture_compose import API_KEY_FILE, ENGINE_CHECK_MAIN, HEALTH_TIMING, PUBLISHED_PORTS
from testbed.standins import SERVICE_IMAGES, TAG_API_CRASH
from testbed.web import http_request

LONG_RUNNING = [s for s in SERVICE_IMAGES if s != "sirius-migrate"]
REQUIRED = ("POSTGRES_PASSWORD", "DATABASE_URL", "NEXTAUTH_SECRET", "INITIAL_ADMIN_PASSWORD")


def clone(url: str, ref: str, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", url, str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "fetch", "-q", "origin", ref], check=True)
    subprocess.run(["git", "-C", str(dest), "checkout", "-q", "FETCH_HEAD"], check=True)
    return dest


@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="sdf-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def health(engine, name: str) -> str:
    state = container_state(engine, name)
    return (state.get("Health") or {}).get("Status") or state["Status"]


def all_healthy(engine) -> bool:
    if container_state(engine, "sirius-migrate")["ExitCode"] != 0:
        return False
    return all(health(engine, s) == "healthy" for s in LONG_RUNNING)


# ------------------------------------------------------------ the repository


def test_refs_like_upstream(sirius_repo, workdir):
    refs = subprocess.run(["git", "ls-remote", sirius_repo], capture_output=True, text=True,
                          check=True).stdout
    names = {line.split("\t")[1] for line in refs.splitlines()}
    assert {"HEAD", "refs/heads/main", "refs/heads/demo", "refs/tags/v0.4.1", "refs/tags/v1.0.0",
            "refs/tags/v1.1.0", "refs/pull/7/head"} <= names
    repo = clone(sirius_repo, "main", workdir / "s")

    def show(ref, path="docker-compose.yaml"):
        return subprocess.run(["git", "-C", str(repo), "show", f"{ref}:{path}"],
                              capture_output=True, text=True, check=True).stdout

    subprocess.run(["git", "-C", str(repo), "fetch", "-q", "origin", "refs/pull/7/head:pr7"], check=True)
    assert show("origin/main") == show("v1.1.0") == show("pr7")
    assert show("origin/main", "docker-compose.build.yaml") != show("v1.1.0", "docker-compose.build.yaml")
    # the stale branch is older than every release that works with the key file
    date = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%cs", "origin/demo"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert date == "2025-11-13"


def test_stale_demo_and_old_releases(docker_engine, sirius_repo, workdir):
    demo = clone(sirius_repo, "demo", workdir / "demo")
    services = compose_config(docker_engine, demo)["services"]
    assert sorted(s for s, spec in services.items() if "image" not in spec) == [
        "sirius-postgres", "sirius-rabbitmq", "sirius-valkey"]
    assert all("build" in services[s] for s in ("sirius-postgres", "sirius-rabbitmq", "sirius-valkey"))
    assert "sirius-migrate" not in services
    raw = (demo / "docker-compose.yaml").read_text()
    assert "secrets:" not in raw and "SIRIUS_API_KEY" not in raw

    old = clone(sirius_repo, "v0.4.1", workdir / "v041")
    services = compose_config(docker_engine, old)["services"]
    assert services and not [s for s, spec in services.items() if "image" in spec]

    v100 = clone(sirius_repo, "v1.0.0", workdir / "v100")
    with pytest.raises(DockerCommandError) as refused:
        compose_config(docker_engine, v100)
    assert "SIRIUS_API_KEY" in refused.value.stderr
    config = compose_config(docker_engine, v100, env={"SIRIUS_API_KEY": "k"})
    assert "secrets" not in config and "sirius-migrate" not in config["services"]


# ----------------------------------------------- rendered compose (no containers)


@pytest.fixture
def checkout(sirius_repo, workdir):
    repo = clone(sirius_repo, "main", workdir / "sirius")
    write_runtime_files(repo)
    return repo


def test_main_compose_renders_upstream_facts(docker_engine, registry, checkout):
    config = compose_config(docker_engine, checkout)
    assert config["name"] == "sirius"
    assert config["networks"]["default"]["name"] == "sirius"
    assert sorted(config["volumes"]) == ["postgres_data", "rabbitmq_data", "valkey_data"]
    assert config["secrets"]["sirius_api_key"]["file"] == str(checkout / "secrets" / "sirius_api_key.txt")
    services = config["services"]
    assert sorted(services) == sorted(SERVICE_IMAGES)
    for name, spec in services.items():
        assert spec["image"] == f"{registry.host}/siriusscan/{SERVICE_IMAGES[name]}:latest", name
        assert spec["pull_policy"] == "always", name
        assert spec["restart"] == ("no" if name == "sirius-migrate" else "unless-stopped"), name
        assert spec["container_name"] == name
    for name, (interval, timeout, retries) in HEALTH_TIMING.items():
        check = services[name]["healthcheck"]
        assert (check["interval"], check["timeout"], check["retries"]) == (interval, timeout, retries)
        assert "start_period" not in check and "start_interval" not in check, name
    assert services["sirius-engine"]["healthcheck"]["test"] == [
        "CMD", "bash", "-lc", ENGINE_CHECK_MAIN.replace("${SIRIUS_API_KEY_FILE:-}", API_KEY_FILE)]
    assert services["sirius-api"]["healthcheck"]["test"] == [
        "CMD", "wget", "--no-verbose", "--tries=1", "--spider", "http://127.0.0.1:9001/health"]
    migrate = services["sirius-migrate"]
    assert migrate["entrypoint"] == ["/app/migrate"] and "healthcheck" not in migrate
    conditions = {name: {dep: d["condition"] for dep, d in spec.get("depends_on", {}).items()}
                  for name, spec in services.items()}
    assert conditions["sirius-api"]["sirius-migrate"] == "service_completed_successfully"
    assert conditions["sirius-engine"] == {**{s: "service_healthy" for s in (
        "sirius-rabbitmq", "sirius-postgres", "sirius-valkey", "sirius-api")},
        "sirius-migrate": "service_completed_successfully"}
    assert conditions["sirius-ui"] == {s: "service_healthy" for s in (
        "sirius-postgres", "sirius-api", "sirius-rabbitmq")}
    for name in ("sirius-ui", "sirius-api", "sirius-engine"):
        assert [s["source"] for s in services[name]["secrets"]] == ["sirius_api_key"]
    for name, ports in PUBLISHED_PORTS.items():
        published = services[name]["ports"]
        assert sorted(int(p["published"]) for p in published) == sorted(ports)
        assert all(not p.get("host_ip") for p in published), published  # every address
    conf = [v for v in services["sirius-rabbitmq"]["volumes"] if v["type"] == "bind"]
    assert conf[0]["target"] == "/etc/rabbitmq/rabbitmq.conf" and conf[0]["read_only"]
    assert float(services["sirius-ui"]["deploy"]["resources"]["limits"]["cpus"]) == 2

    tagged = compose_config(docker_engine, checkout, env={
        "IMAGE_TAG": "v2", "SIRIUS_IMAGE_PULL_POLICY": "missing"})["services"]
    assert tagged["sirius-migrate"]["image"].endswith("/siriusscan/sirius-api:v2")
    assert {s["pull_policy"] for s in tagged.values()} == {"missing"}

    rebound = compose_config(docker_engine, checkout, ["docker-compose.yaml", write_loopback_override(checkout)])
    for name, ports in PUBLISHED_PORTS.items():
        published = rebound["services"][name]["ports"]
        assert sorted(int(p["published"]) for p in published) == sorted(ports)
        assert {p["host_ip"] for p in published} == {"127.0.0.1"}


def test_engine_check_renders_empty_without_key_file(docker_engine, checkout):
    write_runtime_files(checkout, sirius_env(api_key_file=None))
    test = compose_config(docker_engine, checkout)["services"]["sirius-engine"]["healthcheck"]["test"]
    assert '[ -r "" ]' in test[3]
    # the services themselves still get the path (their own default)
    env = compose_config(docker_engine, checkout)["services"]["sirius-api"]["environment"]
    assert env["SIRIUS_API_KEY_FILE"] == API_KEY_FILE


@pytest.mark.parametrize("variable", REQUIRED)
def test_compose_refuses_without_required_variable(docker_engine, checkout, variable):
    env = sirius_env()
    del env[variable]
    write_runtime_files(checkout, env)
    result = docker_engine.compose("config", "--quiet", project_dir=checkout, check=False)
    assert result.returncode != 0
    assert f"{variable} is required" in result.stderr


def test_up_refuses_without_required_variable(docker_engine, clean_project, checkout):
    env = sirius_env()
    del env["POSTGRES_PASSWORD"]
    write_runtime_files(checkout, env)
    result = docker_engine.compose("up", "-d", project_dir=checkout, files=compose_files(checkout),
                                   check=False)
    assert result.returncode != 0 and "POSTGRES_PASSWORD is required" in result.stderr
    assert not docker_engine.run("ps", "-aq", "--filter", "label=com.docker.compose.project=sirius").stdout


# ---------------------------------------------------- a running stack (shared)


@pytest.fixture(scope="module")
def stack(docker_engine, registry, standins, sirius_repo):
    """main with an installer-like .env, the key file, loopback + start_interval
    overrides: pulled, then `up -d --wait` timed."""
    work = Path(tempfile.mkdtemp(prefix="sdf-", dir="/tmp"))
    remove_project(docker_engine)
    try:
        repo = clone(sirius_repo, "main", work / "sirius")
        env = write_runtime_files(repo)
        files = compose_files(repo)
        docker_engine.compose("pull", "--quiet", project_dir=repo, files=files)
        started = time.monotonic()
        docker_engine.compose("up", "-d", "--wait", "--wait-timeout", "120", project_dir=repo, files=files)
        seconds = time.monotonic() - started
        print(f"\nfixture up -d --wait (start_interval 1s override): healthy in {seconds:.1f}s")
        yield {"dir": repo, "env": env, "files": files, "seconds": seconds}
    finally:
        remove_project(docker_engine)
        shutil.rmtree(work, ignore_errors=True)


def test_up_wait_is_healthy_quickly(docker_engine, stack):
    assert all_healthy(docker_engine)
    assert container_state(docker_engine, "sirius-migrate")["Status"] == "exited"
    # upstream's intervals alone would take ~90 s (rabbitmq -> api -> ui, 30 s each)
    assert stack["seconds"] < 45, stack["seconds"]


def test_checks_run_as_upstream_writes_them(docker_engine, stack):
    config = json.loads(docker_engine.run("inspect", "--format", "{{json .Config.Healthcheck}}",
                                          "sirius-engine").stdout)
    assert config["Test"][:3] == ["CMD", "bash", "-lc"] and f'[ -r "{API_KEY_FILE}" ]' in config["Test"][3]
    log = container_state(docker_engine, "sirius-engine")["Health"]["Log"]
    assert log and log[-1]["ExitCode"] == 0

    def bash(container, script):
        return docker_engine.run("exec", container, "bash", "-lc", script, check=False).returncode

    check = config["Test"][3]
    assert bash("sirius-engine", check) == 0
    assert bash("sirius-engine", check.replace(API_KEY_FILE, "")) == 1            # [ -r "" ]
    assert bash("sirius-engine", check.replace("/50051", "/50052")) == 1         # port closed
    assert bash("sirius-engine", check.replace("psql", "no-such-tool")) != 0
    assert bash("sirius-ui", "command -v psql") != 0                            # engine-only tools
    assert docker_engine.run("exec", "sirius-api", "id", "-u").stdout.strip() == "1001"
    for argv in (["rabbitmqctl", "status"], ["/usr/local/bin/pg-healthcheck.sh"],
                 ["valkey-cli", "ping"]):
        name = {"rabbitmqctl": "sirius-rabbitmq", "valkey-cli": "sirius-valkey"}.get(argv[0], "sirius-postgres")
        assert docker_engine.run("exec", name, *argv, check=False).returncode == 0, argv
    assert docker_engine.run("exec", "sirius-ui", "wget", "--no-verbose", "--tries=1", "--spider",
                             "http://127.0.0.1:3000/", check=False).returncode == 0


def test_ports_on_loopback_and_api_contract(docker_engine, stack):
    for name, ports in PUBLISHED_PORTS.items():
        out = docker_engine.run("port", name).stdout
        for port in ports:
            assert f"{port}/tcp -> 127.0.0.1:{port}" in out, out
        assert "0.0.0.0" not in out and "[::]" not in out, out
    status, _, body = http_request("http://127.0.0.1:9001/health")
    assert status == 200 and json.loads(body)["status"] == "healthy"
    status, _, _ = http_request("http://127.0.0.1:9001/host")
    assert status == 401
    key = {"X-API-Key": stack["env"]["SIRIUS_API_KEY"], "Content-Type": "application/json"}
    host = {"hid": "h1", "ip": "192.0.2.10", "hostname": "demo"}
    status, _, _ = http_request("http://127.0.0.1:9001/host", "POST", json.dumps(host).encode(), headers=key)
    assert status == 200
    status, _, body = http_request("http://127.0.0.1:9001/host", headers=key)
    # Listed as go-api's Host, as upstream lists it (no ports: null; no CVEs: key omitted).
    assert status == 200 and json.loads(body) == [{"hid": "h1", "os": "", "osversion": "", "ip": "192.0.2.10",
                                                   "hostname": "demo", "ports": None, "cpe": None, "users": None,
                                                   "notes": None}]


def test_standins_log_the_secrets_they_received(docker_engine, stack):
    env = stack["env"]
    api = docker_engine.run("logs", "sirius-api").stdout
    ui = docker_engine.run("logs", "sirius-ui").stdout
    assert env["POSTGRES_PASSWORD"] in api and env["SIRIUS_API_KEY"] in api
    for name in ("DATABASE_URL", "NEXTAUTH_SECRET", "INITIAL_ADMIN_PASSWORD", "SIRIUS_API_KEY"):
        assert env[name] in ui, name


def test_upstream_intervals_without_override(docker_engine, clean_project, standins, checkout):
    """Without start_interval a ready service waits one full interval for its first
    check: postgres (10 s) turns healthy only after ~10 s, rabbitmq (30 s) not before 30 s."""
    files = ["docker-compose.yaml", write_loopback_override(checkout)]
    started = time.monotonic()
    docker_engine.compose("up", "-d", "sirius-postgres", "sirius-rabbitmq", project_dir=checkout, files=files)
    wait_for(lambda: docker_engine.run("exec", "sirius-postgres", "/usr/local/bin/pg-healthcheck.sh",
                                       check=False).returncode == 0, 20, what="postgres ready")
    ready = time.monotonic() - started
    assert health(docker_engine, "sirius-postgres") == "starting"
    wait_for(lambda: health(docker_engine, "sirius-postgres") == "healthy", 20, 0.2, what="postgres healthy")
    healthy = time.monotonic() - started
    print(f"\npostgres ready after {ready:.1f}s, healthy after {healthy:.1f}s (interval 10s)")
    assert healthy >= 9.5
    assert docker_engine.run("exec", "sirius-rabbitmq", "rabbitmqctl", "status", check=False).returncode == 0
    assert health(docker_engine, "sirius-rabbitmq") == "starting"


def test_local_build_fallback(docker_engine, clean_project, checkout):
    files = ["docker-compose.yaml", "docker-compose.build.yaml"]
    started = time.monotonic()
    docker_engine.compose("build", project_dir=checkout, files=files, timeout=300)
    seconds = time.monotonic() - started
    print(f"\nlocal build of the stand-ins: {seconds:.1f}s")
    images = docker_engine.run("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    for image in ("rabbitmq", "postgres", "valkey", "ui", "api", "engine"):
        assert f"sirius-sirius-{image}:source" in images
    config = compose_config(docker_engine, checkout, files)["services"]
    assert config["sirius-migrate"]["image"] == "sirius-sirius-api:source"
    assert {s["pull_policy"] for s in config.values()} == {"never"}
    for image in ("rabbitmq", "postgres", "valkey", "ui", "api", "engine"):
        docker_engine.run("rmi", f"sirius-sirius-{image}:source", check=False)


# ------------------------------------------------- stacks that must not be healthy


def test_engine_never_healthy_without_key_file_line(docker_engine, clean_project, standins, checkout):
    write_runtime_files(checkout, sirius_env(api_key_file=None))
    files = compose_files(checkout)
    docker_engine.compose("up", "-d", project_dir=checkout, files=files)
    others = [s for s in LONG_RUNNING if s != "sirius-engine"]
    wait_for(lambda: all(health(docker_engine, s) == "healthy" for s in others), 60, what="the other services")
    time.sleep(8)
    state = container_state(docker_engine, "sirius-engine")
    assert state["Status"] == "running" and state["Health"]["Status"] in ("starting", "unhealthy")
    log = state["Health"]["Log"]
    assert len(log) >= 5 and all(entry["ExitCode"] == 1 for entry in log), log
    # the engine itself is fine: the same check with the path filled in passes
    check = compose_config(docker_engine, checkout, files)["services"]["sirius-engine"]["healthcheck"]["test"][3]
    fixed = check.replace('[ -r "" ]', f'[ -r "{API_KEY_FILE}" ]')
    assert docker_engine.run("exec", "sirius-engine", "bash", "-lc", fixed, check=False).returncode == 0
    wait = docker_engine.compose("up", "-d", "--wait", "--wait-timeout", "5", project_dir=checkout,
                                 files=files, check=False)
    assert wait.returncode != 0


def test_api_crash_tag(docker_engine, clean_project, standins, checkout):
    env = write_runtime_files(checkout, sirius_env(IMAGE_TAG=TAG_API_CRASH))
    files = compose_files(checkout)
    result = docker_engine.compose("up", "-d", "--wait", "--wait-timeout", "30", project_dir=checkout,
                                   files=files, check=False)
    assert result.returncode != 0
    assert container_state(docker_engine, "sirius-migrate")["ExitCode"] == 0
    api = container_state(docker_engine, "sirius-api")
    restarts = int(docker_engine.run("inspect", "-f", "{{.RestartCount}}", "sirius-api").stdout.strip())
    # Between two restarts it may be caught "running" again: the restarts tell the crash loop.
    assert api["Status"] in ("restarting", "exited") or api["ExitCode"] == 1 or restarts >= 1, api
    logs = docker_engine.run("logs", "sirius-api").stdout
    assert "CRASH build" in docker_engine.run("logs", "sirius-api").stderr + logs
    assert env["POSTGRES_PASSWORD"] in logs
