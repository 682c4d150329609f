"""The commands that run on a host, built as argument lists (the Kamal way).

user_data, the remote commands and the local rehearsal all call the same host
engine (engine/, shipped as a zipapp) through these builders, so a flag is spelled
in one place. Every value is
validated before it gets here; `shlex.join` quotes it for the shell.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

import engine
from engine import rules, settings

ENGINE = "/opt/sirius-demo/engine.pyz"
BOOT_ENGINE = "/opt/sirius-demo/boot.pyz"  # what user_data writes: the boot part of the engine
PROJECT_DIR = settings.PROJECT_DIR
STATE_DIR = settings.STATE_DIR
DEFAULT_REGISTRY = rules.DEFAULT_REGISTRY
BOOTSTRAP_LOG = engine.BOOTSTRAP_LOG



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
    image_digests: Mapping[str, str] = field(default_factory=dict)  # what the preflight saw, per image name
    commit: str = ""  # the commit git_ref pointed at when the program ran ("" = not resolved)
    registry: str = DEFAULT_REGISTRY
    project_dir: str = PROJECT_DIR
    state_dir: str = STATE_DIR
    build_timeout: int | None = None
    bind_address: str = ""  # where the UI and API listen; "" = every address
    pull_attempts: int | None = None
    pull_delay: int | None = None
    min_free_gb: int | None = None
    rollback: bool = True
    demo_data: bool = True
    domain: str = ""  # "" = no HTTPS proxy
    acme_email: str = ""
    acme_ca: str = "production"
    scan_targets: tuple[str, ...] = ()  # CIDRs the scanner may reach beyond its stack
    firewall: bool = True  # False only on test beds whose Docker runs without iptables
    firewall_parent: str = rules.FIREWALL_PARENT

    def __post_init__(self) -> None:
        # A last line of defence, with the engine's own rules: it parses these very flags.
        try:
            settings.from_args(deploy_args(self))
        except settings.SettingsError as err:
            raise ValueError(f"unsafe deploy values: {err}") from None


def deploy_args(spec: DeploySpec) -> list[str]:
    """Flags of the engine's deploy (and bootstrap, which takes the same)."""
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
    for image, digest in sorted(spec.image_digests.items()):
        args += ["--image-digest", f"{image}={digest}"]
    if spec.commit:
        args += ["--commit", spec.commit]
    if spec.bind_address:
        args += ["--bind-address", spec.bind_address]
    if not spec.rollback:
        args.append("--no-rollback")
    if not spec.demo_data:
        args.append("--no-demo-data")
    if spec.scan_targets:
        args += ["--scan-targets", ",".join(spec.scan_targets)]
    if not spec.firewall:
        args.append("--no-firewall")
    if spec.firewall_parent != rules.FIREWALL_PARENT:
        args += ["--firewall-parent", spec.firewall_parent]
    if spec.domain:
        args += ["--domain", spec.domain, "--acme-ca", spec.acme_ca]
        if spec.acme_email:
            args += ["--acme-email", spec.acme_email]
    for flag, value in (
        ("--build-timeout", spec.build_timeout),
        ("--pull-attempts", spec.pull_attempts),
        ("--pull-delay", spec.pull_delay),
        ("--min-free-gb", spec.min_free_gb),
    ):
        if value is not None:
            args += [flag, str(int(value))]
    return args


def engine_argv(command: str, engine: str = ENGINE) -> list[str]:
    return ["python3", engine, command]


def deploy_argv(spec: DeploySpec, engine: str = ENGINE) -> list[str]:
    return [*engine_argv("deploy", engine), *deploy_args(spec)]


def reset_argv(state_dir: str = STATE_DIR, engine: str = ENGINE) -> list[str]:
    """The demo as new: the host's last deploy settings again, on fresh data (docs/reset.md)."""
    return [*engine_argv("reset", engine), "--state-dir", state_dir]


def bootstrap_argv(state_dir: str = STATE_DIR, engine: str = BOOT_ENGINE, *, ref: str = "", image_tag: str = "",
                   pulls: tuple[str, ...] = ()) -> list[str]:
    """The boot: OS setup, then a pull of the first deploy's images (`pulls`: image references,
    by digest when the preflight saw one) while Pulumi waits for SSH. `ref` and `image_tag` are
    recorded as data: the first deploy's, never re-read (later ones arrive over SSH)."""
    if (ref and rules.ref_problem(ref)) or (image_tag and not rules.IMAGE_TAG_PATTERN.fullmatch(image_tag)):
        raise ValueError(f"unsafe boot values: ref {ref!r}, tag {image_tag!r}")
    bad = [image for image in pulls if not rules.is_image_ref(image)]
    if bad:
        raise ValueError(f"unsafe boot values: image references {bad!r}; expected {rules.PROXY_IMAGE_FORM}")
    argv = [*engine_argv("bootstrap", engine), "--state-dir", state_dir]
    if ref:
        argv += ["--ref", ref, "--tag", image_tag]
    for image in pulls:
        argv += ["--pull", image]
    return argv


def health_argv(spec: DeploySpec, engine: str = ENGINE) -> list[str]:
    return [*engine_argv("health", engine), "--state-dir", spec.state_dir]


def wait_boot_argv(spec: DeploySpec, timeout: int) -> list[str]:
    """Runs wait-boot.sh, sent on stdin: it must work before user_data unpacked anything."""
    return sudo(["bash", "-s", "--", "--state-dir", spec.state_dir, "--log", BOOTSTRAP_LOG, "--timeout", str(timeout)])


def install_engine(engine: str = ENGINE) -> str:
    """Replace the host's engine with the zipapp on stdin (base64), atomically. pipefail: a
    truncated or garbled upload fails in base64, and the old engine stays."""
    staged = f"{engine}.new"
    return "set -o pipefail && " + pipe(["base64", "-d"], ["sudo", "dd", f"of={staged}", "status=none"]) + " && " + shell(
        ["sudo", "mv", "-f", staged, engine])


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
    """The JSON report that the engine's deploy and health print as their last stdout line."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON report in the command output")
