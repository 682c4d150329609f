"""Tests of the real-Docker harness itself (engine, registry, stand-ins,
fixture repo).  Run as root: ``python -m pytest tests/host -x -q``."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess

import pytest

from testbed import forward
from testbed.compose_checkout import (
    FAST_HEALTH_OVERRIDE,
    LOOPBACK_OVERRIDE,
    compose_files,
    registry_override_yaml,
    write_runtime_files,
)
from testbed.docker_engine import DockerCommandError
from testbed.ports import free_port
from testbed.standins import SERVICE_IMAGES, SIRIUS_IMAGES, STANDIN_TAGS, TAG_BROKEN, TAG_PR, TAG_V1, TAG_V2
from testbed.web import http_request, wait_http

# the fixture publishes on all addresses (as upstream): bind them to 127.0.0.1; and
# check every second while starting (upstream's 30 s intervals would make each up ~90 s)
COMPOSE_FILES = ["docker-compose.yaml", LOOPBACK_OVERRIDE, FAST_HEALTH_OVERRIDE,
                 "docker-compose.registry.yaml"]


def _deploy_files(checkout, registry, tag, **runtime):
    (checkout / "docker-compose.registry.yaml").write_text(
        registry_override_yaml(registry.host, tag=tag))
    compose_files(checkout)
    return write_runtime_files(checkout, **runtime)


def _state(engine, name):
    out = engine.run("inspect", "--format", "{{json .State}}", name).stdout
    return json.loads(out)


# ---------------------------------------------------------------- engine


def test_engine_answers(docker_engine):
    env = docker_engine.env
    assert env["DOCKER_HOST"] == f"unix://{docker_engine.socket}"
    # the docker found first on PATH is the one the harness chose
    assert shutil.which("docker", path=env["PATH"]) == docker_engine.docker
    info = json.loads(docker_engine.run("info", "--format", "{{json .}}").stdout)
    assert info["ServerVersion"]
    assert info["DockerRootDir"] == str(docker_engine.data_root)
    # a plain subprocess with the env works too (what deploy scripts do)
    out = subprocess.run(["docker", "compose", "version"], env=env, capture_output=True,
                         text=True, check=True)
    assert "Docker Compose version" in out.stdout
    assert os.path.realpath(docker_engine.config_dir / "cli-plugins" / "docker-compose") \
        == docker_engine.compose_binary


def test_daemon_stop_and_start(docker_engine, clean_project):
    docker_engine.stop_daemon()
    try:
        r = docker_engine.run("info", check=False, timeout=30)
        assert r.returncode != 0
        assert "Cannot connect to the Docker daemon" in r.stderr
    finally:
        docker_engine.start_daemon()
    docker_engine.run("info")


def test_daemon_crash_and_restart(docker_engine, standins, clean_project):
    """After a hard kill (orphaned containerd/proxies) the daemon comes back,
    and restart-policy containers with it."""
    img = standins.image("sirius-valkey", TAG_V1)
    port = free_port()
    docker_engine.run("run", "-d", "--name", "harness-crash", "--restart", "unless-stopped",
                      "-p", f"127.0.0.1:{port}:6379", img)
    wait_http(f"http://127.0.0.1:{port}/", timeout=20)
    docker_engine.kill_daemon()
    assert docker_engine.run("info", check=False, timeout=30).returncode != 0
    docker_engine.start_daemon()
    wait_http(f"http://127.0.0.1:{port}/", timeout=30)
    assert _state(docker_engine, "harness-crash")["Running"]
    docker_engine.run("rm", "-f", "harness-crash")


def test_bridge_network_dns_and_published_port(docker_engine, standins, clean_project):
    """Containers on a user-defined bridge reach each other by name, and a
    port published on 127.0.0.1 answers from the host."""
    img = standins.image("sirius-valkey", TAG_V1)
    port = free_port()
    docker_engine.run("network", "create", "harness-net")
    try:
        docker_engine.run("run", "-d", "--name", "harness-web", "--network", "harness-net",
                          "-p", f"127.0.0.1:{port}:6379", img)
        code, body = wait_http(f"http://127.0.0.1:{port}/", timeout=20)
        assert b"valkey" in body
        out = docker_engine.run("run", "--rm", "--network", "harness-net", "--entrypoint",
                                "wget", img, "-q", "-O", "-", "http://harness-web:6379/").stdout
        assert "valkey" in out
        # whatever FORWARD's policy: every network is inside the pool the harness accepts
        subnets = docker_engine.run("network", "inspect", "--format",
                                    "{{range .IPAM.Config}}{{.Subnet}} {{end}}", "bridge", "harness-net").stdout.split()
        assert subnets and all(ipaddress.ip_network(s).subnet_of(ipaddress.ip_network(forward.POOL)) for s in subnets)
        assert docker_engine.forward.added == (docker_engine.forward.policy not in ("ACCEPT", None))
    finally:
        docker_engine.run("rm", "-f", "harness-web", check=False)
        docker_engine.run("network", "rm", "harness-net", check=False)


# -------------------------------------------------------------- registry


def test_registry_serves_tags(registry, standins):
    for tag, images in STANDIN_TAGS.items():
        for img in SIRIUS_IMAGES:
            d = registry.digest(f"siriusscan/{img}", tag)
            assert (d is not None) == (img in images), (img, tag, d)
    dg = standins.digest
    assert dg("sirius-api", TAG_V2) == dg("sirius-api", TAG_V1)
    for img in SIRIUS_IMAGES:
        if img != "sirius-ui":
            assert dg(img, TAG_V2) == dg(img, TAG_V1), img
            assert dg(img, TAG_BROKEN) == dg(img, TAG_V1), img
    assert dg("sirius-ui", TAG_V2) != dg("sirius-ui", TAG_V1)
    assert dg("sirius-ui", TAG_BROKEN) != dg("sirius-ui", TAG_V1)
    assert registry.digest("siriusscan/sirius-postgres", TAG_PR) is None
    assert dg("sirius-api", TAG_PR) != dg("sirius-api", TAG_V1)
    assert sorted(registry.tags("siriusscan/sirius-ui")) == sorted(STANDIN_TAGS)
    assert TAG_PR not in registry.tags("siriusscan/sirius-engine")


def test_registry_stop_and_start(docker_engine, registry, standins, clean_project):
    before = standins.digest("sirius-ui", TAG_V1)
    ref = standins.image("sirius-ui", TAG_V1)
    registry.stop()
    r = docker_engine.run("pull", ref, check=False, timeout=60)
    assert r.returncode != 0
    registry.start()
    assert registry.digest("siriusscan/sirius-ui", TAG_V1) == before
    docker_engine.run("pull", ref, timeout=60)


def test_pull_by_digest_and_version_marker(docker_engine, standins, no_sirius_images):
    ref = standins.image_by_digest("sirius-ui", TAG_V2)
    docker_engine.run("pull", ref, timeout=60)
    out = docker_engine.run("run", "--rm", "--entrypoint", "cat", ref,
                            "/etc/sirius-standin/version").stdout
    assert out.strip() == "v2"


# ---------------------------------------------------------- fixture repo


def test_sirius_repo_shape(sirius_repo, sirius_checkout, docker_engine, registry):
    refs = subprocess.run(["git", "ls-remote", sirius_repo], capture_output=True, text=True,
                          check=True).stdout
    for ref in ("refs/heads/main", "refs/heads/demo", "refs/tags/v1.1.0", "refs/pull/7/head"):
        assert ref in refs
    text = (sirius_checkout / "docker-compose.yaml").read_text()
    for svc, img in SERVICE_IMAGES.items():
        assert f"image: {registry.host}/siriusscan/{img}:${{IMAGE_TAG:-latest}}" in text
    assert (sirius_checkout / "rabbitmq" / "rabbitmq.conf").is_file()
    assert (sirius_checkout / "secrets" / ".gitkeep").is_file()
    # compose refuses to start without the required variables
    r = docker_engine.compose("config", "-q", project_dir=sirius_checkout, check=False)
    assert r.returncode != 0 and "POSTGRES_PASSWORD is required" in r.stderr
    write_runtime_files(sirius_checkout)
    cfg = json.loads(docker_engine.compose("config", "--format", "json",
                                           project_dir=sirius_checkout).stdout)
    assert cfg["name"] == "sirius"
    for svc in cfg["services"].values():  # published on every address, as upstream does
        for p in svc.get("ports", []):
            assert not p.get("host_ip"), p
    compose_files(sirius_checkout)
    cfg = json.loads(docker_engine.compose("config", "--format", "json", project_dir=sirius_checkout,
                                           files=COMPOSE_FILES[:2]).stdout)
    for svc in cfg["services"].values():  # ... unless the loopback override re-binds them
        for p in svc.get("ports", []):
            assert p["host_ip"] == "127.0.0.1", p
    for name in (LOOPBACK_OVERRIDE, FAST_HEALTH_OVERRIDE):
        (sirius_checkout / name).unlink()
    # .env and the key are ignored by git
    st = subprocess.run(["git", "status", "--porcelain"], cwd=sirius_checkout,
                        capture_output=True, text=True, check=True).stdout
    assert st == ""


# ------------------------------------------------------------ compose up


def test_compose_up_v1_from_registry(docker_engine, registry, standins, sirius_checkout,
                                     no_sirius_images):
    env = _deploy_files(sirius_checkout, registry, TAG_V1)
    docker_engine.compose("up", "-d", "--wait", project_dir=sirius_checkout,
                          files=COMPOSE_FILES, timeout=180)
    _, body = wait_http("http://127.0.0.1:9001/health", timeout=10)
    health = json.loads(body)
    assert health["status"] == "healthy"
    assert health["standin_build"] == "v1"
    code, page = wait_http("http://127.0.0.1:3000/", timeout=10)
    assert b"<title>Sirius Scan</title>" in page
    assert b'id="database">ok<' in page
    assert _state(docker_engine, "sirius-migrate")["ExitCode"] == 0
    # the API key protects everything but /health
    wait_http("http://127.0.0.1:9001/api/v1/system/health", timeout=5, status=401)
    _, body = wait_http("http://127.0.0.1:9001/api/v1/system/health", timeout=10,
                        headers={"X-API-Key": env["SIRIUS_API_KEY"]})
    services = json.loads(body)["services"]
    assert {s["status"] for s in services.values()} == {"up"}, services
    key = {"X-API-Key": env["SIRIUS_API_KEY"], "Content-Type": "application/json"}
    code, _, _ = http_request("http://127.0.0.1:9001/host", "POST", b'{"ip":"192.0.2.10"}', key)
    assert code == 200
    code, _, body = http_request("http://127.0.0.1:9001/host", headers=key)
    assert code == 200 and [h["ip"] for h in json.loads(body)] == ["192.0.2.10"]
    # images really came from the test registry, ports only on 127.0.0.1
    for svc, img in SERVICE_IMAGES.items():
        assert docker_engine.run("inspect", "--format", "{{.Config.Image}}", svc).stdout.strip() \
            == standins.image(img, TAG_V1)
    ports = docker_engine.run("port", "sirius-ui").stdout.split()
    assert ports and all(p.startswith("127.0.0.1:") for p in ports if ":" in p)


def test_api_exits_without_readable_key(docker_engine, registry, standins, sirius_checkout,
                                        clean_project):
    # image run without the secret mounted (as with an old compose file)
    api = standins.image("sirius-api", TAG_V1)
    docker_engine.run("pull", api, timeout=60)
    r = docker_engine.run("run", "--rm", api, check=False, timeout=60)
    assert r.returncode != 0
    assert "internal API key file is missing: /run/secrets/sirius_api_key" in r.stdout + r.stderr
    # key file written 0600 by root: uid 1001 cannot read it
    _deploy_files(sirius_checkout, registry, TAG_V1, key_mode=0o600)
    r = docker_engine.compose("up", "-d", "--wait", "--wait-timeout", "30",
                              project_dir=sirius_checkout, files=COMPOSE_FILES,
                              check=False, timeout=180)
    assert r.returncode != 0
    logs = docker_engine.run("logs", "sirius-api")
    logs = logs.stdout + logs.stderr
    assert "not readable by uid 1001" in logs
    assert _state(docker_engine, "sirius-api")["Health"]["Status"] != "healthy"


def test_broken_tag_never_healthy(docker_engine, registry, standins, sirius_checkout,
                                  clean_project):
    _deploy_files(sirius_checkout, registry, TAG_BROKEN)
    r = docker_engine.compose("up", "-d", "--wait", "--wait-timeout", "30",
                              project_dir=sirius_checkout, files=COMPOSE_FILES,
                              check=False, timeout=180)
    assert r.returncode != 0
    st = _state(docker_engine, "sirius-ui")
    # failures in the start period (120 s with the override) leave it "starting"
    assert st["Running"] and st["Health"]["Status"] in ("starting", "unhealthy")
    assert st["Health"]["Log"] and all(entry["ExitCode"] != 0 for entry in st["Health"]["Log"])
    wait_http("http://127.0.0.1:9001/health", timeout=10)


def test_compose_build_one_service(docker_engine, sirius_checkout, clean_project):
    files = ["docker-compose.yaml", "docker-compose.build.yaml"]
    write_runtime_files(sirius_checkout)
    docker_engine.compose("build", "sirius-api", project_dir=sirius_checkout, files=files,
                          timeout=300)
    out = docker_engine.run("run", "--rm", "--entrypoint", "cat", "sirius-sirius-api:source",
                            "/etc/sirius-standin/version").stdout
    assert out.strip() == "source"
    with pytest.raises(DockerCommandError):
        docker_engine.run("image", "inspect", "sirius-sirius-ui:source")
