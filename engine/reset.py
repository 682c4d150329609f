"""A reset: the demo as new, on the same host. docs/reset.md says what and when.

    engine reset [--state-dir DIR] [--health-timeout N] [--no-demo-data] [--no-rollback]

It deploys again what the last healthy deploy was asked for (engine/settings.py keeps
those settings in the state dir once a deploy's stack is healthy), under the same lock,
with the same steps, checks and health gate as a deploy, and one step more: just before
the switch it removes every container of the Sirius services (sirius-ui then starts with a
new SQLite database and seeds the admin user from INITIAL_ADMIN_PASSWORD again) and the data volumes the compose file
declares (postgres_data, valkey_data, rabbitmq_data). What the engine adds itself (the
HTTPS proxy and its certificates' volume) stays. `up` starts everything afresh on the
tag's current images (pulled), and the demo data is loaded into the new database.

A reset that fails still leaves a demo that serves: whatever stopped it (fetch, check,
pull, up, the gate), the last healthy deploy is put back as a rollback does, on fresh
volumes (wiped again: what the failed stack wrote goes too), with the demo data loaded.
The report (<state-dir>/reset.json and the last stdout line, in the deploy report's
format, plus `kind` and `reset`) says in `reset.demo` which demo serves:

    fresh         reset done: the configured tag's current images, fresh data   exit 0
    last-healthy  the reset failed; the last healthy deploy runs on fresh data   exit 1
    unchanged     nothing was touched (no healthy deploy to fall back on, or the
                  lock not had): the demo as it was, visitors' changes included  exit 1
    down          wiped, and neither the reset nor the fallback came up          exit 1
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from engine import STATE_DIR, demodata, plan, rollback, rules, settings, source
from engine.deploy import Deploy
from engine.docker import Compose, log, project_containers, run
from engine.errors import DeployError
from engine.report import ResetReport, RollbackEntry, Served

REPORT_FILE = "reset.json"
FRESH, LAST_HEALTHY, UNCHANGED, DOWN = "fresh", "last-healthy", "unchanged", "down"
RESET_OK = "reset"  # the report's status when the demo is new at the configured tag


def running_shape(project_dir: str) -> tuple[str, list[str], list[str]]:
    """The running project's name, services and data volumes' names, as its own compose
    file declares them (not the engine's override: the proxy and its volume are not in it)."""
    rendered, error = Compose(project_dir).config()
    if rendered is None:
        raise DeployError(f"reset: cannot read the running project's compose file: {error}")
    project = rendered.get("name") or rules.DEFAULT_PROJECT
    volumes = {(spec or {}).get("name") or f"{project}_{key}" for key, spec in (rendered.get("volumes") or {}).items()}
    return project, sorted(rendered.get("services") or {}), sorted(volumes)


def demo_state(status: str, stack_healthy: bool, wiped: bool) -> str:
    """Which demo serves after a reset that ended with `status`."""
    if stack_healthy:
        return FRESH  # HTTPS may have failed (status failed): the new stack serves on its ports
    if status == "rolled-back":
        return LAST_HEALTHY if wiped else UNCHANGED
    return DOWN if wiped else UNCHANGED


class Reset(Deploy):
    report_file = REPORT_FILE
    report_type = ResetReport
    remembers_settings = False  # a reset deploys the remembered settings; it never changes them

    def __init__(self, settings: settings.Settings):
        super().__init__(settings)
        self.wiped = False

    def check(self, fetched: source.Fetched) -> source.Staged:
        # Fresh containers: a full `up`, never a recreate of a few.
        return dataclasses.replace(super().check(fetched), same_settings=False)

    def before_switch(self) -> None:
        self.wipe()

    def wipe(self) -> None:
        """Remove the Sirius services' containers and the compose file's data volumes."""
        started, entry = time.monotonic(), self.report.reset
        project, services, volumes = running_shape(self.s.project_dir)
        containers = [c for c in project_containers(project) if plan.service_of(c) in services]
        self.wiped = True  # from the first removal on, the old demo is gone
        if containers:
            removed = run(["docker", "rm", "--force", "--volumes", *(c["Id"] for c in containers)], timeout=300)
            if not removed.ok:
                raise DeployError(f"reset: cannot remove the containers: {removed.last_line()}")
        entry.removed_services = sorted(set(entry.removed_services) | {plan.service_of(c) for c in containers})
        present = set(run(["docker", "volume", "ls", "--quiet"], timeout=60).out.split())
        doomed = [name for name in volumes if name in present]
        if doomed:
            removed = run(["docker", "volume", "rm", *doomed], timeout=300)
            if not removed.ok:
                raise DeployError(f"reset: cannot remove the data volumes: {removed.last_line()}")
        entry.removed_volumes = sorted(set(entry.removed_volumes) | set(doomed))
        entry.wipe_seconds = round((entry.wipe_seconds or 0.0) + time.monotonic() - started, 1)
        log(f"reset: removed the containers of {' '.join(entry.removed_services) or '(none)'} "
            f"and the volumes {' '.join(doomed) or '(none)'}")

    def conclude(self) -> None:
        if self.stack_healthy:
            if self.report.status == "healthy":
                self.report.status = RESET_OK
                self.report.serving = Served(ref=self.s.ref, image_tag=self.s.image_tag, commit=self.report.commit)
            self.keep_healthy()
        else:
            self.fall_back()

    def write_report(self) -> None:
        # Judged here, on every path: an internal error in the fallback must not leave "unchanged".
        self.report.reset.demo = demo_state(self.report.status, self.stack_healthy, self.wiped)
        super().write_report()

    def fall_back(self) -> None:
        """The reset failed: the last healthy deploy, on fresh volumes, with the demo data."""
        record = rollback.load(self.s.state_dir)
        entry = self.report.rollback = RollbackEntry()
        if not self.s.rollback:
            entry.reason = "rollback is off (--no-rollback)"
        elif record is None:
            entry.reason = "no earlier healthy deploy on this host"
        if entry.reason:
            log(f"reset: no fallback: {entry.reason}")
            return
        error = self.report.error
        # Before the wipe, the old demo goes; after it, what the failed reset's stack wrote
        # (its API's migrations, the demo data loaded as soon as the API passed): fresh either way.
        try:
            self.wipe()
        except DeployError as err:
            log(f"{err}; putting back the last healthy deploy on what is left")
        self.report.error = error  # the reset's own failure, not the wipe's
        if self.s.firewall and self.fencing.scanner is None:  # stopped before the fence: fence what comes back
            try:
                self.fence()
            except DeployError as err:
                log(f"reset: {err}; the rules of the last deploy stay in place")
        self.restore(record, entry, full_up=True)
        if entry.status == "healthy":
            self.report.demo_data = demodata.seed(self.s, self.project)

    def say_outcome(self) -> None:
        r = self.report
        demo = r.reset.demo
        if r.status == RESET_OK:
            log(f"reset: done in {r.total_seconds}s: a fresh demo of tag {self.s.image_tag}, "
                f"commit {(r.commit or '')[:12]}")
        elif demo == FRESH:
            log(f"reset: the demo is fresh, but: {r.error}")
        elif demo == LAST_HEALTHY:
            log(f"reset: FAILED: {r.error}; the demo serves the last healthy deploy on fresh data: "
                f"{rollback.describe(r.serving)}")
        elif demo == UNCHANGED:
            log(f"reset: FAILED: {r.error}; nothing was reset: the demo is as it was, visitors' changes included")
        else:
            log(f"reset: FAILED: {r.error}; the demo data was removed and the demo is DOWN "
                f"(fallback: {r.rollback.reason if r.rollback else None})")

    def exit_code(self) -> int:
        return 0 if self.report.status == RESET_OK else 1


def main(argv: list[str]) -> int:
    """`engine reset`: what it deploys is the last healthy deploy's; flags only narrow how."""
    p = argparse.ArgumentParser(prog="engine reset", allow_abbrev=False)
    p.add_argument("--state-dir", default=STATE_DIR)
    p.add_argument("--health-timeout", type=int)
    for flag in ("--rollback", "--demo-data"):
        p.add_argument(flag, action=argparse.BooleanOptionalAction)
    chosen = p.parse_args(argv)
    overrides = {k: v for k, v in vars(chosen).items() if k != "state_dir" and v is not None}
    try:
        remembered = settings.remembered(chosen.state_dir, **overrides)
    except settings.SettingsError as err:
        print(f"engine reset: {err}", file=sys.stderr)
        return 2
    return Reset(remembered).run()
