"""The compose project running on the host: its containers, `up` as engine/plan.py decides,
the wait until every service is ok, and the diagnostics when one is not.

A deploy and a rollback each make one for the project and files they run; every secret
they know is blanked in what it prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engine import envfile, plan
from engine.docker import Compose, Result, log, project_containers, run
from engine.report import ServiceEntry

POLL_SECONDS = 0.25
# `up` gets at least this long, even when the deadline is near: a killed `up` helps nobody.
MIN_UP_SECONDS = 60


class Stack:
    def __init__(self, project: str, compose: Compose, secrets: list[str]):
        self.project = project
        self.compose = compose  # the project's files with the engine's run override
        self.secrets = secrets
        self.up_error = ""  # compose's complaint about the last `up`, redacted, for the diagnostics

    def containers(self) -> dict[str, dict]:
        """service -> its container (`docker inspect`)."""
        return {plan.service_of(c): c for c in project_containers(self.project)}

    def converge(self, wanted: dict[str, str], same_project: bool, deadline: float,
                 who: str) -> tuple[dict, plan.UpPlan, Result]:
        """Bring the project to `wanted` (service -> image) as plan.plan_up decides: the
        containers found before, the plan and compose's result."""
        before = self.containers()
        step = plan.plan_up(wanted, {svc: c["Config"]["Image"] for svc, c in before.items()},
                            {svc: plan.verdict_of(c) for svc, c in before.items()}, same_project)
        log(f"{who}: {step.kind}" + (f" ({' '.join(step.services)})" if step.services else ""))
        return before, step, self.run_plan(step, deadline)

    def run_plan(self, step: plan.UpPlan, deadline: float) -> Result:
        """Run the plan's `docker compose up`; `up_error` keeps compose's complaint, redacted."""
        args = step.compose_args()
        timeout = max(deadline - time.time(), MIN_UP_SECONDS)
        result = self.compose(*args, timeout=timeout) if args else Result(0, "", "")
        self.up_error = "" if result.ok else envfile.redact(result.err[-3000:], self.secrets)
        if not result.ok:
            log(f"up: docker compose up did not finish cleanly: {envfile.redact(result.last_line(), self.secrets)}")
        return result

    def wait_healthy(self, services, deadline: float,
                     on_ready: Callable[[str], None] | None = None) -> tuple[str, dict, dict[str, float]]:
        """Poll every service until all are ok, one has failed for good, or the deadline:
        the verdict, the containers last seen, and when each turned ok (`on_ready` is told
        of each service as it first turns ok)."""
        ready_at: dict[str, float] = {}
        while True:
            now = time.time()
            containers = self.containers()
            verdicts = {svc: plan.verdict_of(containers[svc]) if svc in containers else plan.WAITING for svc in services}
            for svc, verdict in verdicts.items():
                if verdict == plan.OK and svc not in ready_at:
                    # Docker's own record when it has one: services can turn healthy while
                    # `up` still waits for their dependants, before this loop runs.
                    ready_at[svc] = min(now, plan.ready_time(containers[svc]) or now)
                    if on_ready:
                        on_ready(svc)
            status = plan.gate(verdicts, now, deadline)
            if status:
                return status, containers, ready_at
            time.sleep(POLL_SECONDS)

    def judge(self, services: dict, containers: dict, ready_at: dict[str, float], before_ids: dict[str, str],
              since: float, entries: dict[str, ServiceEntry]) -> list[str]:
        """Fill the report's entry of each service (health; for those this deploy recreated,
        when each was created, started and ready, in seconds from `since`): the critical path."""
        for svc in services:
            c, entry = containers.get(svc), entries[svc]
            entry.health = plan.health_word(c)
            entry.recreated = c is not None and before_ids.get(svc) != c["Id"]
            if entry.recreated:
                created, started = plan.docker_time(c["Created"]), plan.docker_time((c["State"] or {}).get("StartedAt", ""))
                entry.created_seconds = round(created - since, 1) if created else None
                entry.started_seconds = round(started - since, 1) if started else None
                entry.healthy_seconds = round(ready_at[svc] - since, 1) if svc in ready_at else None
        depends = {svc: sorted((spec.get("depends_on") or {}).keys()) for svc, spec in services.items()}
        return plan.critical_path(depends, {svc: t for svc, t in ready_at.items() if entries[svc].recreated})

    def not_ok(self, services, containers: dict) -> list[str]:
        """The services whose container is missing or not ok, sorted."""
        return sorted(svc for svc in services if svc not in containers or plan.verdict_of(containers[svc]) != plan.OK)

    def diagnose(self, bad: list[str], since: float) -> None:
        """Which service, why, and the tail of its logs, with every secret blanked."""
        parts = [f"=== diagnostics: not healthy after {time.time() - since:.0f}s: {' '.join(bad)}"]
        if self.up_error:
            parts += ["--- docker compose up", self.up_error]
        parts += ["--- docker compose ps", self.compose("ps", "-a", timeout=60).out]
        containers = self.containers()
        for svc in bad:
            c = containers.get(svc)
            parts.append(f"--- {svc}: {plan.health_word(c)}")
            if c:
                for entry in ((c["State"].get("Health") or {}).get("Log") or [])[-3:]:
                    parts.append(f"health check (exit {entry.get('ExitCode')}): {entry.get('Output', '').strip()}")
                logs = run(["docker", "logs", "--tail", "30", c["Id"]], timeout=60)
                parts.append((logs.out + logs.err).rstrip())
        parts += ["--- disk and memory", run(["df", "-h", "/"]).out, run(["free", "-m"]).out]
        log(envfile.redact("\n".join(parts), self.secrets))
