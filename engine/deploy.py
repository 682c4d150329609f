"""One deploy: fetch the project at a ref, check it, pull, build what cannot be pulled,
start, prove healthy, report; put the last healthy deploy back when this one fails.

    pre-checks -> fetch -> compatibility check (staged) -> pull (retried; a missing tag
    is not) -> scanner firewall -> switch the project -> local build of what is missing -> up
    -> health gate (deadline; the services, then the UI and API through the proxy; the demo
    data loads from the moment the API passes, beside the wait for the rest) -> HTTPS (domain)
    -> stack healthy: record it and its settings, disk care / otherwise: roll back -> report

Nothing the running stack uses changes before the switch: a ref that fails the check or an
image that cannot be had leaves the demo as it was. Git: engine/source.py; images: images.py;
the report: report.py. A step fails by raising DeployError (errors.py); `run` records it once.

Progress goes to stderr; the report (JSON, README "Deploy report") is written to
<state-dir>/deploy.json and printed as the last stdout line. Exit 0 only when healthy.
"""

from __future__ import annotations

import fcntl
import json
import os
import time

from engine import demodata, diskcare, envfile, hostcheck, images, override, plan, proxy, rollback, source
from engine.docker import Compose, Result, log
from engine.errors import DeployError
from engine.fencing import FenceFailed, Fencing
from engine.rollback import RunSpec
from engine.source import Staged
from engine.stack import Stack
from engine.report import DeployReport, RollbackEntry, ServiceEntry, first_boot_install_seconds, utc_now, write
from engine.settings import Settings, remember

LOCK_FILE, REPORT_FILE = "deploy.lock", "deploy.json"
RUN_OVERRIDE, SHAPE_FILE = rollback.RUN_OVERRIDE, rollback.SHAPE_FILE


class Deploy:
    report_file = REPORT_FILE
    report_type = DeployReport
    remembers_settings = True  # a healthy deploy's settings are what `engine reset` deploys again

    def __init__(self, settings: Settings):
        s = self.s = settings
        self.started = time.time()
        self.deadline = self.started + s.health_timeout
        self.phase_started = time.monotonic()
        self.report = self.report_type(
            ref=s.ref, git_ref=s.git_ref, image_tag=s.image_tag, registry=s.registry, started_at=utc_now(),
            image_fallbacks=plan.image_fallbacks(s.image_tag, s.image_tags))
        self.report.phases.install = s.install_seconds or first_boot_install_seconds(s.state_dir, REPORT_FILE)
        self.secrets: list[str] = []
        self.project: str | None = None  # the compose project's name, once the check rendered it
        self.spec = RunSpec()
        self.stack: Stack | None = None  # the project as it runs, once `up` (or a rollback's) started it
        self.demo_load: demodata.EarlyLoad | None = None  # once the project has its name
        self.fencing = Fencing(settings)
        self.switched = False  # the project dir and .env are the new deploy's: a failure now needs a rollback
        self.stack_healthy = False  # every service passed the gate (HTTPS may still fail: no rollback for that)
        # Here, not in steps(): a reset that fails before the pull still restores through it.
        self.proxy = proxy.Proxy(settings)

    def phase(self, name: str) -> None:
        setattr(self.report.phases, name, round(time.monotonic() - self.phase_started, 1))
        self.phase_started = time.monotonic()

    # --- the deploy ----------------------------------------------------------------------

    def run(self) -> int:
        os.makedirs(self.s.state_dir, mode=0o755, exist_ok=True)
        with open(os.path.join(self.s.state_dir, LOCK_FILE), "w") as lock:
            try:
                self.lock(lock)
                self.attempt()
                if self.demo_load:  # never a rollback or a wipe while it posts
                    self.demo_load.wait()
                self.conclude()
            except Exception as err:  # noqa: BLE001 - the lock, or a bug: either must leave a report behind
                self.record_error(err)
            finally:
                self.report.finished_at = utc_now()
                self.report.total_seconds = round(time.time() - self.started, 1)
                self.write_report()  # inside the lock: the next deploy reads this one's report
        self.say_outcome()
        return self.exit_code()

    def attempt(self) -> None:
        """The deploy's steps; whatever stops them is reported, and a switched project rolls back."""
        try:
            self.steps()
        except Exception as err:  # noqa: BLE001 - a bug after the switch must still roll back
            self.record_error(err)

    def steps(self) -> None:
        self.check_host()
        fetched = self.fetch()
        staged = self.check(fetched)
        pulled = self.pull(staged.services)
        proxy_extra = self.prepare_proxy()  # before the switch: the running stack and its proxy stay as they are
        self.fence()  # before anything starts the engine: its rules hold from the first packet
        self.before_switch()
        compose = self.switch(fetched.commit, staged.env_text)
        built = self.build(compose, staged.services, pulled.missing)
        self.spec = self.write_run_files(staged, pulled.digests, built, proxy_extra)
        before_ids, proxy_before = self.start(compose, staged, self.spec)
        self.report.status = self.gate(staged.services, before_ids, proxy_before)
        if self.report.status != "healthy":
            through = (self.report.proxy or {}).get("error")  # the services are healthy, visitors not served
            self.report.error = through or f"not healthy within {self.s.health_timeout}s: {', '.join(self.report.unhealthy)}"
            self.stack.diagnose(self.report.unhealthy, self.started)
            return
        self.stack_healthy = True
        self.report.demo_data = self.demo_load.result()  # never decides health
        self.serve_https()

    def conclude(self) -> None:
        """After the steps and the demo data load: record a healthy stack, or put the last healthy one back."""
        if self.stack_healthy:
            self.keep_healthy()
        elif self.switched:
            self.roll_back()

    def record_error(self, err: Exception) -> None:
        """The one place a failure is recorded: the report's status and error, secrets blanked."""
        message = str(err) if isinstance(err, DeployError) else f"internal error ({type(err).__name__}): {err}"
        self.report.status, self.report.error = "failed", envfile.redact(message, self.secrets)
        self.report.problems = [envfile.redact(p, self.secrets) for p in self.report.problems]
        log(f"deploy: ERROR: {self.report.error}")

    def write_report(self) -> None:
        print(write(os.path.join(self.s.state_dir, self.report_file), self.report), flush=True)

    def say_outcome(self) -> None:
        r = self.report
        if r.status == "healthy":
            log(f"deploy: healthy in {r.total_seconds}s (tag {self.s.image_tag}, commit {(r.commit or '')[:12]})")
        elif r.status == "rolled-back":
            log(f"deploy: ROLLED BACK: {r.error}; the demo still serves the previous version: "
                f"{rollback.describe(r.serving)}")

    def exit_code(self) -> int:
        return plan.exit_code(self.report.status)

    def lock(self, handle) -> None:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.time() >= self.deadline:
                    raise DeployError(f"another deploy held {self.s.state_dir}/{LOCK_FILE} for {self.s.health_timeout}s") from None
                log("deploy: another deploy is running; waiting for it")
                time.sleep(2)

    # --- the steps -----------------------------------------------------------------------

    def check_host(self) -> None:
        """Fail before anything is fetched or pulled, saying what to do."""
        note = hostcheck.check_tools()
        self.report.start_interval, self.report.start_interval_note = note is None, note
        hostcheck.check_disk(self.s.min_free_gb)

    def fetch(self) -> source.Fetched:
        fetched = source.fetch(self.s, self.deadline)
        self.report.commit, self.report.ref_fell_back = fetched.commit, fetched.fell_back
        self.phase("fetch")
        return fetched

    def check(self, fetched: source.Fetched) -> Staged:
        """The project rendered with the deploy's .env in a staging dir (source.stage): what
        cannot work is refused before any pull and before anything switches."""
        staged = source.stage(self.s, fetched.compose_text)
        self.secrets, self.report.problems = staged.secrets, staged.problems
        if staged.problems:
            raise DeployError("compatibility check: " + "; ".join(staged.problems))
        self.project = self.report.project = staged.project
        self.phase("check")
        return staged

    def pull(self, services: dict) -> images.Pulled:
        pulled = images.pull(self.s, sorted(set(plan.images_of(services).values())), self.deadline)
        self.report.pull_rounds = pulled.rounds
        self.phase("pull")
        return pulled

    def prepare_proxy(self) -> dict:
        """The proxy's part of the override (engine/proxy.py), or DeployError before the switch."""
        extra = self.proxy.prepare(max(self.deadline - time.time(), 1.0))
        if self.proxy.error:
            raise DeployError(self.proxy.error)
        return extra

    def fence(self) -> None:
        """The scanner's firewall; a failure stops the deploy before the switch, the running stack as it was."""
        try:
            self.report.firewall = self.fencing.apply()
        except FenceFailed as err:
            self.report.firewall = err.entry
            raise

    def before_switch(self) -> None:
        """The last moment the running stack is as it was (a reset wipes it here)."""

    def switch(self, commit: str, env_text: str) -> Compose:
        """The project dir and .env become the new deploy's; from here a failure rolls back."""
        self.switched = True
        source.checkout(self.s.project_dir, commit)
        envfile.write_private(os.path.join(self.s.project_dir, ".env"), env_text)
        return Compose(self.s.project_dir)

    def build(self, compose: Compose, services: dict, missing: list[str]) -> set[str]:
        """Build locally what could not be pulled (the images built); the time is added to the deadline."""
        if not missing:
            return set()
        built = images.build(self.s, compose, services, sorted(set(missing)), self.secrets)
        self.report.build_seconds.update(built.seconds)
        self.report.built_locally = built.services
        if built.error:
            raise DeployError(built.error)
        self.deadline += sum(built.seconds.values())
        self.phase("build")
        return set(missing)

    def write_run_files(self, staged: Staged, digests: dict[str, str], built: set[str], proxy_extra: dict) -> RunSpec:
        """The override that pins what each service runs; the report's entry per service."""
        s, services, names = self.s, staged.services, plan.images_of(staged.services)
        wanted = {svc: plan.run_image(s.registry, names[svc], s.ref_of(names[svc]), digests.get(names[svc]))
                  for svc in services}
        for svc in services:
            self.report.services[svc] = ServiceEntry(image=s.ref_of(names[svc]), digest=digests.get(names[svc]),
                                                     built_locally=names[svc] in built)
        form = dict(fast_health=self.report.start_interval, start_period=s.health_timeout, **proxy_extra)
        text = override.render(services, wanted, **form)
        with open(os.path.join(s.state_dir, RUN_OVERRIDE), "w") as f:
            f.write(text)
        self.report.moved, self.report.commit_range = plan.moved(rollback.load(s.state_dir), wanted, self.report.commit)
        # What compose would see change apart from images: the commit, the override's shape.
        shape = json.dumps([self.report.commit, override.render(services, dict.fromkeys(services, ""), **form)])
        return RunSpec(staged.env_text, wanted, text, shape)

    def start(self, compose: Compose, staged: Staged, spec: RunSpec) -> tuple[dict[str, str], str | None]:
        """`up` of the run files, recreating only what changed when nothing else did; the
        containers' ids before it and the proxy's (to tell what this deploy recreated)."""
        s = self.s
        self.stack = Stack(self.project, compose.with_files(os.path.join(s.state_dir, RUN_OVERRIDE)), self.secrets)
        shape_file = os.path.join(s.state_dir, SHAPE_FILE)
        same_shape = os.path.exists(shape_file) and open(shape_file).read() == spec.shape
        proxy_now = self.proxy.container(self.project)
        if not (same_shape and proxy.is_running(proxy_now)):  # same shape: its spec is what it runs
            self.proxy.ensure(self.stack.compose)  # first: visitors get "being updated" while services move
        before, _, result = self.stack.converge(spec.run_images, same_shape and staged.same_settings, self.deadline, "up")
        with open(shape_file, "w") as f:
            f.write(spec.shape)
        self.fence_running()
        self.phase("up")
        if not result.ok:
            self.stop_if_not_created(staged.services, result)
        return {svc: c["Id"] for svc, c in before.items()}, (proxy_now or {}).get("Id")

    def stop_if_not_created(self, services: dict, result: Result) -> None:
        """After an `up` that failed: a service with no container (a dependency that failed, a
        port in use, a cpus limit above the host's) fails the deploy now; no wait helps."""
        containers = self.stack.containers()
        absent = sorted(set(services) - set(containers))
        if not absent:
            return
        self.report.unhealthy = self.stack.not_ok(services, containers)
        for svc in self.report.unhealthy:
            self.report.services[svc].health = plan.health_word(containers.get(svc))
        self.stack.diagnose(self.report.unhealthy, self.started)
        raise DeployError(f"docker compose up created no container for {', '.join(absent)}: "
                          f"{envfile.redact(result.last_line(), self.secrets)}")

    def fence_running(self) -> None:
        """After an `up`: the scanner fenced where it runs, or stopped (fencing.py)."""
        try:
            self.report.firewall = self.fencing.after_up(self.project, self.report.firewall)
        except FenceFailed as err:
            self.report.firewall = err.entry
            raise

    def gate(self, services: dict, before_ids: dict[str, str], proxy_before: str | None) -> str:
        """healthy or unhealthy: the services, then the UI and API through the proxy."""
        self.demo_load = demodata.EarlyLoad(self.s, self.project)
        status, containers, ready_at = self.stack.wait_healthy(services, self.deadline, self.demo_load.on_ready)
        self.phase("healthy")
        self.report.critical_path = self.stack.judge(services, containers, ready_at, before_ids, self.started,
                                                     self.report.services)
        self.report.unhealthy = sorted(svc for svc in services if self.report.services[svc].health != "healthy")
        if status == "healthy":  # the services are; now what visitors reach
            self.report.proxy = self.proxy.wait_through(self.project, self.deadline)
            self.report.proxy["recreated"] = self.proxy.container_id(self.project) != proxy_before
            if self.report.proxy["error"]:
                self.report.unhealthy = [proxy.SERVICE]
                return "unhealthy"
        return status

    def serve_https(self) -> None:
        """With a domain, HTTPS after the stack (it keeps serving meanwhile); no rollback for it."""
        if not self.s.domain:
            return
        self.report.proxy.update(self.proxy.gate(self.project))
        if self.report.proxy["error"]:
            raise DeployError(f"HTTPS for {self.s.domain}: {self.report.proxy['error']} "
                              f"(the stack itself is healthy and stays up)")

    # --- after the gate ----------------------------------------------------------------

    def keep_healthy(self) -> None:
        """Record this deploy as the rollback target and its settings for `engine reset`,
        then remove images nothing keeps."""
        s, previous, spec = self.s, rollback.load(self.s.state_dir), self.spec
        try:
            image_ids = {svc: c["Image"] for svc, c in self.stack.containers().items()}
            record = spec.record(s, self.report.commit, self.project, image_ids)
            rollback.save(s.state_dir, record)
            source.pin(s.project_dir, rollback.PIN_REF, self.report.commit)
            if self.remembers_settings:
                remember(s)  # only now: a reset never replays the settings of a deploy that failed
            if previous and (previous["runImages"], previous["imageIds"]) == (spec.run_images, image_ids):
                self.report.disk = diskcare.unchanged()
            else:
                self.report.disk = diskcare.care(record, previous, set(), bool(self.report.built_locally))
        except Exception as err:  # noqa: BLE001 - the stack is healthy; these only help the next deploy
            log(f"deploy: WARNING: recording the healthy deploy or disk care failed: {type(err).__name__}: {err}")

    def roll_back(self) -> None:
        """Put the last healthy deploy back: its commit, .env and pinned images, on the same volumes."""
        s, spec, record = self.s, self.spec, rollback.load(self.s.state_dir)
        entry = self.report.rollback = RollbackEntry(reason=rollback.why_none(s, record, self.report.commit, spec))
        if entry.reason:
            log(f"rollback: none: {entry.reason}")
            return
        self.restore(record, entry)

    def restore(self, record: dict, entry: RollbackEntry, full_up: bool = False) -> None:
        """Run the recorded deploy again (rollback.Restore; `entry` says how it went): when it
        is healthy, the report says rolled-back and what serves, and the failed deploy's images go."""
        self.project = record["project"]
        self.secrets += list(envfile.with_secrets(envfile.parse(record["env"])).values())
        self.stack = rollback.Restore(self.s, self.proxy, self.fence_running, self.secrets).run(record, entry, full_up)
        if entry.status != "healthy":
            return
        self.report.status, self.report.serving = "rolled-back", entry.to
        try:
            self.report.disk = diskcare.care(record, None, set(self.spec.run_images.values()), bool(self.report.built_locally))
        except Exception as err:  # noqa: BLE001 - the demo serves again; space only helps the next deploy
            log(f"disk: care skipped: {type(err).__name__}: {err}")

