"""One deploy: fetch the project at a ref, check it, pull, build what cannot be pulled,
start, prove healthy, report; put the last healthy deploy back when this one fails.

    pre-checks -> fetch -> compatibility check (staged) -> pull (retried; a missing tag
    is not) -> scanner firewall -> switch the project -> local build of what is missing -> up
    -> health gate (deadline; the services, then the UI and API through the proxy)
    -> demo data -> HTTPS (with a domain)
    -> stack healthy: record it, disk care / otherwise: roll back -> report

Nothing the running stack uses changes before the switch: a ref that fails the check
or an image that cannot be had leaves the demo as it was.

Progress goes to stderr; the report (JSON, README "Deploy report") is written to
<state-dir>/deploy.json and printed as the last stdout line. Exit 0 only when healthy.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import json
import os
import shutil
import time
from datetime import datetime, timezone

from engine import REPORT_SCHEMA, compat, demodata, diskcare, envfile, firewall, override, plan, proxy, rollback, rules
from engine.docker import Compose, Result, log, project_containers, run
from engine.settings import Settings, remember

POLL_SECONDS = 0.25
# `up` gets at least this long, even when the deadline is near: a killed `up` helps nobody.
MIN_UP_SECONDS = 60
FETCH_ATTEMPTS = 3
LOCK_FILE = "deploy.lock"
REPORT_FILE = "deploy.json"
RUN_OVERRIDE = "compose.run.yaml"
SHAPE_FILE = "deployed-shape.json"
STAGING_DIR = "staging"  # where a new ref's compose file is checked before anything switches
SWAP_FILE = "build.swap"
SWAP_SIZE = "4G"


class DeployError(Exception):
    """A deploy stopped with a reason a person can act on."""


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Deploy:
    report_file = REPORT_FILE

    def __init__(self, settings: Settings):
        self.s = settings
        self.started = time.time()
        self.deadline = self.started + settings.health_timeout
        self.secrets: list[str] = []
        self.report: dict = {
            "schema": REPORT_SCHEMA, "status": "failed", "error": None, "ref": settings.ref, "gitRef": settings.git_ref,
            "commit": None, "refFellBack": False, "project": None, "imageTag": settings.image_tag, "registry": settings.registry,
            "startedAt": utc_now(), "finishedAt": None, "totalSeconds": None, "pullRounds": 0,
            "phases": {"install": settings.install_seconds, "fetch": 0, "check": 0, "pull": 0, "build": 0, "up": 0, "healthy": 0},
            "startInterval": False, "startIntervalNote": None, "imageFallbacks": plan.image_fallbacks(settings.image_tag, settings.image_tags),
            "builtLocally": [], "buildSeconds": {}, "unhealthy": [], "problems": [], "criticalPath": [], "services": {},
            "rollback": None, "serving": None, "disk": None, "moved": {}, "commitRange": None, "firewall": None, "proxy": None,
        }
        self.phase_started = time.monotonic()
        self.report["phases"]["install"] = settings.install_seconds or first_boot_install_seconds(settings.state_dir)
        self.up_error = ""
        self.same_settings = False
        self.switched = False  # the project dir and .env are the new deploy's: a failure now needs a rollback
        self.stack_healthy = False  # every service passed the gate (HTTPS may still fail: no rollback for that)
        self.run_images: dict[str, str] = {}
        self.override_text = ""
        self.env_text = ""
        self.scanner: firewall.Scanner | None = None
        # Here, not in steps(): a reset that fails before the pull still restores through it.
        self.proxy = proxy.Proxy(settings)
        self.proxy_extra: dict = {}
        self.proxy_before: str | None = None

    # --- helpers -----------------------------------------------------------------------

    def phase(self, name: str) -> None:
        self.report["phases"][name] = round(time.monotonic() - self.phase_started, 1)
        self.phase_started = time.monotonic()

    def remaining(self) -> float:
        return max(self.deadline - time.time(), 1.0)

    def fail(self, message: str) -> None:
        raise DeployError(message)

    # --- the deploy ----------------------------------------------------------------------

    def run(self) -> int:
        os.makedirs(self.s.state_dir, mode=0o755, exist_ok=True)
        with open(os.path.join(self.s.state_dir, LOCK_FILE), "w") as lock:
            try:
                self.lock(lock)
                self.attempt()
                self.conclude()
            except Exception as err:  # noqa: BLE001 - the lock, or a bug: either must leave a report behind
                self.failed(err)
            finally:
                self.report["finishedAt"] = utc_now()
                self.report["totalSeconds"] = round(time.time() - self.started, 1)
                self.write_report()  # inside the lock: the next deploy reads this one's report
        self.say_outcome()
        return self.exit_code()

    def exit_code(self) -> int:
        return plan.exit_code(self.report["status"])

    def conclude(self) -> None:
        """After the steps: record a healthy stack, or put the last healthy one back."""
        if self.stack_healthy:
            self.keep_healthy()
        elif self.switched:
            self.roll_back()

    def say_outcome(self) -> None:
        if self.report["status"] == "healthy":
            log(f"deploy: healthy in {self.report['totalSeconds']}s (tag {self.s.image_tag}, commit {(self.report['commit'] or '')[:12]})")
        elif self.report["status"] == "rolled-back":
            log(f"deploy: ROLLED BACK: {self.report['error']}; the demo still serves the previous version: "
                f"{rollback.describe(self.report['serving'])}")

    def attempt(self) -> None:
        """The deploy's steps; whatever stops them is reported, and a switched project rolls back."""
        try:
            self.steps()
        except Exception as err:  # noqa: BLE001 - a bug after the switch must still roll back
            self.failed(err)

    def steps(self) -> None:
        self.precheck()
        self.remember_settings()
        self.fetch()
        services = self.check()
        self.phase("check")
        digests = self.pull(services)
        self.proxy_extra = self.proxy.prepare(self.remaining())
        if self.proxy.error:  # before the switch: the running stack and its proxy stay as they are
            self.fail(self.proxy.error)
        self.fence()  # before anything starts the engine: its rules hold from the first packet
        self.before_switch()
        compose = self.switch()
        built = self.build(compose, services, digests)
        self.up(compose, services, digests, built)
        self.report["status"] = self.gate(compose, services)
        if self.report["status"] == "healthy":
            self.stack_healthy = True
            self.report["demoData"] = demodata.seed(self.s, self.project)  # after the gate: never decides health
            if self.s.domain:  # HTTPS after the stack: it keeps serving meanwhile
                self.report["proxy"].update(self.proxy.gate(self.project))
                if self.report["proxy"]["error"]:
                    self.fail(f"HTTPS for {self.s.domain}: {self.report['proxy']['error']} "
                              f"(the stack itself is healthy and stays up)")
        else:
            bad = self.report["unhealthy"]
            through = (self.report.get("proxy") or {}).get("error")  # the services are healthy, visitors not served
            self.report["error"] = through or f"not healthy within {self.s.health_timeout}s: {', '.join(bad)}"
            self.diagnose(compose, bad)

    def failed(self, err: Exception) -> None:
        message = str(err) if isinstance(err, DeployError) else f"internal error ({type(err).__name__}): {err}"
        self.report["status"], self.report["error"] = "failed", envfile.redact(message, self.secrets)
        self.report["problems"] = [envfile.redact(p, self.secrets) for p in self.report["problems"]]
        log(f"deploy: ERROR: {self.report['error']}")

    def lock(self, handle) -> None:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.time() >= self.deadline:
                    self.fail(f"another deploy held {self.s.state_dir}/{LOCK_FILE} for {self.s.health_timeout}s")
                log("deploy: another deploy is running; waiting for it")
                time.sleep(2)

    def precheck(self) -> None:
        """Fail before anything is fetched or pulled, saying what to do."""
        if not shutil.which("docker"):
            self.fail("docker is not installed; run the engine's install step first")
        info = run(["docker", "version", "--format", "{{.Server.APIVersion}}"], timeout=30)
        if not info.ok:
            self.fail("the Docker daemon is not running or not reachable at "
                      f"{os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')}; start it (systemctl start docker)")
        compose = run(["docker", "compose", "version", "--short"], timeout=30)
        if not compose.ok:
            self.fail("the Docker Compose v2 plugin is missing ('docker compose version' fails); install docker-compose-plugin")
        if not shutil.which("git"):
            self.fail("git is not installed; run the engine's install step first")
        if override.too_old_for_override(compose.out.strip()):
            self.fail(f"Docker Compose {compose.out.strip()} is older than {override.MIN_COMPOSE_OVERRIDE_TEXT}, which the "
                      "engine's override needs (`!override` of ports); install docker-compose-plugin from Docker's repository")
        why_not = override.start_interval_support(info.out.strip(), compose.out.strip())
        self.report["startInterval"], self.report["startIntervalNote"] = why_not is None, why_not
        if why_not:
            log(f"deploy: health checks keep upstream's intervals: {why_not}")
        root = diskcare.docker_root()
        free_gb = diskcare.free_gb(root)
        if free_gb < self.s.min_free_gb:
            self.fail(diskcare.low_disk_advice(root, free_gb, self.s.min_free_gb))

    def fetch(self) -> None:
        d, s = self.s.project_dir, self.s
        log(f"fetch: {s.repo_url} at {s.git_ref}")
        os.makedirs(d, mode=0o755, exist_ok=True)
        git = ["git", "-C", d]
        if not os.path.isdir(os.path.join(d, ".git")):
            run([*git, "init", "-q"])
            run([*git, "remote", "add", "origin", s.repo_url])
        else:
            run([*git, "remote", "set-url", "origin", s.repo_url])
        result = Result(1, "", "")
        # A pinned commit is fetched by its id: the ref may have moved since the program resolved it.
        wanted = s.commit or s.git_ref
        for attempt in range(1, FETCH_ATTEMPTS + 1):
            result = run([*git, "fetch", "-q", "--depth", "1", "origin", wanted], timeout=min(300, self.remaining()))
            if result.ok:
                break
            if s.commit and any(m in result.err for m in ("not our ref", "no such remote ref", "unadvertised object")):
                self.fail(f"commit {s.commit[:12]} of {s.git_ref} is not in {s.repo_url} (any more): run pulumi up again "
                          "to deploy what the ref points at now")
            if any(m in result.err for m in ("couldn't find remote ref", "not our ref", "no such remote ref")):
                log(f"fetch: WARNING: {s.git_ref} does not exist in {s.repo_url}; deploying its default branch instead")
                self.report["refFellBack"] = True
                result = run([*git, "fetch", "-q", "--depth", "1", "origin", "HEAD"], timeout=300)
                break
            log(f"fetch: attempt {attempt} failed: {result.last_line()}")
            if attempt < FETCH_ATTEMPTS and time.time() + attempt * 2 < self.deadline:
                time.sleep(attempt * 2)
        if not result.ok:
            self.fail(f"cannot fetch {s.repo_url} at {wanted}: {result.last_line()}")
        # Objects only: the checkout waits for the switch, after the check and the pull.
        self.report["commit"] = run([*git, "rev-parse", "FETCH_HEAD^{commit}"]).out.strip()
        shown = run([*git, "show", f"{self.report['commit']}:docker-compose.yaml"])
        if not shown.ok:
            self.fail(f"{s.repo_url} at {s.git_ref} has no docker-compose.yaml")
        self.compose_text = shown.out
        self.phase("fetch")

    def check(self) -> dict:
        """Render the new project in a staging dir and refuse what cannot work: before any
        pull, and before the running project changes."""
        d, s = self.s.project_dir, self.s
        env_path = os.path.join(d, ".env")
        old_env = open(env_path).read() if os.path.exists(env_path) else ""
        secrets = envfile.with_secrets(envfile.parse(old_env))
        api_key = envfile.ensure_api_key(d)  # only written when missing: the running stack's stays
        self.secrets = [*secrets.values(), api_key]
        new_env = self.env_text = envfile.render(secrets, s.public_host, s.image_tag, rules.UI_PORT, rules.API_PORT,
                                                 domain=s.domain)
        self.same_settings = envfile.same_but_tag(old_env, new_env)

        # Same base name as the project dir: compose names an unnamed project after it.
        stage = os.path.join(s.state_dir, STAGING_DIR, os.path.basename(d.rstrip("/")))
        shutil.rmtree(os.path.dirname(stage), ignore_errors=True)
        os.makedirs(stage, mode=0o700)
        with open(os.path.join(stage, "docker-compose.yaml"), "w") as f:
            f.write(self.compose_text)
        envfile.write_private(os.path.join(stage, ".env"), new_env)
        os.symlink(os.path.join(d, "secrets"), os.path.join(stage, "secrets"))
        try:
            return self.check_staged(Compose(stage))
        finally:
            shutil.rmtree(os.path.dirname(stage), ignore_errors=True)

    def check_staged(self, compose: Compose) -> dict:
        rendered, error = compose.config()
        if rendered is None:
            self.report["problems"] = compat.render_problems(error)
            self.fail("compatibility check: " + "; ".join(self.report["problems"]))
        env = {**envfile.parse(self.env_text), **os.environ}  # compose: the process env wins over .env
        probe, probed = compat.probe_text(self.compose_text, env), None
        if probe != self.compose_text:  # the staged copy again, with markers where values render empty
            with open(compose.files[0], "w") as f:
                f.write(probe)
            probed = compose.config()[0]
            if probed is None:
                log("check: WARNING: could not render the project with empty variables marked; "
                    "health checks that render empty are not detected")
        problems = compat.problems(rendered, probed)
        if problems:
            self.report["problems"] = problems
            self.fail("compatibility check: " + "; ".join(problems))
        self.project = self.report["project"] = rendered.get("name") or rules.DEFAULT_PROJECT
        return rendered["services"]

    def remember_settings(self) -> None:
        remember(self.s)  # what `engine reset` deploys again: the settings asked for last

    def before_switch(self) -> None:
        """The last moment the running stack is as it was (a reset wipes it here)."""

    def switch(self) -> Compose:
        """The project dir and .env become the new deploy's; from here a failure rolls back."""
        d = self.s.project_dir
        self.switched = True
        self.checkout(self.report["commit"])
        envfile.write_private(os.path.join(d, ".env"), self.env_text)
        return Compose(d)

    def checkout(self, commit: str) -> None:
        d = self.s.project_dir
        result = run(["git", "-C", d, "-c", "advice.detachedHead=false", "checkout", "-q", "--force", commit])
        if not result.ok:
            self.fail(f"cannot check out {commit[:12]} in {d}: {result.last_line()}")
        # rabbitmq reads its bind-mounted config as another user (upstream issue #128).
        conf = os.path.join(d, "rabbitmq", "rabbitmq.conf")
        if os.path.isfile(conf):
            os.chmod(conf, 0o644)

    def pull(self, services: dict) -> dict[str, str]:
        """image -> pulled digest, for every image that could be pulled."""
        s = self.s
        images = sorted(set(plan.images_of(services).values()))
        digests: dict[str, str] = {}
        pending = []
        for image in images:
            pinned = s.image_digests.get(image)
            local = self.digest(image)
            if pinned and local == pinned:
                log(f"pull: {s.pull_ref_of(image)} (the digest the preflight saw) is present")
                digests[image] = local
            elif not pinned and rules.is_immutable_tag(s.tag_of(image)) and local:
                log(f"pull: {s.ref_of(image)} never moves and is present")
                digests[image] = local
            else:
                pending.append(image)
        self.missing: list[str] = []
        delays = plan.retry_delays(s.pull_attempts, s.pull_delay)
        while pending:
            self.report["pullRounds"] += 1
            log(f"pull: round {self.report['pullRounds']}: {' '.join(pending)}")
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(pending)) as pool:
                results = dict(zip(pending, pool.map(
                    lambda i: run(["docker", "pull", "--quiet", s.pull_ref_of(i)], timeout=self.remaining()), pending)))
            retry = []
            for image, result in results.items():
                if result.ok:
                    digests[image] = self.digest(image) or ""
                elif plan.pull_is_hopeless(result.err + result.out):
                    log(f"pull: {s.pull_ref_of(image)} is not published")
                    self.missing.append(image)
                else:
                    log(f"pull: {s.pull_ref_of(image)} failed: {result.last_line()}")
                    retry.append(image)
            pending = retry
            if not pending:
                break
            rounds = self.report["pullRounds"]
            wait = plan.next_retry(rounds, delays, time.time(), self.deadline)
            if wait is None:
                log(f"pull: giving up on {' '.join(pending)} after {rounds} attempts")
                self.missing += pending
                break
            log(f"pull: retrying in {wait:.0f}s")
            time.sleep(wait)
        self.phase("pull")
        return digests

    def digest(self, image: str) -> str | None:
        """The registry digest of the local image the deploy would run: the pinned one, else the tag's."""
        ref = self.s.pull_ref_of(image)
        r = run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref], timeout=60)
        repo = f"{self.s.registry}/{image}"
        found = [entry.split("@", 1)[1] for entry in ((json.loads(r.out) or []) if r.ok else [])
                 if entry.startswith(repo + "@")]
        pinned = self.s.image_digests.get(image)
        return pinned if pinned in found else (found[0] if found else None)

    def build(self, compose: Compose, services: dict, digests: dict[str, str]) -> set[str]:
        """Build locally what could not be pulled; the time is added to the deadline."""
        missing = sorted(set(self.missing))
        if not missing:
            return set()
        build_file = os.path.join(self.s.project_dir, "docker-compose.build.yaml")
        if not os.path.isfile(build_file):
            self.fail(f"cannot pull {', '.join(missing)} and {self.s.git_ref} has no docker-compose.build.yaml to build them")
        names = plan.images_of(services)
        tags_path = os.path.join(self.s.state_dir, "compose.build-tags.yaml")
        with open(tags_path, "w") as f:  # built images get the tag the deploy runs
            f.write("services:\n" + "".join(f"  {svc}:\n    image: {json.dumps(self.s.ref_of(names[svc]))}\n" for svc in sorted(services)))
        builder = compose.with_files(build_file, tags_path)
        swap = self.add_swap()
        budget_end = time.monotonic() + self.s.build_timeout
        try:
            for image in missing:
                service = image if image in services else next(s for s, i in names.items() if i == image)
                log(f"build: {image} (service {service}); upstream builds take minutes to tens of minutes")
                started = time.monotonic()
                result = builder("build", service, timeout=max(budget_end - time.monotonic(), 1))
                self.report["buildSeconds"][image] = round(time.monotonic() - started, 1)
                if not result.ok:
                    self.fail(f"local build of {image} failed: {envfile.redact(result.last_line(), self.secrets)}")
                self.report["builtLocally"] += sorted(svc for svc, i in names.items() if i == image)
        finally:
            self.remove_swap(swap)
        self.report["builtLocally"].sort()
        spent = sum(self.report["buildSeconds"].values())
        self.deadline += spent
        self.phase("build")
        return set(missing)

    def add_swap(self) -> str | None:
        mem = next((int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal:")), 0)
        if not plan.needs_swap(mem):
            return None
        path = os.path.join(self.s.state_dir, SWAP_FILE)
        steps = [["fallocate", "-l", SWAP_SIZE, path], ["chmod", "600", path], ["mkswap", path], ["swapon", path]]
        for argv in steps:
            if not run(argv, timeout=120).ok:
                log(f"build: no swap file ({argv[0]} failed); building without")
                self.remove_swap(path)
                return None
        log(f"build: {SWAP_SIZE} swap file while building ({mem / 1024**3:.1f} GiB of memory)")
        return path

    def remove_swap(self, path: str | None) -> None:
        if path:
            run(["swapoff", path], timeout=300)
            if os.path.exists(path):
                os.remove(path)

    def up(self, compose: Compose, services: dict, digests: dict[str, str], built: set[str]) -> None:
        s, names = self.s, plan.images_of(services)
        wanted = {svc: plan.run_image(s.registry, names[svc], s.ref_of(names[svc]), digests.get(names[svc]))
                  for svc in services}
        for svc in services:
            image = names[svc]
            self.report["services"][svc] = {"image": s.ref_of(image), "digest": digests.get(image),
                                            "builtLocally": image in built, "recreated": False, "health": "unknown"}
        path = os.path.join(s.state_dir, RUN_OVERRIDE)
        extra = self.proxy_extra
        text = override.render(services, wanted, fast_health=self.report["startInterval"],
                               start_period=s.health_timeout, **extra)
        with open(path, "w") as f:
            f.write(text)
        self.run_images, self.override_text = wanted, text
        self.report["moved"], self.report["commitRange"] = plan.moved(rollback.load(s.state_dir), wanted,
                                                                      self.report["commit"])
        self.compose = compose.with_files(path)
        # What compose would see change apart from images: the commit, the override's shape.
        shape = json.dumps([self.report["commit"], override.render(
            services, dict.fromkeys(services, ""), fast_health=self.report["startInterval"],
            start_period=s.health_timeout, **extra)])
        shape_file = os.path.join(s.state_dir, SHAPE_FILE)
        same_shape = os.path.exists(shape_file) and open(shape_file).read() == shape
        self.shape = shape
        proxy_now = self.proxy.container(self.project)
        self.proxy_before = (proxy_now or {}).get("Id")
        if not (same_shape and proxy.is_running(proxy_now)):  # same shape: its spec is what it runs
            self.proxy.ensure(self.compose)  # first: visitors get "being updated" while services move
        before, _, result = self.bring_up(wanted, same_shape and self.same_settings, "up")
        self.before_ids = {svc: c["Id"] for svc, c in before.items()}
        with open(shape_file, "w") as f:
            f.write(shape)
        self.fence_running()
        self.phase("up")
        if self.up_error:
            containers = {plan.service_of(c): c for c in project_containers(self.project)}
            absent = sorted(set(services) - set(containers))
            if absent:  # a dependency that failed, a port in use, a cpus limit above the host's: no wait helps
                bad = sorted(svc for svc in services if svc in absent or plan.verdict_of(containers[svc]) != plan.OK)
                for svc in bad:
                    self.report["services"][svc]["health"] = plan.health_word(containers.get(svc))
                self.report["unhealthy"] = bad
                self.diagnose(compose, bad)
                self.fail(f"docker compose up created no container for {', '.join(absent)}: "
                          f"{envfile.redact(result.last_line(), self.secrets)}")

    def fence(self) -> None:
        """The scanner's firewall (engine/firewall.py), applied and saved for the boot unit;
        a failure stops the deploy before the switch, with the running stack as it was."""
        if not self.s.firewall:
            self.report["firewall"] = firewall.off_report()
            log("firewall: WARNING: off (--no-firewall): sirius-engine may reach any address")
            return
        self.scanner = firewall.Scanner(self.s.scan_targets, self.s.state_dir, self.s.firewall_parent)
        try:
            self.scanner.plan()
            self.report["firewall"] = self.scanner.apply()
        except (firewall.FirewallError, ValueError, OSError) as err:
            self.report["firewall"] = {**firewall.off_report(), "status": "failed", "notes": [], "error": str(err)}
            self.fail(f"scanner firewall: {err}")

    def fence_running(self) -> None:
        """After an `up`: fence the engine where it actually runs. If that fails, stop it: a
        scanner without its rules must not run."""
        if self.scanner is None:
            return
        try:
            entry = self.scanner.after_up(self.project)
            if entry:
                self.report["firewall"] = entry
        except (firewall.FirewallError, ValueError, OSError) as err:
            stopped = firewall.stop_scanner(self.project)
            self.report["firewall"] = {**(self.report["firewall"] or {}), "status": "failed", "error": str(err)}
            self.fail(f"scanner firewall: {err}; " + (f"{rules.SCANNER_SERVICE} stopped" if stopped else
                                                      f"could not stop {rules.SCANNER_SERVICE}"))

    def wait_healthy(self, services: dict) -> tuple[str, dict, dict[str, float]]:
        """Poll every service until all are ok, one has failed for good, or the deadline:
        the verdict, the containers last seen, and when each turned ok."""
        ready_at: dict[str, float] = {}
        while True:
            now = time.time()
            containers = {plan.service_of(c): c for c in project_containers(self.project)}
            verdicts = {svc: plan.verdict_of(containers[svc]) if svc in containers else plan.WAITING for svc in services}
            for svc, verdict in verdicts.items():
                if verdict == plan.OK and svc not in ready_at:
                    # Docker's own record when it has one: services can turn healthy while
                    # `up` still waits for their dependants, before this loop runs.
                    ready_at[svc] = min(now, plan.ready_time(containers[svc]) or now)
            status = plan.gate(verdicts, now, self.deadline)
            if status:
                return status, containers, ready_at
            time.sleep(POLL_SECONDS)

    def bring_up(self, wanted: dict[str, str], same_project: bool, who: str) -> tuple[dict, plan.UpPlan, Result]:
        """`up` as plan.plan_up decides for `wanted` (service -> image): the containers found
        before it, the plan and compose's result."""
        before = {plan.service_of(c): c for c in project_containers(self.project)}
        step = plan.plan_up(wanted, {svc: c["Config"]["Image"] for svc, c in before.items()},
                            {svc: plan.verdict_of(c) for svc, c in before.items()}, same_project)
        log(f"{who}: {step.kind}" + (f" ({' '.join(step.services)})" if step.services else ""))
        return before, step, self.compose_up(step)

    def compose_up(self, step: plan.UpPlan) -> Result:
        """Run the plan's `docker compose up`; `up_error` keeps compose's complaint, redacted."""
        args = step.compose_args()
        result = self.compose(*args, timeout=max(self.remaining(), MIN_UP_SECONDS)) if args else Result(0, "", "")
        self.up_error = "" if result.ok else envfile.redact(result.err[-3000:], self.secrets)
        if not result.ok:
            log(f"up: docker compose up did not finish cleanly: {envfile.redact(result.last_line(), self.secrets)}")
        return result

    def gate(self, compose: Compose, services: dict) -> str:
        status, containers, ready_at = self.wait_healthy(services)
        self.phase("healthy")
        for svc in services:
            c = containers.get(svc)
            entry = self.report["services"][svc]
            entry["health"] = plan.health_word(c)
            entry["recreated"] = c is not None and self.before_ids.get(svc) != c["Id"]
            created = plan.docker_time(c["Created"]) if c else None
            started = plan.docker_time((c["State"] or {}).get("StartedAt", "")) if c else None
            fresh = entry["recreated"]
            entry["createdSeconds"] = round(created - self.started, 1) if fresh and created else None
            entry["startedSeconds"] = round(started - self.started, 1) if fresh and started else None
            entry["healthySeconds"] = round(ready_at[svc] - self.started, 1) if fresh and svc in ready_at else None
        depends = {svc: sorted((spec.get("depends_on") or {}).keys()) for svc, spec in services.items()}
        fresh_ready = {svc: t for svc, t in ready_at.items() if self.report["services"][svc]["recreated"]}
        self.report["criticalPath"] = plan.critical_path(depends, fresh_ready)
        self.report["unhealthy"] = sorted(svc for svc in services if self.report["services"][svc]["health"] != "healthy")
        if status == "healthy":  # the services are; now what visitors reach
            self.report["proxy"] = self.proxy.wait_through(self.project, self.deadline)
            self.report["proxy"]["recreated"] = self.proxy.container_id(self.project) != self.proxy_before
            if self.report["proxy"]["error"]:
                self.report["unhealthy"] = [proxy.SERVICE]
                return "unhealthy"
        return status

    # --- after the gate ----------------------------------------------------------------

    def keep_healthy(self) -> None:
        """Record this deploy as the rollback target, then remove images nothing keeps."""
        s, previous = self.s, rollback.load(self.s.state_dir)
        try:
            image_ids = {plan.service_of(c): c["Image"] for c in project_containers(self.project)}
            record = {"ref": s.ref, "imageTag": s.image_tag, "commit": self.report["commit"], "project": self.project,
                      "runImages": self.run_images, "imageIds": image_ids, "shape": self.shape, "env": self.env_text,
                      "override": self.override_text, "deployedAt": utc_now()}
            rollback.save(s.state_dir, record)
            run(["git", "-C", s.project_dir, "update-ref", rollback.PIN_REF, self.report["commit"]])
            if previous and (previous["runImages"], previous["imageIds"]) == (self.run_images, image_ids):
                self.report["disk"] = diskcare.unchanged()
            else:
                self.disk_care(record, previous)
        except Exception as err:  # noqa: BLE001 - the stack is healthy; these only help the next deploy
            log(f"deploy: WARNING: recording the healthy deploy or disk care failed: {type(err).__name__}: {err}")

    def disk_care(self, running: dict, target: dict | None) -> None:
        """Remove the Sirius images neither the running deploy nor the rollback target uses."""
        keep = set(running["imageIds"].values()) | set((target or {}).get("imageIds", {}).values())
        failed = set(self.run_images.values())  # after a rollback: the failed deploy's images go too
        repositories = {diskcare.repository_of(ref) for r in (running, target) if r
                        for ref in [*r["runImages"].values(), *failed]}
        self.report["disk"] = diskcare.prune(repositories, keep, build_cache=bool(self.report["builtLocally"]))

    def roll_back(self) -> None:
        """Put the last healthy deploy back: its commit, .env and pinned images, on the same volumes."""
        s = self.s
        record = rollback.load(s.state_dir)
        entry = self.report["rollback"] = {"status": "none", "reason": None, "to": None, "seconds": None, "unhealthy": []}
        if not s.rollback:
            entry["reason"] = "rollback is off (--no-rollback)"
        elif record is None:
            entry["reason"] = "no earlier healthy deploy on this host"
        elif rollback.is_same_deploy(record, self.report["commit"], self.run_images, self.env_text, self.override_text):
            entry["reason"] = "the failed deploy is the last healthy one; nothing else to put back"
        if entry["reason"]:
            log(f"rollback: none: {entry['reason']}")
            return
        self.restore(record, entry)

    def restore(self, record: dict, entry: dict, full_up: bool = False) -> None:
        """Run the recorded deploy again (its volumes as they are now) and wait for it: `entry`
        (the report's rollback) says how that went; report status rolled-back when healthy.
        `full_up`: a plain `up` of every service (after a reset's wipe there is nothing to keep)."""
        s = self.s
        entry["to"] = rollback.served(record)
        log(f"rollback: putting back {rollback.describe(record)}")
        started = time.monotonic()
        self.deadline = time.time() + s.health_timeout
        self.project = record["project"]
        self.secrets += list(envfile.with_secrets(envfile.parse(record["env"])).values())
        try:
            # Same shape and settings as the failed deploy but for images: recreate only what
            # it changed, as a tag change does; otherwise a full `up`.
            env_path, shape_path = os.path.join(s.project_dir, ".env"), os.path.join(s.state_dir, SHAPE_FILE)
            same_project = not full_up and (os.path.exists(shape_path) and open(shape_path).read() == record.get("shape")
                            and envfile.same_but_tag(open(env_path).read(), record["env"]))
            self.checkout(record["commit"])
            envfile.write_private(env_path, record["env"])
            path = os.path.join(s.state_dir, RUN_OVERRIDE)
            with open(path, "w") as f:
                f.write(record["override"])
            with open(shape_path, "w") as f:
                f.write(record.get("shape") or "")
            self.compose = Compose(s.project_dir, path)
            proxied = f"  {proxy.SERVICE}:" in record["override"]  # a record from before the proxy has none
            if proxied:
                self.proxy.ensure(self.compose)
            before, step, result = self.bring_up(record["runImages"], same_project, "rollback: up")
            # A service the failed deploy left crash-looping (its dependency was down) starts
            # afresh: `up` keeps a container whose config did not change, restart count and all.
            stuck = sorted(svc for svc, c in before.items()
                           if plan.verdict_of(c) == plan.FAILED and svc not in step.services)
            if result.ok and stuck:
                log(f"rollback: restarting {' '.join(stuck)}")
                self.compose_up(plan.UpPlan("recreate", tuple(stuck)))
            self.fence_running()  # after the last `up`: where the restored engine really runs
            services = record["runImages"]
            status, containers, _ = self.wait_healthy(services)
            entry["unhealthy"] = sorted(svc for svc in services
                                        if svc not in containers or plan.verdict_of(containers[svc]) != plan.OK)
            if status != "healthy":
                self.diagnose(self.compose, entry["unhealthy"])
                self.fail(f"not healthy within {s.health_timeout}s: {', '.join(entry['unhealthy'])}")
            through = self.proxy.wait_through(self.project, self.deadline) if proxied else {"error": None}
            if through["error"]:
                entry["unhealthy"] = [proxy.SERVICE]
                self.diagnose(self.compose, entry["unhealthy"])
                self.fail(through["error"])
        except DeployError as err:
            entry["status"], entry["reason"] = "failed", envfile.redact(str(err), self.secrets)
            log(f"rollback: FAILED: {entry['reason']}; the demo is down")
        else:
            entry["status"] = "healthy"
            self.report["status"], self.report["serving"] = "rolled-back", rollback.served(record)
            try:
                self.disk_care(record, None)
            except Exception as err:  # noqa: BLE001 - the demo serves again; space only helps the next deploy
                log(f"disk: care skipped: {type(err).__name__}: {err}")
        finally:
            entry["seconds"] = round(time.monotonic() - started, 1)

    def diagnose(self, compose: Compose, bad: list[str]) -> None:
        """Which service, why, and the tail of its logs, with every secret blanked."""
        parts = [f"=== diagnostics: not healthy after {time.time() - self.started:.0f}s: {' '.join(bad)}"]
        if self.up_error:
            parts += ["--- docker compose up", self.up_error]
        parts += ["--- docker compose ps", self.compose("ps", "-a", timeout=60).out]
        containers = {plan.service_of(c): c for c in project_containers(self.project)}
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

    def write_report(self) -> None:
        text = json.dumps(self.report, separators=(",", ":"))
        path = os.path.join(self.s.state_dir, self.report_file)
        with open(path + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(path + ".tmp", path)
        print(text, flush=True)


def first_boot_install_seconds(state_dir: str) -> float:
    """The OS setup's time, for the first deploy's report (engine/bootstrap.py records it)."""
    if os.path.exists(os.path.join(state_dir, REPORT_FILE)):
        return 0.0
    try:
        return float(json.load(open(os.path.join(state_dir, "bootstrap.json")))["phases"]["install"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
