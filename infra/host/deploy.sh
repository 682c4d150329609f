#!/bin/bash
# Deploy the Sirius compose project at a git ref and image tag, and prove it healthy.
#
# fetch the project -> keep/generate secrets -> pull images (retried; a missing tag is
# not retried) -> build locally only what could not be pulled -> up from the pulled
# digests -> wait for health until the deadline -> report.
#
# Progress goes to stderr. The report (JSON, schema in README.md) is written to
# $STATE_DIR/deploy.json and printed as the last line of stdout. Exit 0 only when
# every service is healthy (sirius-migrate: exited 0).
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

usage() {
  cat <<'USAGE'
usage: deploy.sh --repo URL --ref REF --tag TAG [options]
  --git-ref REF          what to fetch (default: --ref)
  --image-tag NAME=TAG   tag for one image (e.g. sirius-ui=pr-7-amd64); repeatable
  --registry PREFIX      image registry and namespace (default ghcr.io/siriusscan)
  --public-host HOST     address browsers use for the UI and API (default localhost)
  --health-timeout SEC   deadline for the whole deploy to become healthy (default 600)
  --dir DIR              compose project directory (default /opt/sirius)
  --state-dir DIR        report, lock and generated overrides (default /var/lib/sirius-demo)
  --pull-attempts N      pull attempts per image (default 6)
  --pull-delay SEC       first retry delay, doubled each retry up to 60 (default 5)
  --min-free-gb N        free disk needed under Docker's data root (default 8)
  --install-seconds S    time the OS setup took, for the report (bootstrap.sh sets it)
USAGE
}

REPO="" REF="" GIT_REF="" TAG="" REGISTRY="ghcr.io/siriusscan" PUBLIC_HOST="localhost"
HEALTH_TIMEOUT=600 DIR="/opt/sirius" STATE_DIR="/var/lib/sirius-demo"
PULL_ATTEMPTS=6 PULL_DELAY=5 MIN_FREE_GB=8 INSTALL_SECONDS=0
declare -A TAG_OF_IMAGE=()

while (($#)); do
  if [[ $1 != -h && $1 != --help && $# -lt 2 ]]; then
    log "deploy: option $1 needs a value"
    exit 2
  fi
  case $1 in
    --repo) REPO=$2 ;;
    --ref) REF=$2 ;;
    --git-ref) GIT_REF=$2 ;;
    --tag) TAG=$2 ;;
    --image-tag) TAG_OF_IMAGE[${2%%=*}]=${2#*=} ;;
    --registry) REGISTRY=$2 ;;
    --public-host) PUBLIC_HOST=$2 ;;
    --health-timeout) HEALTH_TIMEOUT=$2 ;;
    --dir) DIR=$2 ;;
    --state-dir) STATE_DIR=$2 ;;
    --pull-attempts) PULL_ATTEMPTS=$2 ;;
    --pull-delay) PULL_DELAY=$2 ;;
    --min-free-gb) MIN_FREE_GB=$2 ;;
    --install-seconds) INSTALL_SECONDS=$2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; log "deploy: unknown option: $1"; exit 2 ;;
  esac
  shift 2
done
GIT_REF=${GIT_REF:-$REF}

# --- report state, written on every exit ---------------------------------------
STARTED=$(now)
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
STATUS=failed ERROR="" COMMIT="" REF_FELL_BACK=false PULL_ROUNDS=0
declare -A PHASE=([install]=$INSTALL_SECONDS [fetch]=0 [pull]=0 [build]=0 [up]=0 [healthy]=0)
declare -A IMAGE_OF_SERVICE=() REF_OF_IMAGE=() DIGEST_OF_IMAGE=() BUILT=() HEALTH=() BEFORE=() RECREATED=()
SECRETS=()
PROJECT=""
WORK=""

fail() {
  ERROR=$1
  log "deploy: ERROR: $1"
  exit 1
}

# Replace every generated secret by [redacted]: diagnostics quote service logs.
redact() {
  local script="" secret
  for secret in "${SECRETS[@]}"; do
    if [[ -n $secret ]]; then script+="s/${secret}/[redacted]/g;"; fi
  done
  if [[ -n $script ]]; then sed -e "$script"; else cat; fi
}

# shellcheck disable=SC2317 # runs from the EXIT trap
write_report() {
  local services="{}" service image report
  command -v jq >/dev/null 2>&1 || {
    printf '{"status":"failed","error":"jq is missing on the host"}\n'
    return
  }
  for service in "${!IMAGE_OF_SERVICE[@]}"; do
    image=${IMAGE_OF_SERVICE[$service]}
    services=$(jq -c \
      --arg s "$service" --arg ref "${REF_OF_IMAGE[$image]:-}" --arg digest "${DIGEST_OF_IMAGE[$image]:-}" \
      --arg health "${HEALTH[$service]:-unknown}" --argjson built "${BUILT[$image]:-false}" \
      --argjson recreated "${RECREATED[$service]:-false}" \
      '.[$s] = {image: $ref, digest: (if $digest == "" then null else $digest end), health: $health,
                builtLocally: $built, recreated: $recreated}' <<<"$services")
  done
  report=$(jq -cn \
    --arg status "$STATUS" --arg error "$ERROR" --arg ref "$REF" --arg commit "$COMMIT" \
    --arg tag "$TAG" --arg registry "$REGISTRY" --arg started "$STARTED_AT" \
    --arg finished "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg total "$(seconds_since "$STARTED")" \
    --argjson fellBack "$REF_FELL_BACK" --argjson rounds "$PULL_ROUNDS" --argjson services "$services" \
    --arg install "${PHASE[install]}" --arg fetch "${PHASE[fetch]}" --arg pull "${PHASE[pull]}" \
    --arg build "${PHASE[build]}" --arg up "${PHASE[up]}" --arg healthy "${PHASE[healthy]}" \
    '{schema: 1, status: $status, error: (if $error == "" then null else $error end),
      ref: $ref, commit: (if $commit == "" then null else $commit end), refFellBack: $fellBack,
      imageTag: $tag, registry: $registry, startedAt: $started, finishedAt: $finished,
      totalSeconds: ($total | tonumber), pullRounds: $rounds,
      phases: {install: ($install | tonumber), fetch: ($fetch | tonumber), pull: ($pull | tonumber),
               build: ($build | tonumber), up: ($up | tonumber), healthy: ($healthy | tonumber)},
      builtLocally: [$services | to_entries[] | select(.value.builtLocally) | .key] | sort,
      unhealthy: [$services | to_entries[] | select(.value.health != "healthy") | .key] | sort,
      services: $services}')
  if [[ -d $STATE_DIR ]]; then
    printf '%s\n' "$report" >"$STATE_DIR/deploy.json.tmp" && mv "$STATE_DIR/deploy.json.tmp" "$STATE_DIR/deploy.json"
  fi
  printf '%s\n' "$report"
}

# shellcheck disable=SC2317 # runs from the EXIT trap
on_exit() {
  local code=$?
  trap - EXIT
  if ((code != 0)) && [[ $STATUS == healthy ]]; then STATUS=failed; fi
  if ((code != 0)) && [[ -z $ERROR ]]; then ERROR="deploy.sh stopped unexpectedly (exit $code); see the log above"; fi
  write_report
  if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
  exit "$code"
}
trap on_exit EXIT

# --- inputs: validated here too, since this script is also run by hand ---------
[[ -n $REPO && -n $REF && -n $TAG ]] || { usage >&2; fail "--repo, --ref and --tag are required"; }
tag_re='^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'
[[ $TAG =~ $tag_re ]] || fail "--tag '$TAG' is not a Docker tag"
for image in "${!TAG_OF_IMAGE[@]}"; do
  [[ ${TAG_OF_IMAGE[$image]} =~ $tag_re ]] || fail "--image-tag $image: not a Docker tag"
done
[[ $GIT_REF =~ ^[A-Za-z0-9_][A-Za-z0-9._/-]*$ && $GIT_REF != *..* ]] || fail "--git-ref '$GIT_REF' is not a git ref"
for image in "${!TAG_OF_IMAGE[@]}"; do
  [[ $image =~ ^[a-z0-9][a-z0-9_.-]{0,62}$ ]] || fail "--image-tag: '$image' is not an image name"
done
[[ $REGISTRY =~ ^[a-z0-9][a-z0-9.-]*(:[0-9]{1,5})?(/[a-z0-9][a-z0-9._-]*)*$ ]] ||
  fail "--registry '$REGISTRY' is not a registry/namespace like ghcr.io/siriusscan"
[[ $PUBLIC_HOST =~ ^[A-Za-z0-9]([A-Za-z0-9.:-]{0,251}[A-Za-z0-9])?$ ]] ||
  fail "--public-host '$PUBLIC_HOST' is not a host name or IP address"
[[ $REPO =~ ^(https://|file:///)[A-Za-z0-9._~:/-]+$ && $REPO != *..* ]] ||
  fail "--repo '$REPO' is not an https:// or file:/// URL"
for path in "$DIR" "$STATE_DIR"; do
  [[ $path =~ ^/[A-Za-z0-9._/-]*$ && $path != *..* ]] || fail "'$path' is not an absolute path"
done
for number in "$HEALTH_TIMEOUT" "$PULL_ATTEMPTS" "$PULL_DELAY" "$MIN_FREE_GB"; do
  [[ $number =~ ^[0-9]+$ ]] || fail "numeric options must be whole numbers, got '$number'"
done
DEADLINE=$(awk -v s="$STARTED" -v t="$HEALTH_TIMEOUT" 'BEGIN { printf "%d", s + t }')

install -d -m 0755 "$STATE_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sirius-deploy.XXXXXX")

# One deploy at a time: user_data's first deploy and a remote redeploy must not interleave.
exec 9>"$STATE_DIR/deploy.lock"
if ! flock -n 9; then
  log "deploy: another deploy is running; waiting for it"
  flock -w "$HEALTH_TIMEOUT" 9 || fail "another deploy held $STATE_DIR/deploy.lock for ${HEALTH_TIMEOUT}s"
fi

# --- pre-checks: fail before pulling, with what to do -------------------------
command -v docker >/dev/null 2>&1 || fail "docker is not installed; run install.sh first"
docker info >/dev/null 2>&1 ||
  fail "the Docker daemon is not running or not reachable at ${DOCKER_HOST:-unix:///var/run/docker.sock}; start it (systemctl start docker)"
docker compose version >/dev/null 2>&1 ||
  fail "the Docker Compose v2 plugin is missing ('docker compose version' fails); install docker-compose-plugin"
for tool in git jq flock timeout; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed; run install.sh first"
done
data_root=$(docker info --format '{{.DockerRootDir}}')
[[ -d $data_root ]] || data_root=/
free_gb=$(df -Pk "$data_root" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
((free_gb >= MIN_FREE_GB)) ||
  fail "only ${free_gb} GiB free under $data_root; a deploy needs ${MIN_FREE_GB} GiB: raise volumeSize or run 'docker system prune'"

# --- fetch the compose project at the ref -------------------------------------
phase_start=$(now)
log "fetch: $REPO at $GIT_REF"
install -d -m 0755 "$DIR"
if [[ ! -d $DIR/.git ]]; then
  git -C "$DIR" init -q
  git -C "$DIR" remote add origin "$REPO"
else
  git -C "$DIR" remote set-url origin "$REPO"
fi
fetched=false
for attempt in 1 2 3; do
  if git -C "$DIR" fetch -q --depth 1 origin "$GIT_REF" 2>"$WORK/fetch.err"; then
    fetched=true
    break
  fi
  if grep -qiE "couldn't find remote ref|not our ref|no such remote ref" "$WORK/fetch.err"; then
    log "fetch: WARNING: $GIT_REF does not exist in $REPO; deploying its default branch instead"
    REF_FELL_BACK=true
    git -C "$DIR" fetch -q --depth 1 origin HEAD 2>"$WORK/fetch.err" && fetched=true
    break
  fi
  log "fetch: attempt $attempt failed: $(tail -n 1 "$WORK/fetch.err")"
  sleep $((attempt * 2))
done
$fetched || fail "cannot fetch $REPO: $(tail -n 1 "$WORK/fetch.err")"
git -C "$DIR" -c advice.detachedHead=false checkout -q --force FETCH_HEAD
COMMIT=$(git -C "$DIR" rev-parse HEAD)
[[ -f $DIR/docker-compose.yaml ]] || fail "$REPO at $GIT_REF has no docker-compose.yaml"
PHASE[fetch]=$(seconds_since "$phase_start")

# --- secrets: generated here once, kept across deploys, never printed ----------
env_value() {
  [[ -f $DIR/.env ]] || return 0
  sed -n "s/^$1=//p" "$DIR/.env" | tail -n 1
}
postgres_password=$(env_value POSTGRES_PASSWORD)
nextauth_secret=$(env_value NEXTAUTH_SECRET)
admin_password=$(env_value INITIAL_ADMIN_PASSWORD)
: "${postgres_password:=$(random_hex 24)}" "${nextauth_secret:=$(random_hex 32)}" "${admin_password:=$(random_hex 12)}"
install -d -m 0755 "$DIR/secrets"
api_key_file=$DIR/secrets/sirius_api_key.txt
if [[ ! -s $api_key_file ]]; then
  (umask 022 && random_hex 32 >"$api_key_file")
fi
chmod 0644 "$api_key_file" # the API runs as uid 1001 and must read it
SECRETS=("$postgres_password" "$nextauth_secret" "$admin_password" "$(cat "$api_key_file")")

(
  umask 077
  cat >"$WORK/env" <<ENV
# Written by sirius-demo deploy.sh; secrets are generated on this host and kept.
POSTGRES_PASSWORD=$postgres_password
DATABASE_URL=postgresql://postgres:$postgres_password@sirius-postgres:5432/sirius
NEXTAUTH_SECRET=$nextauth_secret
INITIAL_ADMIN_PASSWORD=$admin_password
NEXTAUTH_URL=http://$PUBLIC_HOST:3000
NEXT_PUBLIC_SIRIUS_API_URL=http://$PUBLIC_HOST:9001
IMAGE_TAG=$TAG
ENV
)
# Same settings apart from IMAGE_TAG: a tag change that compose must not see as a config change.
ENV_SAME_BUT_TAG=false
if [[ -f $DIR/.env ]] && cmp -s <(grep -v '^IMAGE_TAG=' "$WORK/env") <(grep -v '^IMAGE_TAG=' "$DIR/.env"); then
  ENV_SAME_BUT_TAG=true
fi
if cmp -s "$WORK/env" "$DIR/.env"; then rm -f "$WORK/env"; else mv "$WORK/env" "$DIR/.env"; fi
chmod 0600 "$DIR/.env"

compose=(docker compose --project-directory "$DIR" -f "$DIR/docker-compose.yaml")
config_json=$("${compose[@]}" config --format json) || fail "docker compose config failed for $REPO at $GIT_REF"
PROJECT=$(jq -r '.name // "sirius"' <<<"$config_json")
mapfile -t service_images < <(jq -r '.services | to_entries[] | select(.value.image != null) | "\(.key) \(.value.image)"' <<<"$config_json")
((${#service_images[@]})) || fail "docker-compose.yaml declares no service with an image"

declare -A SERVICE_OF_IMAGE=()
for line in "${service_images[@]}"; do
  service=${line%% *}
  name=${line#* }
  name=${name##*/}
  name=${name%%[:@]*}
  IMAGE_OF_SERVICE[$service]=$name
  # Pull/build each image once, through the service named like it when there is one.
  if [[ -z ${SERVICE_OF_IMAGE[$name]:-} || $service == "$name" ]]; then SERVICE_OF_IMAGE[$name]=$service; fi
  REF_OF_IMAGE[$name]="$REGISTRY/$name:${TAG_OF_IMAGE[$name]:-$TAG}"
done
mapfile -t IMAGES < <(printf '%s\n' "${!SERVICE_OF_IMAGE[@]}" | sort)
mapfile -t SERVICES < <(printf '%s\n' "${!IMAGE_OF_SERVICE[@]}" | sort)

# run_image SERVICE: what the service runs: the pulled digest, else the tag or local build.
run_image() {
  local name=${IMAGE_OF_SERVICE[$1]}
  if [[ -n ${DIGEST_OF_IMAGE[$name]:-} ]]; then echo "$REGISTRY/$name@${DIGEST_OF_IMAGE[$name]}"; else echo "${REF_OF_IMAGE[$name]}"; fi
}

# overrides FILE KIND: a compose override giving every service the image of KIND
# (tag: the tag reference; run: the pulled digest or the local build).
write_override() {
  local file=$1 kind=$2 service image
  {
    printf 'services:\n'
    for service in "${SERVICES[@]}"; do
      image=${REF_OF_IMAGE[${IMAGE_OF_SERVICE[$service]}]}
      if [[ $kind == run ]]; then image=$(run_image "$service"); fi
      printf '  %s:\n    image: "%s"\n' "$service" "$image"
      if [[ $kind == run ]]; then printf '    pull_policy: missing\n'; fi
    done
  } >"$file"
}

# --- pull: every image in parallel; transient failures retried with backoff -----
# One `docker pull` per image (what `docker compose pull` does), so each error is read
# on its own: a tag that does not exist is not retried, an outage is.
phase_start=$(now)
# Release and sha- tags never move: when present locally, the registry is not asked.
immutable_re='^(v[0-9]+\.[0-9]+\.[0-9]+.*|sha-[0-9a-f]{40})$'
pending=()
for name in "${IMAGES[@]}"; do
  ref=${REF_OF_IMAGE[$name]}
  if [[ ${ref##*:} =~ $immutable_re ]] && docker image inspect -- "$ref" >/dev/null 2>&1; then
    log "pull: $ref is immutable and present"
  else
    pending+=("$name")
  fi
done
missing=()
delay=$PULL_DELAY
while ((${#pending[@]})); do
  PULL_ROUNDS=$((PULL_ROUNDS + 1))
  log "pull: round $PULL_ROUNDS: ${pending[*]}"
  declare -A pids=()
  for name in "${pending[@]}"; do
    docker pull --quiet -- "${REF_OF_IMAGE[$name]}" >"$WORK/pull.$name.log" 2>&1 &
    pids[$name]=$!
  done
  retry=()
  for name in "${pending[@]}"; do
    if wait "${pids[$name]}"; then
      continue
    elif grep -qiE 'manifest unknown|not found|denied|unauthorized|does not exist' "$WORK/pull.$name.log"; then
      log "pull: ${REF_OF_IMAGE[$name]} is not published"
      missing+=("$name")
    else
      log "pull: ${REF_OF_IMAGE[$name]} failed: $(grep -v '^\s*$' "$WORK/pull.$name.log" | tail -n 1)"
      retry+=("$name")
    fi
  done
  unset pids
  pending=("${retry[@]}")
  ((${#pending[@]})) || break
  if ((PULL_ROUNDS >= PULL_ATTEMPTS)); then
    log "pull: giving up on ${pending[*]} after $PULL_ROUNDS attempts"
    missing+=("${pending[@]}")
    break
  fi
  log "pull: retrying in ${delay}s"
  sleep "$delay"
  delay=$((delay * 2 > 60 ? 60 : delay * 2))
done
for name in "${IMAGES[@]}"; do
  ref=${REF_OF_IMAGE[$name]}
  docker image inspect -- "$ref" >/dev/null 2>&1 || continue
  if [[ " ${missing[*]} " == *" $name "* ]]; then continue; fi
  DIGEST_OF_IMAGE[$name]=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' -- "$ref" |
    sed -n "s|^$REGISTRY/$name@||p" | head -n 1)
done
PHASE[pull]=$(seconds_since "$phase_start")

# --- build: only what could not be pulled --------------------------------------
if ((${#missing[@]})); then
  phase_start=$(now)
  [[ -f $DIR/docker-compose.build.yaml ]] ||
    fail "no image for ${missing[*]} and no docker-compose.build.yaml to build them"
  build_services=()
  for name in "${missing[@]}"; do
    REF_OF_IMAGE[$name]="sirius-demo-local/$name:${TAG_OF_IMAGE[$name]:-$TAG}"
    BUILT[$name]=true
    build_services+=("${SERVICE_OF_IMAGE[$name]}")
  done
  write_override "$STATE_DIR/compose.build.yaml" tag
  log "build: building ${build_services[*]} locally"
  if ! "${compose[@]}" -f "$DIR/docker-compose.build.yaml" -f "$STATE_DIR/compose.build.yaml" \
    build "${build_services[@]}" >"$WORK/build.log" 2>&1; then
    redact <"$WORK/build.log" | tail -n 30 >&2
    fail "local build of ${build_services[*]} failed: $(grep -v '^\s*$' "$WORK/build.log" | tail -n 1 | redact)"
  fi
  PHASE[build]=$(seconds_since "$phase_start")
fi

# --- up: from the pulled digests, no second trip to the registry --------------
phase_start=$(now)
write_override "$STATE_DIR/compose.run.yaml" run
while read -r service container; do
  if [[ -n $service ]]; then BEFORE[$service]=$container; fi
done < <(compose_containers "$PROJECT")
declare -A RUNNING_IMAGE=()
if ((${#BEFORE[@]})); then
  while read -r service image; do
    if [[ -n $service ]]; then RUNNING_IMAGE[$service]=$image; fi
  done < <(docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}} {{.Config.Image}}' \
    "${BEFORE[@]}")
fi
# Same compose project and settings, only new images: recreate exactly the services whose
# image changed. Compose alone would recreate more, since the project interpolates
# IMAGE_TAG into environment too (sirius-api's SIRIUS_VERSION).
images_only=false
if ((${#BEFORE[@]})) && $ENV_SAME_BUT_TAG && [[ -s $STATE_DIR/deploy.json ]] &&
  [[ $(jq -r '.commit // ""' "$STATE_DIR/deploy.json") == "$COMMIT" ]]; then
  images_only=true
fi
changed=()
for service in "${SERVICES[@]}"; do
  if [[ ${RUNNING_IMAGE[$service]:-} != "$(run_image "$service")" ]]; then changed+=("$service"); fi
done
remaining=$((DEADLINE - EPOCHSECONDS))
((remaining > 0)) || remaining=1
up_ok=true
up() {
  SIRIUS_IMAGE_PULL_POLICY=missing timeout "$remaining" \
    "${compose[@]}" -f "$STATE_DIR/compose.run.yaml" up -d "$@" >>"$WORK/up.log" 2>&1 || up_ok=false
}
# Whether every service that keeps its image is up and healthy right now.
others_ok=true
while read -r service status health code restart; do
  if [[ -n ${IMAGE_OF_SERVICE[$service]:-} && " ${changed[*]} " != *" $service "* ]] &&
    [[ $(judge "$status" "$health" "$code" "$restart") != ok ]]; then
    others_ok=false
  fi
done < <(compose_states "$PROJECT")
if $images_only && $others_ok; then
  # Nothing else to start: touch only what changed (nothing at all for the same tag).
  log "up: same project, running and healthy; new images for: ${changed[*]:-none}"
  if ((${#changed[@]})); then up --no-deps --force-recreate "${changed[@]}"; fi
elif $images_only; then
  log "up: same project, new images for: ${changed[*]:-none} (${remaining}s left)"
  up --no-recreate --remove-orphans
  if $up_ok && ((${#changed[@]})); then up --no-deps --force-recreate "${changed[@]}"; fi
else
  log "up: starting the stack (${remaining}s left)"
  up --remove-orphans
fi
PHASE[up]=$(seconds_since "$phase_start")
$up_ok || log "up: docker compose up did not finish cleanly: $(grep -v '^\s*$' "$WORK/up.log" | tail -n 1 | redact)"

# --- healthy: every service, until the deadline --------------------------------
phase_start=$(now)
while :; do
  all_ok=true broken=false
  for service in "${SERVICES[@]}"; do HEALTH[$service]=missing; done
  while read -r service status health code restart; do
    [[ -n ${IMAGE_OF_SERVICE[$service]:-} ]] || continue
    verdict=$(judge "$status" "$health" "$code" "$restart")
    case $verdict in
      ok) HEALTH[$service]=healthy ;;
      failed) HEALTH[$service]="exited($code)"; broken=true ;;
      *) if [[ $health == none ]]; then HEALTH[$service]=$status; else HEALTH[$service]=$health; fi ;;
    esac
  done < <(compose_states "$PROJECT")
  for service in "${SERVICES[@]}"; do
    [[ ${HEALTH[$service]} == healthy ]] || all_ok=false
  done
  $all_ok && break
  if $broken || ((EPOCHSECONDS >= DEADLINE)); then break; fi
  sleep 0.5
done
PHASE[healthy]=$(seconds_since "$phase_start")
while read -r service container; do
  if [[ -n $service && ${BEFORE[$service]:-} != "$container" ]]; then RECREATED[$service]=true; fi
done < <(compose_containers "$PROJECT")

if $all_ok; then
  STATUS=healthy
  log "deploy: healthy in $(seconds_since "$STARTED")s (tag $TAG, commit ${COMMIT:0:12})"
  exit 0
fi

# --- diagnostics: which service, why, and the tail of its logs ---------------
STATUS=unhealthy
bad=()
for service in "${SERVICES[@]}"; do
  [[ ${HEALTH[$service]} == healthy ]] || bad+=("$service")
done
{
  echo "=== diagnostics: not healthy after $(seconds_since "$STARTED")s: ${bad[*]}"
  $up_ok || { echo "--- docker compose up"; tail -n 20 "$WORK/up.log"; }
  echo "--- docker compose ps"
  "${compose[@]}" -f "$STATE_DIR/compose.run.yaml" ps -a 2>&1 || true
  for service in "${bad[@]}"; do
    echo "--- $service: ${HEALTH[$service]}"
    container=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
      --filter "label=com.docker.compose.service=$service" | head -n 1)
    if [[ -n $container ]]; then
      docker inspect --format '{{if .State.Health}}{{range .State.Health.Log}}health check: {{.Output}}{{end}}{{end}}' \
        "$container" 2>/dev/null | tail -n 3 || true
      docker logs --tail 30 "$container" 2>&1 || true
    fi
  done
  echo "--- disk and memory"
  df -h / "$data_root" 2>&1 | sort -u || true
  free -m 2>&1 || true
} 2>&1 | redact >&2
ERROR="not healthy within ${HEALTH_TIMEOUT}s: ${bad[*]}"
exit 1
