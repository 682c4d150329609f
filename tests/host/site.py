"""A deploy site for the real-Docker tests: one test's project and state dirs, the
engine's deploy and health run as the host runs them (the same zipapp, the same
command lines), and what the containers really are."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from engine.settings import Settings
from infra import bootstrap, commands

SECRET_KEYS = ("POSTGRES_PASSWORD", "NEXTAUTH_SECRET", "INITIAL_ADMIN_PASSWORD")


@dataclass
class Deploy:
    code: int
    report: dict
    stdout: str
    stderr: str
    seconds: float


class Site:
    def __init__(self, root: Path, engine, registry, repo_url: str):
        self.engine = engine
        self.zipapp = root / "engine.pyz"
        self.zipapp.write_bytes(bootstrap.engine_archive())
        self.registry = registry
        self.repo_url = repo_url
        self.project = root / "sirius"
        self.state = root / "state"

    def spec(self, tag: str, ref: str = "main", **overrides) -> Settings:
        values = dict(
            repo_url=self.repo_url, ref=ref, git_ref=ref, image_tag=tag, public_host="127.0.0.1",
            health_timeout=90, registry=f"{self.registry.host}/siriusscan", project_dir=str(self.project),
            state_dir=str(self.state), pull_attempts=2, pull_delay=1, min_free_gb=1, bind_address="127.0.0.1",
            firewall=False,  # the test Engine has no DOCKER-USER; test_firewall.py names a chain of its own
        )
        values.update(overrides)
        return Settings(**values)

    def deploy(self, tag: str, ref: str = "main", env: dict | None = None, **overrides) -> Deploy:
        argv = commands.deploy_argv(self.spec(tag, ref, **overrides), engine=str(self.zipapp))
        started = time.monotonic()
        result = subprocess.run(argv, capture_output=True, text=True, env=env or self.engine.env, timeout=600)
        seconds = time.monotonic() - started
        report = json.loads(result.stdout.strip().splitlines()[-1])
        return Deploy(result.returncode, report, result.stdout, result.stderr, seconds)

    def reset(self, *flags: str, env: dict | None = None) -> Deploy:
        """`engine reset` as the host runs it (the last deploy's settings), plus `flags`."""
        argv = [*commands.reset_argv(str(self.state), engine=str(self.zipapp)), *flags]
        started = time.monotonic()
        result = subprocess.run(argv, capture_output=True, text=True, env=env or self.engine.env, timeout=600)
        seconds = time.monotonic() - started
        report = json.loads(result.stdout.strip().splitlines()[-1])
        return Deploy(result.returncode, report, result.stdout, result.stderr, seconds)

    def health(self) -> tuple[int, dict]:
        argv = commands.health_argv(self.spec("v1"), engine=str(self.zipapp))
        result = subprocess.run(argv, capture_output=True, text=True, env=self.engine.env, timeout=120)
        return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])

    def containers(self) -> dict[str, dict]:
        """service -> {id, image, status, health} of the real containers."""
        ids = self.engine.run("ps", "-aq", "--filter", "label=com.docker.compose.project=sirius").stdout.split()
        if not ids:
            return {}
        found = json.loads(self.engine.run("inspect", *ids).stdout)
        return {
            c["Config"]["Labels"]["com.docker.compose.service"]: {
                "id": c["Id"], "image": c["Config"]["Image"], "status": c["State"]["Status"],
                "health": (c["State"].get("Health") or {}).get("Status"), "exit": c["State"]["ExitCode"],
            }
            for c in found
        }

    def env_file(self) -> dict[str, str]:
        lines = (self.project / ".env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))

    def secret_values(self) -> list[str]:
        env = self.env_file()
        return [env[k] for k in SECRET_KEYS] + [(self.project / "secrets" / "sirius_api_key.txt").read_text().strip()]
