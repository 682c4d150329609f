"""Plain ``docker compose`` on a checkout of the fixture repo, as upstream's installer leaves
it: the runtime files (.env, the API key secret), the overrides every plain ``up`` here uses
(loopback ports, fast health checks, images from the tests' registry), what compose made of
it (config, container state), and removing the project."""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .daemon import HarnessError
from .docker_engine import DockerEngine
from .fixture_compose import API_KEY_FILE, fast_health_override_yaml, loopback_override_yaml
from .standins import SERVICE_IMAGES

COMPOSE_PROJECT = "sirius"
COMPOSE_NETWORK = "sirius"
COMPOSE_VOLUMES = ("postgres_data", "valkey_data", "rabbitmq_data")


def remove_project(engine: DockerEngine, project: str = COMPOSE_PROJECT) -> None:
    """Remove the compose project's containers, networks and volumes (like
    ``docker compose -p sirius down -v --remove-orphans``, without needing
    its compose files), plus containers/networks with the Sirius names."""
    label = f"label=com.docker.compose.project={project}"
    cids = set(engine.run("ps", "-aq", "--filter", label).stdout.split())
    for name in SERVICE_IMAGES:
        cids.update(engine.run("ps", "-aq", "--filter", f"name=^/{name}$").stdout.split())
    if cids:
        engine.run("rm", "-f", "-v", *sorted(cids), timeout=120)
    nets = set(engine.run("network", "ls", "-q", "--filter", label).stdout.split())
    nets.update(engine.run("network", "ls", "-q", "--filter", f"name=^{COMPOSE_NETWORK}$").stdout.split())
    for n in sorted(nets):
        engine.run("network", "rm", n, check=False)
    vols = set(engine.run("volume", "ls", "-q", "--filter", label).stdout.split())
    vols.update(f"{project}_{v}" for v in COMPOSE_VOLUMES)
    existing = set(engine.run("volume", "ls", "-q").stdout.split())
    vols &= existing
    if vols:
        engine.run("volume", "rm", "-f", *sorted(vols), check=False)


def registry_override_yaml(registry_host: str, tag: str | None = None,
                           digests: Mapping[str, str] | None = None,
                           namespace: str = "siriusscan",
                           services: Iterable[str] | None = None) -> str:
    """A compose override setting each service's image to the test registry:
    ``<registry>/siriusscan/<image>:<tag>`` or, for images in ``digests``
    (image -> sha256:...), ``...@<digest>``."""
    if tag is None and not digests:
        raise ValueError("need a tag or digests")
    lines = ["services:"]
    for svc in services or SERVICE_IMAGES:
        img = SERVICE_IMAGES[svc]
        ref = f"{registry_host}/{namespace}/{img}"
        ref += f"@{digests[img]}" if digests and img in digests else f":{tag}"
        lines += [f"  {svc}:", f"    image: {ref}"]
    return "\n".join(lines) + "\n"


def sirius_env(password: str | None = None, *, api_key_file: str | None = API_KEY_FILE,
               **extra: str) -> dict[str, str]:
    """A ``.env`` as upstream's installer writes it: the variables Sirius' compose
    file requires (POSTGRES_PASSWORD 16 random bytes as hex, NEXTAUTH_SECRET 32,
    INITIAL_ADMIN_PASSWORD 12 as base64, DATABASE_URL built from the password) and
    ``SIRIUS_API_KEY_FILE=/run/secrets/sirius_api_key`` (``api_key_file=None``
    leaves that line out, as our old deploy did: sirius-engine's check then
    renders ``[ -r "" ]``)."""
    pw = password or secrets.token_hex(16)
    env = {
        "POSTGRES_PASSWORD": pw,
        "DATABASE_URL": f"postgresql://postgres:{pw}@sirius-postgres:5432/sirius",
        "NEXTAUTH_SECRET": secrets.token_hex(32),
        "INITIAL_ADMIN_PASSWORD": base64.b64encode(secrets.token_bytes(12)).decode(),
    }
    if api_key_file:
        env["SIRIUS_API_KEY_FILE"] = api_key_file
    env.update(extra)
    return env


def write_runtime_files(checkout: str | os.PathLike, env: Mapping[str, str] | None = None,
                        api_key: str | None = None, key_mode: int = 0o644) -> dict[str, str]:
    """Write ``.env`` (default ``sirius_env()``) and ``secrets/sirius_api_key.txt``
    (32 random bytes as hex, mode ``key_mode``: 0644 as the installer writes it, so
    uid 1001 can read it) into a checkout of the Sirius repo; return the env
    written (plus SIRIUS_API_KEY for the caller's convenience, not in the file)."""
    checkout = Path(checkout)
    env = dict(sirius_env() if env is None else env)
    (checkout / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    key = api_key or secrets.token_hex(32)
    sdir = checkout / "secrets"
    sdir.mkdir(exist_ok=True)
    kf = sdir / "sirius_api_key.txt"
    kf.write_text(key + "\n")
    os.chmod(kf, key_mode)
    return {**env, "SIRIUS_API_KEY": key}



LOOPBACK_OVERRIDE = "loopback.override.yaml"
FAST_HEALTH_OVERRIDE = "fast-health.override.yaml"


def write_loopback_override(checkout: str | os.PathLike,
                            ports: Mapping[str, Sequence[int]] | None = None) -> str:
    """Write ``loopback.override.yaml`` into ``checkout``: every port the fixture
    publishes (on all addresses, as upstream does) re-bound to 127.0.0.1 with
    ``ports: !override``.  Every plain ``docker compose up`` of the fixture in
    the tests or the benchmark must use it.  Returns the file name (relative to
    the checkout, for ``-f``)."""
    (Path(checkout) / LOOPBACK_OVERRIDE).write_text(
        loopback_override_yaml(dict(ports) if ports else None))
    return LOOPBACK_OVERRIDE


def write_fast_health_override(checkout: str | os.PathLike, start_period: str = "120s",
                               start_interval: str = "1s") -> str:
    """Write ``fast-health.override.yaml``: each health-checked service gets
    ``start_period``/``start_interval`` (upstream's interval, timeout and retries
    stay).  Returns the file name."""
    (Path(checkout) / FAST_HEALTH_OVERRIDE).write_text(
        fast_health_override_yaml(start_period=start_period, start_interval=start_interval))
    return FAST_HEALTH_OVERRIDE


def compose_files(checkout: str | os.PathLike, *, fast_health: bool = True,
                  extra: Sequence[str] = ()) -> list[str]:
    """Write the overrides and return the compose files for ``engine.compose(...,
    files=...)``: ``docker-compose.yaml``, the loopback override, (with
    ``fast_health``) the start_interval override, then ``extra``."""
    files = ["docker-compose.yaml", write_loopback_override(checkout)]
    if fast_health:
        files.append(write_fast_health_override(checkout))
    return files + list(extra)


def compose_config(engine: DockerEngine, checkout: str | os.PathLike,
                   files: Sequence[str] = ("docker-compose.yaml",),
                   env: Mapping[str, str] | None = None) -> dict:
    """``docker compose config --format json`` of a checkout, parsed (the model
    compose runs: variables interpolated from ``.env`` and ``env``).  Raises
    ``DockerCommandError`` when compose refuses (e.g. a required variable)."""
    out = engine.compose("config", "--format", "json", project_dir=checkout, files=files,
                         env=env).stdout
    return json.loads(out)


def container_state(engine: DockerEngine, name: str) -> dict:
    """``.State`` of a container (``Status``, ``ExitCode``, ``Health`` with its
    ``Status`` and ``Log`` of checks: ``ExitCode``, ``Output``)."""
    return json.loads(engine.run("inspect", "--format", "{{json .State}}", name).stdout)


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Poll ``predicate()`` until it returns a truthy value (returned) or raise
    ``HarnessError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)

