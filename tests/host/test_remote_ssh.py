"""The program's own remote commands, run over real SSH against this machine.

The user_data and the command strings come from __main__.py under mocks (the very
strings pulumi-command would send); this machine plays the instance: the user_data
runs for real (the boot engine's OS setup), then each command goes through a private
sshd on 127.0.0.1 with its stdin, in the order the program chains them: the first
deploy is the remote one. The instance paths are the real ones
(/opt/sirius-demo, /opt/sirius, /var/lib/sirius-demo): the test refuses to run if
they exist and removes them afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from infra import commands, remote
from tests.pulumi_mocks import run_stack

from testbed.sshd import SshHost
from testbed.standins import SIRIUS_IMAGES, TAG_BROKEN, TAG_V1, TAG_V2

HOST_PATHS = (Path(commands.ENGINE).parent, Path(commands.PROJECT_DIR), Path(commands.STATE_DIR))
ORDER = ("wait-boot", "engine", "deploy", "health", "admin-password")


@pytest.fixture
def instance_paths():
    existing = [str(p) for p in HOST_PATHS if p.exists()]
    if existing:
        pytest.fail(f"refusing to overwrite {', '.join(existing)}: remove them or run on a scratch machine")
    yield
    for path in HOST_PATHS:
        shutil.rmtree(path, ignore_errors=True)
    Path(commands.BOOTSTRAP_LOG).unlink(missing_ok=True)


@pytest.fixture
def ssh_host(clean_project, instance_paths):
    with SshHost(clean_project.env) as host:
        yield host


def program(registry, repo_url: str, tag: str, health_timeout: int = 120, preflight: bool = False):
    run = run_stack({"ref": "main", "imageTag": tag, "repoUrl": repo_url, "imageRegistry": f"{registry.host}/siriusscan",
                     "healthTimeout": str(health_timeout), "sshCidrs": "198.51.100.7/32",
                     "preflight": str(preflight).lower()})
    cmds = {r.name.removeprefix("sirius-"): r.inputs for r in run.of_type("command:remote:Command")}
    user_data = run.one("aws:ec2/instance:Instance").inputs["userData"]
    return user_data, cmds


def boot(engine, user_data: str) -> None:
    result = subprocess.run(["bash", "-c", user_data], env=engine.env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, Path(commands.BOOTSTRAP_LOG).read_text()[-3000:]


def run_command(host: SshHost, command: dict) -> subprocess.CompletedProcess:
    line = command["create"]
    if f"{commands.ENGINE} deploy " in line:
        # This machine's test Engine runs without Docker's iptables, so there is no DOCKER-USER
        # for the scanner's fence (tests/host/test_firewall.py builds one of its own); the
        # program's command itself always fences (tests/test_commands.py).
        line += " --no-firewall"
    return host.run(line, stdin=command.get("stdin"))


def git_head(repo_url: str) -> str:
    return subprocess.run(["git", "ls-remote", repo_url, "refs/heads/main"], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def containers(engine) -> dict[str, str]:
    ids = engine.run("ps", "-aq", "--filter", "label=com.docker.compose.project=sirius").stdout.split()
    if not ids:
        return {}
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c["Id"] for c in json.loads(engine.run("inspect", *ids).stdout)}


def test_boot_then_remote_chain_then_in_place_tag_change(ssh_host, no_sirius_images, clean_project, registry,
                                                          sirius_repo, standins):
    engine = clean_project
    user_data, cmds = program(registry, sirius_repo, TAG_V1, preflight=True)
    boot(engine, user_data)
    assert containers(engine) == {}  # the boot sets the OS up and pulls; the first deploy is the remote one

    outputs = {}
    for name in ORDER:
        result = run_command(ssh_host, cmds[name])
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
        outputs[name] = result.stdout

    booted = last_json(outputs["wait-boot"])
    assert booted["status"] == "booted", Path(commands.BOOTSTRAP_LOG).read_text()[-4000:]
    # user_data named the first deploy's ref, tag and images (by the digests the preflight saw);
    # the boot pulled them, so the first deploy pulled nothing.
    assert booted["firstDeploy"] == {"ref": "main", "imageTag": TAG_V1}
    assert booted["prepull"] == {f"{registry.host}/siriusscan/{image}@{standins.digest(image, TAG_V1)}": "pulled"
                                 for image in SIRIUS_IMAGES}
    report = last_json(outputs["deploy"])
    assert report["status"] == "healthy" and report["imageTag"] == TAG_V1
    assert report["pullRounds"] == 0 and report["commit"] == git_head(sirius_repo)
    assert all(s["recreated"] for s in report["services"].values())
    assert report["phases"]["install"] == booted["phases"]["install"]
    first = containers(engine)
    health = last_json(outputs["health"])
    assert health["status"] == "healthy" and health["digests"]["sirius-ui"] == standins.digest("sirius-ui", TAG_V1)
    env = dict(line.split("=", 1) for line in Path(commands.PROJECT_DIR, ".env").read_text().splitlines() if "=" in line)
    assert outputs["admin-password"].strip() == env["INITIAL_ADMIN_PASSWORD"]
    for name in ("wait-boot", "deploy", "health"):
        assert env["INITIAL_ADMIN_PASSWORD"] not in outputs[name]

    # A new tag: the program's new deploy command, in place, only the UI recreated.
    _, new_cmds = program(registry, sirius_repo, TAG_V2, preflight=True)
    assert new_cmds["wait-boot"] == cmds["wait-boot"] and new_cmds["deploy"] != cmds["deploy"]
    result = run_command(ssh_host, new_cmds["deploy"])
    assert result.returncode == 0, result.stderr[-3000:]
    upgraded = last_json(result.stdout)
    assert {s for s, e in upgraded["services"].items() if e["recreated"]} == {"sirius-ui"}
    after = containers(engine)
    assert {s for s in after if after[s] != first[s]} == {"sirius-ui"}


def test_remote_deploy_of_an_unhealthy_tag_fails_with_diagnostics(ssh_host, clean_project, registry, sirius_repo,
                                                                   standins):
    user_data, _ = program(registry, sirius_repo, TAG_V1, health_timeout=60)
    boot(clean_project, user_data)
    _, broken = program(registry, sirius_repo, TAG_BROKEN, health_timeout=60)
    for name in ("wait-boot", "engine"):
        assert run_command(ssh_host, broken[name]).returncode == 0
    result = run_command(ssh_host, broken["deploy"])
    assert result.returncode == 1
    assert "=== diagnostics" in result.stderr and "--- sirius-ui:" in result.stderr
    report = last_json(result.stdout)
    assert report["status"] == "unhealthy" and report["unhealthy"] == ["sirius-ui"]
    health = run_command(ssh_host, broken["health"])
    assert health.returncode != 0 and last_json(health.stdout)["status"] == "unhealthy"


def test_wait_boot_fails_with_the_log_tail_when_no_record_appears(ssh_host, registry, sirius_repo):
    _, cmds = program(registry, sirius_repo, TAG_V1)
    Path(commands.STATE_DIR).mkdir(parents=True)
    Path(commands.BOOTSTRAP_LOG).write_text("install: apt-get failed: mirror unreachable\n")
    command = dict(cmds["wait-boot"])
    command["create"] = command["create"].replace(f"--timeout {remote.BOOT_SETUP_SECONDS}", "--timeout 3")
    assert "--timeout 3" in command["create"]
    result = run_command(ssh_host, command)
    assert result.returncode == 1
    assert "no /var/lib/sirius-demo/bootstrap.json" in result.stderr and "mirror unreachable" in result.stderr
