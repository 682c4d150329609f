"""Pure planning: which image each service runs, what to pull again, what to build,
what to recreate, how to judge a container, and how long to wait. No I/O here: the
fast tests table these rules, and deploy.py only carries them out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# Errors after which pulling again cannot help: the tag is not published (or not for us).
_NOT_PUBLISHED = re.compile(r"manifest unknown|not found|denied|unauthorized|does not exist|no matching manifest", re.I)
MAX_PULL_DELAY = 60.0

OK, WAITING, FAILED = "ok", "waiting", "failed"
# A container that crashed this often since it was created is not coming up.
CRASH_LOOP_RESTARTS = 3


def images_of(services: dict) -> dict[str, str]:
    """service -> image name (the last path part, without tag): the key for tags and pulls."""
    names = {}
    for service, spec in services.items():
        image = spec.get("image") or ""
        names[service] = re.split(r"[:@]", image.rsplit("/", 1)[-1], maxsplit=1)[0]
    return names


def pull_is_hopeless(error: str) -> bool:
    return bool(_NOT_PUBLISHED.search(error))


def retry_delays(attempts: int, first: float) -> list[float]:
    """Seconds to wait before each retry: doubling from `first`, at most MAX_PULL_DELAY."""
    return [min(first * 2**i, MAX_PULL_DELAY) for i in range(max(attempts - 1, 0))]


def run_image(registry: str, image: str, ref: str, digest: str | None) -> str:
    """What a service runs: the exact pulled digest, else the tag (a local build)."""
    return f"{registry}/{image}@{digest}" if digest else ref


@dataclass(frozen=True)
class UpPlan:
    kind: str  # "none": nothing to do; "recreate": only `services`, --no-deps; "full": compose up
    services: tuple[str, ...] = ()

    def compose_args(self) -> list[str] | None:
        """The `docker compose` arguments that carry the plan out (None: nothing to run)."""
        if self.kind == "recreate":
            return ["up", "-d", "--no-deps", "--force-recreate", *self.services]
        if self.kind == "full":
            return ["up", "-d", "--remove-orphans"]
        return None


def plan_up(wanted: dict[str, str], running: dict[str, str], verdicts: dict[str, str], same_project: bool) -> UpPlan:
    """How to bring the stack to `wanted` (service -> image it must run).

    `running` is what each existing container runs, `verdicts` how each is judged now,
    `same_project` whether the compose project and settings are unchanged apart from
    image tags. When they are and every other service is fine, only the services whose
    image changed are recreated, on their own: their dependencies keep running.
    """
    changed = tuple(sorted(s for s in wanted if running.get(s) != wanted[s]))
    others_fine = all(verdicts.get(s) == OK for s in wanted if s not in changed)
    if same_project and others_fine:
        return UpPlan("recreate", changed) if changed else UpPlan("none")
    return UpPlan("full", changed)


def judge(state: dict, oneshot: bool) -> str:
    """ok, waiting or failed, from a container's `docker inspect` State.

    A one-shot (restart "no", like sirius-migrate) is ok once it exited 0, and waiting
    while it runs. A service with a health check is ok only when healthy.
    """
    status = state.get("Status")
    health = (state.get("Health") or {}).get("Status")
    if oneshot:
        if status == "exited":
            return OK if state.get("ExitCode") == 0 else FAILED
        return FAILED if status == "dead" else WAITING
    if status in ("restarting", "exited", "dead") and state.get("restart_count", 0) >= CRASH_LOOP_RESTARTS:
        return FAILED
    if status != "running":
        return WAITING
    return OK if health in (None, "healthy") else WAITING


def service_of(container: dict) -> str | None:
    """The compose service a `docker inspect` entry belongs to."""
    return ((container.get("Config") or {}).get("Labels") or {}).get("com.docker.compose.service")


def verdict_of(container: dict) -> str:
    state = dict(container.get("State") or {})
    state["restart_count"] = container.get("RestartCount", 0)
    policy = ((container.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"
    return judge(state, oneshot=policy == "no")


_DOCKER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def docker_time(text: str) -> float | None:
    """Epoch seconds of a Docker timestamp (RFC 3339, nanoseconds); None for unset or unreadable."""
    match = _DOCKER_TIME.fullmatch(text or "")
    if not match or text.startswith("0001-"):
        return None
    zone = "+00:00" if match[3] == "Z" else match[3]
    return datetime.fromisoformat(match[1] + zone).timestamp() + float("0." + (match[2] or "0"))


def ready_time(container: dict) -> float | None:
    """When Docker saw an ok container become ready: its earliest passing health check still
    in the log, a one-shot's exit, or the start of a service without a check."""
    if verdict_of(container) != OK:
        return None
    state = container.get("State") or {}
    health = state.get("Health")
    if health:
        passes = [docker_time(entry.get("End", "")) for entry in health.get("Log") or [] if entry.get("ExitCode") == 0]
        return min((t for t in passes if t), default=None)
    return docker_time(state.get("FinishedAt" if state.get("Status") == "exited" else "StartedAt", ""))


def health_word(container: dict | None) -> str:
    """One word for the report: healthy, starting, unhealthy, exited(N), created, missing..."""
    if container is None:
        return "missing"
    verdict = verdict_of(container)
    state = container.get("State") or {}
    if verdict == OK:
        return "healthy"
    if state.get("Status") in ("exited", "dead"):
        return f"exited({state.get('ExitCode')})"
    return (state.get("Health") or {}).get("Status") or state.get("Status") or "unknown"


def next_retry(attempt: int, delays: list[float], now: float, deadline: float) -> float | None:
    """Seconds to wait before pulling again after failed round `attempt` (1-based), or
    None when the attempts are used up or the wait would pass the deadline."""
    if attempt > len(delays) or now + delays[attempt - 1] >= deadline:
        return None
    return delays[attempt - 1]


def gate(verdicts: dict[str, str], now: float, deadline: float) -> str | None:
    """The health gate's decision: "healthy", "unhealthy" (a service failed for good, or
    the deadline passed), or None to keep waiting."""
    if verdicts and all(v == OK for v in verdicts.values()):
        return "healthy"
    if FAILED in verdicts.values() or now >= deadline:
        return "unhealthy"
    return None


def exit_code(status: str) -> int:
    """The deploy's exit code: 0 only for a healthy stack."""
    return 0 if status == "healthy" else 1


def needs_swap(mem_total_bytes: int) -> bool:
    """Local builds of the UI peak at 2-3 GB: hosts under 8 GiB get a swap file meanwhile."""
    return mem_total_bytes < 8 * 1024**3


def critical_path(depends_on: dict[str, list[str]], ready_at: dict[str, float]) -> list[str]:
    """The chain of dependencies that decided when the stack was ready, first to last."""
    if not ready_at:
        return []
    chain = [max(ready_at, key=lambda s: ready_at[s])]
    while True:
        deps = [d for d in depends_on.get(chain[-1], []) if d in ready_at and d not in chain]
        if not deps:
            return list(reversed(chain))
        chain.append(max(deps, key=lambda d: ready_at[d]))


def image_fallbacks(image_tag: str, image_tags: dict[str, str]) -> dict[str, dict[str, str]]:
    """Images that run another tag than the deploy's, for the report: loud for a sha- ref,
    whose compose file then runs other commits' images."""
    return {image: {"wanted": image_tag, "running": tag} for image, tag in sorted(image_tags.items()) if tag != image_tag}


def digest_of(run_image: str | None) -> str | None:
    """The digest of a run image (`registry/name@sha256:...`); None for a local build's tag."""
    digest = (run_image or "").partition("@")[2]
    return digest or None


def moved(last_healthy: dict | None, wanted: dict[str, str], commit: str | None) -> tuple[dict, dict | None]:
    """What this deploy changes against the last healthy one, for the report: per image whose
    digest moved, {"from", "to"}; and the commit range {"from", "to"} when the commit moved."""
    if not last_healthy:
        return {}, None
    before = last_healthy.get("runImages") or {}
    changes: dict[str, dict[str, str | None]] = {}
    for service, image in sorted(wanted.items()):
        old, new = digest_of(before.get(service)), digest_of(image)
        name = image.partition("@")[0].rsplit("/", 1)[-1].split(":")[0]
        if service in before and old != new:
            changes[name] = {"from": old, "to": new}
    old_commit = last_healthy.get("commit")
    commits = {"from": old_commit, "to": commit} if old_commit and commit and old_commit != commit else None
    return changes, commits
