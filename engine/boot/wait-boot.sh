#!/bin/bash
# Wait until a new instance has booted and the engine's bootstrap recorded its outcome, then
# print that record (bootstrap.json). Run over SSH (`bash -s`), before the deploy.
# cloud-init exit 2 (recoverable errors) counts as booted; 1 fails with the log tail.
set -euo pipefail

STATE_DIR=/var/lib/sirius-demo LOG=/var/log/sirius-bootstrap.log TIMEOUT=1800
while (($#)); do
  case $1 in
    --state-dir) STATE_DIR=$2 ;;
    --log) LOG=$2 ;;
    --timeout) TIMEOUT=$2 ;;
    *) echo "wait-boot: unknown option: $1" >&2; exit 2 ;;
  esac
  shift 2
done
deadline=$((EPOCHSECONDS + TIMEOUT))

log_tail() {
  echo "--- last lines of $LOG" >&2
  tail -n 40 "$LOG" >&2 2>/dev/null || echo "(no bootstrap log yet)" >&2
}

if command -v cloud-init >/dev/null 2>&1; then
  status=0
  timeout "$TIMEOUT" cloud-init status --wait >/dev/null 2>&1 || status=$?
  case $status in
    0 | 2) ;;
    124) echo "wait-boot: cloud-init still running after ${TIMEOUT}s" >&2; log_tail; exit 1 ;;
    *) echo "wait-boot: cloud-init failed (exit $status)" >&2; log_tail; exit 1 ;;
  esac
fi

until [[ -s $STATE_DIR/bootstrap.json ]]; do
  if ((EPOCHSECONDS >= deadline)); then
    echo "wait-boot: no $STATE_DIR/bootstrap.json after ${TIMEOUT}s" >&2
    log_tail
    exit 1
  fi
  sleep 2
done
cat "$STATE_DIR/bootstrap.json"
