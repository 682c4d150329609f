"""Hostile values against the real host scripts, on the real-Docker rehearsal host.

deploy.sh is run directly (argv lists, no shell in between: infra.commands.DeploySpec
would refuse most of these values before they got here) with values that would run
`touch /tmp/<canary>` if any layer evaluated them. The canary must never appear; the
deploy must refuse the value (non-zero exit, a clear error in its report) or treat it
as data. `python -m tools.rehearse` refuses them with exit 2 and the config error.

Then the secrets: after a real deploy of v1, the generated secrets (.env and the API
key file) appear in no output, report, health report, bootstrap log or command line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import bootstrap, commands

from .engine import TAG_BROKEN, TAG_V1
from .site import Site

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEYS = ("POSTGRES_PASSWORD", "NEXTAUTH_SECRET", "INITIAL_ADMIN_PASSWORD")
DEPLOY = str(bootstrap.HOST_DIR / "deploy.sh")
HUGE_DISK = "10000000"  # --min-free-gb that no machine has: stops a deploy right after validation


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


@pytest.fixture(scope="module")
def repo_without_builds(sirius_repo):
    """The fixture repo minus docker-compose.build.yaml: a deploy whose images cannot be
    pulled stops right after the pull ("no image ... and no docker-compose.build.yaml")
    instead of building six images."""
    work = Path(tempfile.mkdtemp(prefix="sdh-", dir="/tmp"))
    try:
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        subprocess.run([*git, "clone", "-q", sirius_repo, str(work / "w")], check=True)
        subprocess.run([*git, "-C", str(work / "w"), "rm", "-q", "docker-compose.build.yaml"], check=True)
        subprocess.run([*git, "-C", str(work / "w"), "commit", "-q", "-m", "no builds"], check=True)
        subprocess.run([*git, "clone", "-q", "--bare", str(work / "w"), str(work / "nobuild.git")], check=True)
        yield (work / "nobuild.git").as_uri()
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Host(Site):
    """A Site whose deploys try each pull once, and deploy.sh run with edited argv lists."""

    def spec(self, tag: str = TAG_V1, ref: str = "main", **overrides) -> commands.DeploySpec:
        return super().spec(tag, ref, **{"pull_attempts": 1, **overrides})

    def argv(self, replace: dict[str, str] | None = None, drop: tuple[str, ...] = (), add: tuple[str, ...] = (),
             **spec_overrides) -> list[str]:
        """deploy.sh's argv from a valid spec, with flags' values replaced, flags dropped or added."""
        argv = commands.deploy_argv(self.spec(**spec_overrides), bin_dir=str(bootstrap.HOST_DIR))
        out = [argv[0]]
        pairs = list(zip(argv[1::2], argv[2::2], strict=True))
        for flag, value in pairs:
            if flag in drop:
                continue
            out += [flag, (replace or {}).get(flag, value)]
        return out + list(add)

    def run(self, argv: list[str], env: dict | None = None, timeout: float = 300) -> Run:
        result = subprocess.run(argv, capture_output=True, text=True, env=env or self.engine.env, timeout=timeout,
                                cwd=str(self.project.parent), check=False)
        return Run(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def host(tmp_path, docker_engine, registry, sirius_repo, standins):
    """For deploys that stop before `docker compose up` (validation, pre-checks, pulls): no
    containers to clean up. The engine's env is used even so: a value that slipped through
    must meet the private dockerd, never the machine's own."""
    return Host(tmp_path, docker_engine, registry, sirius_repo)


@pytest.fixture
def clean_host(tmp_path, clean_project, registry, sirius_repo, standins):
    """For deploys that start the stack: the compose project is removed before and after."""
    return Host(tmp_path, clean_project, registry, sirius_repo)


def hostile_values(canary: Path) -> dict[str, str]:
    return {
        "command-substitution": f"$(touch {canary})",
        "backticks": f"`touch {canary}`",
        "semicolon": f";touch {canary}",
        "newline": f"main\ntouch {canary}",
        "leading-dash": f"--upload-pack=touch {canary}",
        "and": f"main&&touch {canary}",
        "pipe": f"main|touch {canary}",
    }


KINDS = ("command-substitution", "backticks", "semicolon", "newline", "leading-dash", "and", "pipe")


def assert_refused(run: Run, *fragments: str) -> None:
    assert run.code != 0, run.stderr
    report = run.report
    assert report is not None and report["status"] == "failed", run.stdout
    for fragment in fragments:
        assert fragment in report["error"], report["error"]
    assert report["phases"]["pull"] == 0


# --- values that deploy.sh validates: refused before anything runs -------------------


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_ref_is_refused(host, canary, kind):
    value = hostile_values(canary)[kind]
    # Without --git-ref, the ref is what git fetches: validated as a git ref.
    run = host.run(host.argv({"--ref": value}, drop=("--git-ref",)))
    assert_refused(run, "is not a git ref")


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_git_ref_is_refused(host, canary, kind):
    run = host.run(host.argv({"--git-ref": hostile_values(canary)[kind]}))
    assert_refused(run, "is not a git ref")


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_tag_is_refused(host, canary, kind):
    run = host.run(host.argv({"--tag": hostile_values(canary)[kind]}))
    assert_refused(run, "is not a Docker tag")


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_image_tag_is_refused(host, canary, kind):
    run = host.run(host.argv(add=("--image-tag", f"sirius-ui={hostile_values(canary)[kind]}")))
    assert_refused(run, "--image-tag sirius-ui: not a Docker tag")


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_display_ref_is_only_data(host, canary, kind):
    """The display --ref (with a valid --git-ref) is not validated, and need not be: it is
    data (a report field)."""
    value = hostile_values(canary)[kind]
    run = host.run(host.argv({"--ref": value, "--min-free-gb": HUGE_DISK}))
    assert run.code == 1
    assert run.report["ref"] == value  # kept verbatim, as JSON data
    assert "GiB free under" in run.report["error"]  # stopped by the disk pre-check, after validation


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_image_names_are_refused(host, canary, kind):
    name = hostile_values(canary)[kind].replace("=", "")  # NAME=TAG splits at the first '='
    run = host.run(host.argv(add=("--image-tag", f"{name}=v1")))
    assert_refused(run, "is not an image name")


@pytest.mark.parametrize("value_of", [lambda c: f"$(touch {c})", lambda c: f"`touch {c}`", lambda c: f";touch {c}",
                                      lambda c: f"-x;touch {c}"])
def test_hostile_registry_is_refused(host, canary, value_of):
    run = host.run(host.argv({"--registry": value_of(canary)}))
    assert_refused(run, "is not a registry/namespace")


def test_registry_cannot_inject_compose_keys(host, canary, repo_without_builds):
    """A registry that closes the quotes of the compose override's `image: "..."` line and adds
    keys (a host mount and a command writing the canary) never reaches compose: refused first."""
    host.repo_url = repo_without_builds
    registry = (f'{host.registry.host}/siriusscan/sirius-api:{TAG_V1}"\n    volumes: ["/tmp:/hosttmp"]\n'
                f'    command: ["touch", "/hosttmp/{canary.name}"]\n    x-pad: "')
    run = host.run(host.argv({"--registry": registry, "--health-timeout": "20"}))
    assert_refused(run, "is not a registry/namespace")
    assert not (host.state / "compose.run.yaml").exists()


def test_public_host_cannot_inject_env_lines(host, repo_without_builds):
    host.repo_url = repo_without_builds
    # A tag that does not exist: the deploy stops after the pull, before starting anything.
    run = host.run(host.argv({"--public-host": "127.0.0.1\nPOSTGRES_PASSWORD=chosen-by-attacker"}, tag="nosuchtag"))
    env = (host.project / ".env").read_text() if (host.project / ".env").exists() else ""
    assert "POSTGRES_PASSWORD=chosen-by-attacker" not in env
    assert run.code != 0 and "public-host" in (run.report or {}).get("error", "")


@pytest.mark.parametrize("repo_of", [lambda c: f"ext::sh -c touch% {c}", lambda c: f"--upload-pack=touch {c}",
                                     lambda c: f"-u$(touch {c})"])
def test_hostile_repo_is_refused_by_git(host, canary, repo_of):
    run = host.run(host.argv({"--repo": repo_of(canary)}))
    assert run.code != 0
    assert run.report["status"] == "failed" and run.report["phases"]["pull"] == 0


def test_option_parsing_is_data_not_options(host, canary):
    """A value that looks like the next flag is still taken as the value."""
    run = host.run(host.argv({"--tag": "--help"}))
    assert_refused(run, "'--help' is not a Docker tag")


# --- the rehearsal CLI ------------------------------------------------------------------

REHEARSE_CASES = [
    ("--ref", "$(touch {c})", "sirius-demo:ref:"),
    ("--ref", "`touch {c}`", "sirius-demo:ref:"),
    ("--ref", ";touch {c}", "sirius-demo:ref:"),
    ("--ref", "main\ntouch {c}", "sirius-demo:ref:"),
    ("--ref", "-main", "sirius-demo:ref:"),
    ("--tag", "$(touch {c})", "sirius-demo:imageTag:"),
    ("--registry", "ghcr.io/$(touch {c})", "sirius-demo:imageRegistry:"),
    ("--repo", "ext::sh -c touch% {c}", "sirius-demo:repoUrl:"),
]


@pytest.mark.parametrize(("flag", "template", "key"), REHEARSE_CASES)
def test_rehearse_refuses_with_the_config_error(tmp_path, canary, flag, template, key):
    value = template.format(c=canary)
    result = subprocess.run([sys.executable, "-m", "tools.rehearse", f"{flag}={value}", "--home", str(tmp_path / "h")],
                            capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "invalid stack configuration" in result.stderr and key in result.stderr
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
    deploy = host.run(commands.deploy_argv(spec, bin_dir=str(bootstrap.HOST_DIR)))
    assert deploy.code == 0, deploy.stderr
    assert deploy.report["status"] == "healthy"
    secrets = secret_values(host.project)

    health = host.run(commands.health_argv(spec, bin_dir=str(bootstrap.HOST_DIR)))
    assert health.code == 0, health.stderr

    log = tmp_path / "bootstrap.log"
    boot = host.run(commands.bootstrap_argv(spec, bin_dir=str(bootstrap.HOST_DIR)),
                    env={**host.engine.env, "SIRIUS_BOOTSTRAP_LOG": str(log)})
    assert boot.code == 0, log.read_text()[-3000:]
    assert secret_values(host.project) == secrets  # kept across deploys

    # An unhealthy deploy prints diagnostics (service logs, compose ps): redacted.
    broken = host.run(commands.deploy_argv(host.spec(TAG_BROKEN, health_timeout=15), bin_dir=str(bootstrap.HOST_DIR)))
    assert broken.code == 1 and "=== diagnostics" in broken.stderr

    outputs = {
        "deploy stdout": deploy.stdout, "deploy stderr": deploy.stderr,
        "health stdout": health.stdout, "health stderr": health.stderr,
        "bootstrap stdout": boot.stdout, "bootstrap stderr": boot.stderr, "bootstrap log": log.read_text(),
        "broken deploy stdout": broken.stdout, "broken deploy stderr": broken.stderr,
        "deploy.json": (host.state / "deploy.json").read_text(),
        "bootstrap.json": (host.state / "bootstrap.json").read_text(),
    }
    for name in sorted(os.listdir(host.state)):
        path = host.state / name
        if path.is_file() and name != "deploy.lock":
            outputs[f"state/{name}"] = path.read_text(errors="replace")
    outputs["commands"] = "\n".join([
        commands.shell(commands.sudo(commands.deploy_argv(spec))), commands.shell(commands.bootstrap_argv(spec)),
        commands.shell(commands.sudo(commands.health_argv(spec))), commands.shell(commands.wait_boot_argv(spec, 60)),
        commands.shell(commands.read_admin_password(spec)), commands.install_engine(),
        bootstrap.render_user_data(spec),
    ])
    for where, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"a generated secret appears in {where}"
    # The one command meant to read the admin password does read it (so the check above is not vacuous).
    read = host.run(commands.read_admin_password(spec)[1:])
    assert read.stdout.strip() == secrets[2]
