"""Hostile values against the real host engine, and secrets on the real-Docker host.

The engine zipapp is run directly (argv lists, no shell in between: infra.commands
would refuse these values before they got here) with values that would run
`touch /tmp/<canary>` if any layer evaluated them. The canary must never appear; the
engine refuses the value (exit 2, the flag named) before anything runs.
`python -m tools.rehearse` refuses them with exit 2 and the config error.

Then the secrets: after a real deploy of v1, the generated secrets (.env and the API
key file) appear in no output, report, health report, log or command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import bootstrap, commands

from testbed.standins import TAG_BROKEN, TAG_V1
from .site import Site

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEYS = ("POSTGRES_PASSWORD", "NEXTAUTH_SECRET", "INITIAL_ADMIN_PASSWORD")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict | None:
        lines = self.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None


@pytest.fixture
def canary():
    path = Path(f"/tmp/sirius-canary-{uuid.uuid4().hex}")
    yield path
    created = path.exists()
    path.unlink(missing_ok=True)
    assert not created, f"a hostile value was executed: {path} was created"


class Host(Site):
    def run(self, argv: list[str], env: dict | None = None, timeout: float = 300) -> Run:
        result = subprocess.run(argv, capture_output=True, text=True, env=env or self.engine.env, timeout=timeout,
                                cwd=str(self.project.parent), check=False)
        return Run(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def clean_host(tmp_path, clean_project, registry, sirius_repo, standins):
    """For deploys that start the stack: the compose project is removed before and after."""
    return Host(tmp_path, clean_project, registry, sirius_repo)


# One value per way a shell or an option parser could be made to run it.
HOSTILE = ["$(touch {c})", "`touch {c}`", ";touch {c}", "main\ntouch {c}", "--upload-pack=touch {c}"]
FLAGS = ["--ref", "--git-ref", "--tag", "--image-tag", "--registry", "--public-host", "--repo", "--dir", "--bind-address"]


@pytest.mark.parametrize("flag", FLAGS)
def test_hostile_values_are_refused_before_anything_runs(tmp_path, canary, flag):
    engine = tmp_path / "engine.pyz"
    engine.write_bytes(bootstrap.engine_archive())
    for template in HOSTILE:
        value = template.format(c=canary)
        if flag == "--image-tag":
            value = f"sirius-ui={value}"
        argv = [*commands.engine_argv("deploy", str(engine)), "--state-dir", str(tmp_path / "state"), f"{flag}={value}"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and flag in result.stderr, (value, result.stderr)
        assert not (tmp_path / "state").exists()  # refused before the engine touched anything


# --- the rehearsal CLI ------------------------------------------------------------------

REHEARSE_CASES = [
    ("--ref", "$(touch {c})", "--ref:"),
    ("--ref", "`touch {c}`", "--ref:"),
    ("--ref", ";touch {c}", "--ref:"),
    ("--ref", "main\ntouch {c}", "--ref:"),
    ("--ref", "-main", "--ref:"),
    ("--tag", "$(touch {c})", "--tag:"),
    ("--registry", "ghcr.io/$(touch {c})", "--registry:"),
    ("--repo", "ext::sh -c touch% {c}", "--repo:"),
]


@pytest.mark.parametrize(("flag", "template", "key"), REHEARSE_CASES)
def test_rehearse_refuses_with_the_config_error(tmp_path, canary, flag, template, key):
    value = template.format(c=canary)
    result = subprocess.run([sys.executable, "-m", "tools.rehearse", f"{flag}={value}", "--home", str(tmp_path / "h")],
                            capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "invalid flags" in result.stderr and key in result.stderr and "sirius-demo:" not in result.stderr
    assert not (tmp_path / "h").exists()


# --- no generated secret in any output -----------------------------------------------------


def secret_values(project: Path) -> list[str]:
    env = dict(line.split("=", 1) for line in (project / ".env").read_text().splitlines()
               if "=" in line and not line.startswith("#"))
    values = [env[k] for k in SECRET_KEYS] + [(project / "secrets" / "sirius_api_key.txt").read_text().strip()]
    assert all(len(v) >= 24 for v in values)
    return values


def test_no_secret_in_outputs_reports_logs_or_commands(clean_host, no_sirius_images, tmp_path):
    host = clean_host
    spec = host.spec(TAG_V1, health_timeout=120)
    deploy = host.run(commands.deploy_argv(spec, engine=str(host.zipapp)))
    assert deploy.code == 0, deploy.stderr
    assert deploy.report["status"] == "healthy"
    secrets = secret_values(host.project)

    health = host.run(commands.health_argv(spec, engine=str(host.zipapp)))
    assert health.code == 0, health.stderr

    again = host.run(commands.deploy_argv(spec, engine=str(host.zipapp)))
    assert again.code == 0 and secret_values(host.project) == secrets  # kept across deploys

    # An unhealthy deploy prints diagnostics (service logs, compose ps, health check
    # output): redacted, while the services' own logs do print secrets.
    broken = host.run(commands.deploy_argv(host.spec(TAG_BROKEN, health_timeout=15), engine=str(host.zipapp)))
    assert broken.code == 1 and "=== diagnostics" in broken.stderr

    outputs = {
        "deploy stdout": deploy.stdout, "deploy stderr": deploy.stderr,
        "health stdout": health.stdout, "health stderr": health.stderr,
        "second deploy stdout": again.stdout, "second deploy stderr": again.stderr,
        "broken deploy stdout": broken.stdout, "broken deploy stderr": broken.stderr,
    }
    for name in sorted(os.listdir(host.state)):
        path = host.state / name
        if name == "last-healthy.json":  # the rollback record holds .env, secrets and all, as .env does
            assert oct(path.stat().st_mode & 0o777) == "0o600"
        elif path.is_file() and name != "deploy.lock":
            outputs[f"state/{name}"] = path.read_text(errors="replace")
    outputs["commands"] = "\n".join([
        commands.shell(commands.sudo(commands.deploy_argv(spec))), commands.shell(commands.bootstrap_argv()),
        commands.shell(commands.sudo(commands.health_argv(spec))), commands.shell(commands.wait_boot_argv(spec, 60)),
        commands.shell(commands.read_admin_password(spec)), commands.install_engine(),
        bootstrap.render_user_data(),
    ])
    for where, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"a generated secret appears in {where}"
    # The one command meant to read the admin password does read it (so the check above is not vacuous).
    read = host.run(commands.read_admin_password(spec)[1:])
    assert read.stdout.strip() == secrets[2]
