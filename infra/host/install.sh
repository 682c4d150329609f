#!/bin/bash
# One-time OS setup of a demo host: Docker Engine and the compose plugin from
# Docker's apt repository (skipped when both already work), plus git and jq.
# No full upgrade here: security updates run after the stack is up (bootstrap.sh).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

# Retries for flaky mirrors; wait for the dpkg lock that boot-time apt jobs hold.
apt_get() {
  apt-get -q -o Acquire::Retries=5 -o DPkg::Lock::Timeout=600 "$@"
}

packages=()
for tool in git jq; do
  command -v "$tool" >/dev/null 2>&1 || packages+=("$tool")
done

if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  log "install: Docker and the compose plugin are present; skipping their install"
else
  log "install: adding Docker's apt repository"
  if ! command -v curl >/dev/null 2>&1; then
    apt_get update
    apt_get install -y --no-install-recommends ca-certificates curl
  fi
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL --retry 5 --retry-delay 2 https://download.docker.com/linux/ubuntu/gpg -o /etc/apt/keyrings/docker.asc
  chmod a+r /etc/apt/keyrings/docker.asc
  # shellcheck source=/dev/null
  . /etc/os-release
  printf 'deb [arch=%s signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu %s stable\n' \
    "$(dpkg --print-architecture)" "$VERSION_CODENAME" >/etc/apt/sources.list.d/docker.list
  packages+=(docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin)
fi

if ((${#packages[@]})); then
  log "install: apt-get install ${packages[*]}"
  apt_get update
  apt_get install -y --no-install-recommends "${packages[@]}"
fi

if [[ -d /run/systemd/system ]] && ! docker info >/dev/null 2>&1; then
  systemctl enable --now docker
fi
docker compose version >/dev/null || { log "install: docker compose does not work after install"; exit 1; }
log "install: done ($(docker --version))"
