#!/bin/bash
# sirius-demo user_data, rendered by infra/bootstrap.py: unpacks the host scripts
# (infra/host/*.sh, a gzipped tar) and hands over to bootstrap.sh with the stack's
# settings, validated and quoted. Holds no secret: they are generated on the host.
set -euo pipefail
umask 022
install -d -m 0755 /opt/sirius-demo/bin
base64 -d <<'HOST_SCRIPTS' | tar -xzf - -C /opt/sirius-demo/bin
@@HOST_SCRIPTS@@
HOST_SCRIPTS
exec @@BOOTSTRAP_COMMAND@@
