#!/bin/bash
# First boot of a demo host (run by user_data): OS setup, then the first deploy.
# Takes deploy.sh's options. Logs to /var/log/sirius-bootstrap.log and records the
# outcome in $STATE_DIR/bootstrap.json (the deploy report, or why setup failed).
# Exits non-zero only when the OS setup failed: an unhealthy first deploy is recorded
# and left to the remote deploy (pulumi up), which retries it and reports diagnostics.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

LOG_FILE=${SIRIUS_BOOTSTRAP_LOG:-/var/log/sirius-bootstrap.log}
STATE_DIR=/var/lib/sirius-demo
args=("$@")
while (($#)); do
  if [[ $1 == --state-dir && $# -ge 2 ]]; then STATE_DIR=$2; fi
  shift
done

exec >>"$LOG_FILE" 2>&1
install -d -m 0755 "$STATE_DIR"
log "bootstrap: start"
started=$(now)

if ! "$HERE/install.sh"; then
  printf '{"schema":1,"status":"failed","error":"OS setup (install.sh) failed; see %s","phases":{"install":%s}}\n' \
    "$LOG_FILE" "$(seconds_since "$started")" >"$STATE_DIR/bootstrap.json"
  log "bootstrap: install failed"
  exit 1
fi
install_seconds=$(seconds_since "$started")

status=0
"$HERE/deploy.sh" "${args[@]}" --install-seconds "$install_seconds" || status=$?
if [[ -s $STATE_DIR/deploy.json ]]; then
  cp "$STATE_DIR/deploy.json" "$STATE_DIR/bootstrap.json"
else
  printf '{"schema":1,"status":"failed","error":"deploy.sh exited %s without a report; see %s"}\n' \
    "$status" "$LOG_FILE" >"$STATE_DIR/bootstrap.json"
fi

# Security updates after the demo is up, off the critical path.
if command -v systemd-run >/dev/null 2>&1 && command -v unattended-upgrade >/dev/null 2>&1; then
  systemd-run --unit sirius-security-updates --no-block unattended-upgrade >/dev/null 2>&1 || true
fi
log "bootstrap: done (deploy exit $status)"
