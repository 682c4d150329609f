"""One-time OS setup of a demo host: Docker Engine and the Compose plugin from Docker's
apt repository (skipped when both already work), and git.

Why Docker's repository and not Ubuntu's docker.io: it always carries an Engine >= 25
and Compose >= 2.20.2 (health start_interval, README "Host install"), whatever the
Ubuntu release. No full upgrade here: security updates run after the stack is up.
"""

from __future__ import annotations

import os
import shutil

from engine.docker import log, run

KEY_URL = "https://download.docker.com/linux/ubuntu/gpg"
KEY_FILE = "/etc/apt/keyrings/docker.asc"
SOURCE_FILE = "/etc/apt/sources.list.d/docker.list"
DOCKER_PACKAGES = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"]
# Retries for flaky mirrors; wait for the dpkg lock that boot-time apt jobs hold.
APT = ["apt-get", "-q", "-o", "Acquire::Retries=5", "-o", "DPkg::Lock::Timeout=600"]
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def docker_works() -> bool:
    return bool(shutil.which("docker")) and run(["docker", "compose", "version"], timeout=60).ok


def os_release() -> dict[str, str]:
    values = {}
    for line in open("/etc/os-release"):
        key, _, value = line.strip().partition("=")
        values[key] = value.strip('"')
    return values


def apt(*args: str) -> None:
    os.environ.update(APT_ENV)
    result = run([*APT, *args], timeout=1800)
    if not result.ok:
        raise RuntimeError(f"apt-get {args[0]} failed: {result.last_line()}")


def main() -> int:
    packages = [] if shutil.which("git") else ["git"]
    if docker_works():
        log("install: Docker and the compose plugin are present; skipping their install")
    else:
        log("install: adding Docker's apt repository")
        if not shutil.which("curl"):
            apt("update")
            apt("install", "-y", "--no-install-recommends", "ca-certificates", "curl")
        os.makedirs(os.path.dirname(KEY_FILE), mode=0o755, exist_ok=True)
        key = run(["curl", "-fsSL", "--retry", "5", "--retry-delay", "2", KEY_URL, "-o", KEY_FILE], timeout=300)
        if not key.ok:
            raise RuntimeError(f"cannot download Docker's apt key: {key.last_line()}")
        os.chmod(KEY_FILE, 0o644)
        arch = run(["dpkg", "--print-architecture"]).out.strip()
        codename = os_release().get("VERSION_CODENAME", "")
        with open(SOURCE_FILE, "w") as f:
            f.write(f"deb [arch={arch} signed-by={KEY_FILE}] https://download.docker.com/linux/ubuntu {codename} stable\n")
        packages += DOCKER_PACKAGES
    if packages:
        log(f"install: apt-get install {' '.join(packages)}")
        apt("update")
        apt("install", "-y", "--no-install-recommends", *packages)
    if os.path.isdir("/run/systemd/system") and not run(["docker", "info"], timeout=60).ok:
        run(["systemctl", "enable", "--now", "docker"], timeout=300)
    if not docker_works():
        raise RuntimeError("docker compose does not work after the install")
    log(f"install: done ({run(['docker', '--version']).out.strip()})")
    return 0
