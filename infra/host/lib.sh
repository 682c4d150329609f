# shellcheck shell=bash
# Helpers shared by the sirius-demo host scripts. Sourced, never run.

log() {
  printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

# Seconds since the epoch with microseconds (bash 5), for phase timings.
now() {
  printf '%s' "${EPOCHREALTIME/,/.}"
}

# seconds_since START: elapsed seconds, one decimal.
seconds_since() {
  awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'
}

# random_hex BYTES: a fresh secret, hex only (safe in .env, URLs and sed).
random_hex() {
  od -An -v -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# compose_containers PROJECT: "service container_id" per container of the compose project.
compose_containers() {
  docker ps -a --filter "label=com.docker.compose.project=$1" --format '{{.Label "com.docker.compose.service"}} {{.ID}}'
}

# compose_states PROJECT: one line per container of the compose project:
# "service status health exit_code restart_policy" (health is "none" without a healthcheck).
compose_states() {
  local ids
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$1")
  [[ -n $ids ]] || return 0
  # shellcheck disable=SC2086 # one argument per container id
  docker inspect --format \
    '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}}' \
    $ids
}

# judge STATUS HEALTH EXIT RESTART: "ok", "failed" (will not recover) or "waiting".
# A one-shot service (restart "no", like sirius-migrate) is ok once it exited 0.
judge() {
  local status=$1 health=$2 code=$3 restart=$4
  if [[ $restart == no || -z $restart ]] && [[ $status == exited ]]; then
    if [[ $code == 0 ]]; then echo ok; else echo failed; fi
  elif [[ $status != running ]]; then
    echo waiting
  elif [[ $health == healthy || $health == none ]]; then
    echo ok
  else
    echo waiting
  fi
}
