"""The commands that run on a host, built as argument lists (the Kamal way).

user_data, the remote commands and the local rehearsal all call the same host
scripts through these builders, so a flag is spelled in one place. Every value is
validated before it gets here; `shlex.join` quotes it for the shell.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine import rules

HOST_BIN = "/opt/sirius-demo/bin"
PROJECT_DIR = "/opt/sirius"
STATE_DIR = "/var/lib/sirius-demo"
DEFAULT_REGISTRY = "ghcr.io/siriusscan"
BOOTSTRAP_LOG = "/var/log/sirius-bootstrap.log"

REGISTRY_PATTERN = rules.REGISTRY_PATTERN
_PATH = re.compile(r"/[A-Za-z0-9._/-]*")


@dataclass(frozen=True)
class DeploySpec:
    """Everything one deploy of the stack needs to know."""

    repo_url: str
    ref: str
    git_ref: str
    image_tag: str
    public_host: str
    health_timeout: int
    image_tags: Mapping[str, str] = field(default_factory=dict)  # per image name, e.g. sirius-ui
    registry: str = DEFAULT_REGISTRY
    project_dir: str = PROJECT_DIR
    state_dir: str = STATE_DIR
    pull_attempts: int | None = None
    pull_delay: int | None = None
    min_free_gb: int | None = None

    def __post_init__(self) -> None:
        # A last line of defence: config.py validated these for users already.
        checks = {
            "image_tag": rules.IMAGE_TAG_PATTERN.fullmatch(self.image_tag),
            "registry": REGISTRY_PATTERN.fullmatch(self.registry),
            "project_dir": _PATH.fullmatch(self.project_dir),
            "state_dir": _PATH.fullmatch(self.state_dir),
            "public_host": rules.is_public_host(self.public_host),
        }
        for image, tag in self.image_tags.items():
            checks[f"image_tags[{image}]"] = rules.IMAGE_NAME_PATTERN.fullmatch(image) and rules.IMAGE_TAG_PATTERN.fullmatch(tag)
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"unsafe deploy values: {', '.join(bad)}")


def deploy_args(spec: DeploySpec) -> list[str]:
    """Flags of deploy.sh (and bootstrap.sh, which passes them on)."""
    args = [
        "--repo", spec.repo_url,
        "--ref", spec.ref,
        "--git-ref", spec.git_ref,
        "--tag", spec.image_tag,
        "--registry", spec.registry,
        "--public-host", spec.public_host,
        "--health-timeout", str(spec.health_timeout),
        "--dir", spec.project_dir,
        "--state-dir", spec.state_dir,
    ]  # fmt: skip
    for image, tag in sorted(spec.image_tags.items()):
        args += ["--image-tag", f"{image}={tag}"]
    for flag, value in (
        ("--pull-attempts", spec.pull_attempts),
        ("--pull-delay", spec.pull_delay),
        ("--min-free-gb", spec.min_free_gb),
    ):
        if value is not None:
            args += [flag, str(int(value))]
    return args


def deploy_argv(spec: DeploySpec, bin_dir: str = HOST_BIN) -> list[str]:
    return [f"{bin_dir}/deploy.sh", *deploy_args(spec)]


def bootstrap_argv(spec: DeploySpec, bin_dir: str = HOST_BIN) -> list[str]:
    return [f"{bin_dir}/bootstrap.sh", *deploy_args(spec)]


def health_argv(spec: DeploySpec, bin_dir: str = HOST_BIN) -> list[str]:
    return [f"{bin_dir}/health.sh", "--dir", spec.project_dir, "--state-dir", spec.state_dir]


def wait_boot_argv(spec: DeploySpec, timeout: int) -> list[str]:
    """Runs wait-boot.sh, sent on stdin: it must work before user_data unpacked anything."""
    return sudo(["bash", "-s", "--", "--state-dir", spec.state_dir, "--log", BOOTSTRAP_LOG, "--timeout", str(timeout)])


def install_engine(bin_dir: str = HOST_BIN) -> str:
    """Unpack the deploy engine (base64 .tar.gz on stdin) over the host's copy."""
    return pipe(["base64", "-d"], ["sudo", "tar", "-xzf", "-", "-C", bin_dir])


def read_admin_password(spec: DeploySpec) -> list[str]:
    """Prints INITIAL_ADMIN_PASSWORD from the host's .env: only ever run with logging off."""
    return sudo(["sed", "-n", "s/^INITIAL_ADMIN_PASSWORD=//p", f"{spec.project_dir}/.env"])


def sudo(argv: list[str]) -> list[str]:
    return ["sudo", *argv]


def shell(argv: list[str]) -> str:
    return shlex.join(argv)


def pipe(*argvs: list[str]) -> str:
    return " | ".join(shell(argv) for argv in argvs)


def report_of(stdout: str) -> dict:
    """The JSON report that deploy.sh and health.sh print as their last stdout line."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON report in the command output")
