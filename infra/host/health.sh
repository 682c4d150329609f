#!/bin/bash
# Health report of the running demo: one JSON line on stdout with the state of every
# compose service now, overall status, and the last deploy's report (timings, tags,
# digests, local builds). Exit 0 when every service is healthy. Prints no secret.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

DIR=/opt/sirius STATE_DIR=/var/lib/sirius-demo
while (($#)); do
  case $1 in
    --dir) DIR=$2 ;;
    --state-dir) STATE_DIR=$2 ;;
    *) log "health: unknown option: $1"; exit 2 ;;
  esac
  shift 2
done

last_deploy=null
if [[ -s $STATE_DIR/deploy.json ]]; then last_deploy=$(jq -c . "$STATE_DIR/deploy.json"); fi
project=sirius
if [[ -f $DIR/docker-compose.yaml ]]; then
  project=$(docker compose --project-directory "$DIR" -f "$DIR/docker-compose.yaml" config --format json 2>/dev/null |
    jq -r '.name // "sirius"') || project=sirius
fi

services="{}" overall=healthy
expected=$(jq -r '(.services // {}) | keys[]' <<<"$last_deploy" 2>/dev/null || true)
while read -r service status health code restart; do
  [[ -n $service ]] || continue
  verdict=$(judge "$status" "$health" "$code" "$restart")
  [[ $verdict == ok ]] || overall=unhealthy
  services=$(jq -c --arg s "$service" --arg status "$status" --arg health "$health" --arg verdict "$verdict" \
    --argjson code "$code" '.[$s] = {state: $status, health: $health, exitCode: $code, ok: ($verdict == "ok")}' \
    <<<"$services")
done < <(compose_states "$project")
for service in $expected; do
  if [[ $(jq -r --arg s "$service" 'has($s)' <<<"$services") == false ]]; then
    overall=unhealthy
    services=$(jq -c --arg s "$service" '.[$s] = {state: "missing", health: "none", exitCode: null, ok: false}' <<<"$services")
  fi
done
if [[ $services == "{}" ]]; then overall=unhealthy; fi

jq -cn --arg status "$overall" --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson services "$services" \
  --argjson deploy "$last_deploy" \
  '{schema: 1, status: $status, checkedAt: $at, services: $services,
    imageTag: ($deploy.imageTag // null), builtLocally: ($deploy.builtLocally // []),
    digests: (($deploy.services // {}) | with_entries(.value = .value.digest)),
    deploySeconds: ($deploy.totalSeconds // null), phases: ($deploy.phases // null), lastDeploy: $deploy}'
[[ $overall == healthy ]]
