"""The commands that run on a host, built as argument lists (the Kamal way).

user_data, the remote commands and the local rehearsal all call the same host
engine (engine/, shipped as a zipapp) through these builders, so a flag is spelled
in one place. Every value is
validated before it gets here; `shlex.join` quotes it for the shell.
"""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Any

import engine
from engine import rules, settings
from engine.settings import Settings

if TYPE_CHECKING:
    from infra.config import DemoConfig

ENGINE = "/opt/sirius-demo/engine.pyz"
BOOT_ENGINE = "/opt/sirius-demo/boot.pyz"  # what user_data writes: the boot part of the engine
PROJECT_DIR = settings.PROJECT_DIR
STATE_DIR = settings.STATE_DIR
BOOTSTRAP_LOG = engine.BOOTSTRAP_LOG


def settings_for(config: DemoConfig, host: str, **overrides: Any) -> Settings:
    """The deploy on the host: what the stack config sets (`config.engine_settings`, by the
    engine's own table of Pulumi.yaml keys), the host's address, then `overrides` (from the
    preflight: per-image tags, digests and the commit to run exactly; the rehearsal's paths).
    A per-image tag equal to the tag of every image is left out. Settings validates every value
    with the engine's rules: nothing unsafe reaches a command line."""
    values = {**config.engine_settings, "public_host": host, **overrides}
    tag = values.get("image_tag", settings.default_of("image_tag"))
    values["image_tags"] = {image: t for image, t in dict(values.get("image_tags") or {}).items() if t != tag}
    values["image_digests"] = dict(values.get("image_digests") or {})
    return Settings(**values)


def engine_argv(command: str, engine: str = ENGINE) -> list[str]:
    return ["python3", engine, command]


def deploy_argv(spec: Settings, engine: str = ENGINE) -> list[str]:
    """The engine's deploy (settings.to_args: the flags the engine's own table declares)."""
    return [*engine_argv("deploy", engine), *settings.to_args(spec)]


def reset_argv(state_dir: str = STATE_DIR, engine: str = ENGINE) -> list[str]:
    """The demo as new: the host's last healthy deploy's settings again, on fresh data (docs/reset.md)."""
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


def health_argv(spec: Settings, engine: str = ENGINE) -> list[str]:
    return [*engine_argv("health", engine), "--state-dir", spec.state_dir]


def wait_boot_argv(spec: Settings, timeout: int) -> list[str]:
    """Runs wait-boot.sh, sent on stdin: it must work before user_data unpacked anything."""
    return sudo(["bash", "-s", "--", "--state-dir", spec.state_dir, "--log", BOOTSTRAP_LOG, "--timeout", str(timeout)])


def install_engine(engine: str = ENGINE) -> str:
    """Replace the host's engine with the zipapp on stdin (base64), atomically. pipefail: a
    truncated or garbled upload fails in base64, and the old engine stays."""
    staged = f"{engine}.new"
    return "set -o pipefail && " + pipe(["base64", "-d"], ["sudo", "dd", f"of={staged}", "status=none"]) + " && " + shell(
        ["sudo", "mv", "-f", staged, engine])


def read_admin_password(spec: Settings) -> list[str]:
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
