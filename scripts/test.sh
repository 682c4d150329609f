#!/bin/bash
# The test command: installs what the tests need (Debian packages when missing, and
# the Python packages into ./venv), then runs the whole suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A registry, busybox for the stand-in images, sshd for the remote commands, runc for
# the test Engine (and iptables, which its embedded DNS needs inside containers): everything the host engine meets on a real instance.
# caddy (its binary becomes the proxy's stand-in image), pebble (Let's Encrypt's ACME test CA) and openssl
# (pebble's listener certificate): the HTTPS tests.
# The Docker Engine itself (26, from trixie) is installed by install-test-docker.sh.
DEBIAN_PACKAGES=(docker-registry busybox-static runc iptables openssh-server openssh-client jq git
  ca-certificates iproute2 util-linux procps caddy pebble openssl)

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "test.sh: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=()
  ((EUID == 0)) || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

./scripts/install-test-docker.sh >&2

PYTHON=${PYTHON:-python3}
if [[ ! -x venv/bin/python ]]; then
  "$PYTHON" -m venv venv
fi
venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt

exec venv/bin/python -m pytest "$@"
