#!/bin/bash
# The fast tests (about 30 s after the first install): no root, no Docker. Everything but
# tests/host: the Pulumi program under the SDK's mocks, the policy pack, the engine's pure
# rules, the docs, shellcheck and actionlint. Python packages go into ./venv; git, jq and
# ssh-keygen come from the system. ./scripts/test.sh stays the one full command (what CI runs).
# Arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
for tool in git jq ssh-keygen ssh-agent; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "test-fast.sh: not on PATH: ${missing[*]} (Debian/Ubuntu: apt-get install git jq openssh-client)" >&2
  exit 2
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x venv/bin/python ]]; then
  "$PYTHON" -m venv venv
fi
venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt

exec venv/bin/python -m pytest -m "not host_docker" "$@"
