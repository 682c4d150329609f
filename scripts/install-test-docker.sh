#!/bin/bash
# The tests' Docker Engine: Debian trixie's docker.io (Engine 26, API 1.45, the
# generation EC2 hosts run) unpacked into one folder, with bookworm's runc.
# Bookworm's own docker.io is Engine 20.10, which has no healthcheck start_interval.
# Trixie's runc needs glibc 2.38, so runc comes from this machine's release.
# Nothing is installed system-wide from trixie: a private apt state downloads the .debs.
#
#   scripts/install-test-docker.sh [PREFIX]    (default /opt/sirius-test-docker)
#
# Prints PREFIX/usr/sbin/dockerd's version. Idempotent: a PREFIX that already holds an
# Engine >= 25 is kept.
set -euo pipefail

PREFIX=${1:-/opt/sirius-test-docker}
MIN_MAJOR=25
STATE=/var/cache/sirius-test-docker/apt

engine_major() {
  local version
  version=$("$PREFIX/usr/sbin/dockerd" --version 2>/dev/null) || return 1
  version=${version#Docker version }
  printf '%s\n' "${version%%.*}"
}

if major=$(engine_major) && ((major >= MIN_MAJOR)); then
  "$PREFIX/usr/sbin/dockerd" --version
  exit 0
fi

sudo_cmd=()
((EUID == 0)) || sudo_cmd=(sudo)
if ! command -v runc >/dev/null 2>&1; then
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends runc
fi

"${sudo_cmd[@]}" install -d -m 0755 "$STATE/etc" "$STATE/lists/partial" "$STATE/cache/archives/partial" "$STATE/debs"
printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: trixie' 'Components: main' \
  'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' | "${sudo_cmd[@]}" tee "$STATE/etc/trixie.sources" >/dev/null
apt_private=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$STATE/etc"
  -o "Dir::State::Lists=$STATE/lists" -o "Dir::Cache=$STATE/cache"
  -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=/dev/null"
  -o "APT::Sandbox::User=root" -q)
"${sudo_cmd[@]}" apt-get "${apt_private[@]}" update
(cd "$STATE/debs" && rm -f ./*.deb && "${sudo_cmd[@]}" apt-get "${apt_private[@]}" download docker.io docker-cli containerd)

staging=$(mktemp -d "${TMPDIR:-/tmp}/sirius-test-docker.XXXXXX")
trap 'rm -rf "$staging"' EXIT
for deb in "$STATE"/debs/*.deb; do
  dpkg-deb -x "$deb" "$staging"
done
"${sudo_cmd[@]}" rm -rf "$PREFIX"
"${sudo_cmd[@]}" install -d -m 0755 "$(dirname "$PREFIX")"
"${sudo_cmd[@]}" cp -a "$staging" "$PREFIX"
"${sudo_cmd[@]}" chmod 0755 "$PREFIX"

major=$(engine_major) || { echo "install-test-docker: $PREFIX/usr/sbin/dockerd does not run" >&2; exit 1; }
if ((major < MIN_MAJOR)); then
  echo "install-test-docker: trixie gave Engine $major; the tests need $MIN_MAJOR or newer" >&2
  exit 1
fi
"$PREFIX/usr/sbin/dockerd" --version
