"""What the host must have before a deploy touches anything: Docker, Compose v2 recent
enough for the engine's override, git, and free disk. Each missing piece stops the deploy
with what to do about it."""

from __future__ import annotations

import os
import shutil

from engine import diskcare, override
from engine.docker import log, run
from engine.errors import DeployError


def check_tools() -> str | None:
    """DeployError for a program that is missing or too old; else why health checks keep
    upstream's intervals (None: `start_interval` works here)."""
    if not shutil.which("docker"):
        raise DeployError("docker is not installed; run the engine's install step first")
    info = run(["docker", "version", "--format", "{{.Server.APIVersion}}"], timeout=30)
    if not info.ok:
        raise DeployError("the Docker daemon is not running or not reachable at "
                          f"{os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')}; start it (systemctl start docker)")
    compose = run(["docker", "compose", "version", "--short"], timeout=30)
    if not compose.ok:
        raise DeployError("the Docker Compose v2 plugin is missing ('docker compose version' fails); "
                          "install docker-compose-plugin")
    if not shutil.which("git"):
        raise DeployError("git is not installed; run the engine's install step first")
    if override.too_old_for_override(compose.out.strip()):
        raise DeployError(f"Docker Compose {compose.out.strip()} is older than {override.MIN_COMPOSE_OVERRIDE_TEXT}, "
                          "which the engine's override needs (`!override` of ports); install docker-compose-plugin "
                          "from Docker's repository")
    why_not = override.start_interval_support(info.out.strip(), compose.out.strip())
    if why_not:
        log(f"deploy: health checks keep upstream's intervals: {why_not}")
    return why_not


def check_disk(min_free_gb: int) -> None:
    """DeployError when Docker's disk has less than `min_free_gb` GiB free, with how to free some."""
    root = diskcare.docker_root()
    free_gb = diskcare.free_gb(root)
    if free_gb < min_free_gb:
        raise DeployError(diskcare.low_disk_advice(root, free_gb, min_free_gb))
