#!/bin/bash
# sirius-demo user_data, rendered by infra/bootstrap.py: writes the boot part of the
# host engine (a Python zipapp) and runs its OS setup. The same for every stack: no
# setting and no secret. The first deploy arrives over SSH, like every later one.
set -euo pipefail
umask 022
install -d -m 0755 /opt/sirius-demo
base64 -d >/opt/sirius-demo/boot.pyz <<'BOOT_ENGINE'
@@BOOT_ENGINE@@
BOOT_ENGINE
exec @@BOOTSTRAP_COMMAND@@
