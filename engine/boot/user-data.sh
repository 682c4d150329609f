#!/bin/bash
# sirius-demo user_data, rendered by infra/bootstrap.py: writes the boot part of the
# host engine (a Python zipapp) and runs its OS setup, then pulls the first deploy's
# images (named on the bootstrap line, with its ref and tag). No secret, no address. The
# first deploy arrives over SSH, like every later one.
set -euo pipefail
umask 022
install -d -m 0755 /opt/sirius-demo
base64 -d >/opt/sirius-demo/boot.pyz <<'BOOT_ENGINE'
@@BOOT_ENGINE@@
BOOT_ENGINE
exec @@BOOTSTRAP_COMMAND@@
