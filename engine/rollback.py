"""The last healthy deploy on this host, and putting it back when a deploy fails.

After every healthy deploy the engine keeps what ran in one file, `last-healthy.json`
in the state dir (0600, root's, like .env: it holds the same secrets), replaced whole so
it is never half-written:
- the ref, tag and commit, and the project's name;
- the image each service ran (by digest, or the local tag of a local build) and the
  image ids, for the report and for disk care;
- the .env it ran with (the same secrets: .env keeps them across deploys);
- the generated override, which pins every image and carries the same ports, bind
  address, health timing and proxy config (the Caddyfile is named by its content).
The git ref `refs/sirius-demo/last-healthy` keeps the commit from being pruned.

Putting these back and running `up` gives the same containers on the same volumes
(`Restore`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from engine import envfile, plan, proxy, source
from engine.docker import Compose, log
from engine.errors import DeployError
from engine.report import RollbackEntry, Served, utc_now
from engine.settings import Settings
from engine.stack import Stack

RECORD = "last-healthy.json"
PIN_REF = "refs/sirius-demo/last-healthy"
RUN_OVERRIDE = "compose.run.yaml"  # in the state dir: the override a deploy runs with
SHAPE_FILE = "deployed-shape.json"  # in the state dir: the running deploy's shape (all but images)
_KEYS = ("ref", "imageTag", "commit", "project", "runImages", "imageIds", "env", "override")


@dataclass(frozen=True)
class RunSpec:
    """What a deploy runs; with its commit, project and image ids, the record of a healthy one."""

    env_text: str = ""
    run_images: dict[str, str] = field(default_factory=dict)  # service -> pinned digest, or a local build's tag
    override_text: str = ""
    shape: str = ""  # what compose would see change apart from images (the commit, the override's form)

    def record(self, s: Settings, commit: str | None, project: str | None, image_ids: dict[str, str]) -> dict:
        return {"ref": s.ref, "imageTag": s.image_tag, "commit": commit, "project": project,
                "runImages": self.run_images, "imageIds": image_ids, "shape": self.shape, "env": self.env_text,
                "override": self.override_text, "deployedAt": utc_now()}


def load(state_dir: str) -> dict | None:
    """The last healthy deploy's record, or None (the first deploy, or an unreadable record)."""
    try:
        record = json.load(open(os.path.join(state_dir, RECORD)))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and all(k in record for k in _KEYS) else None


def save(state_dir: str, record: dict) -> None:
    envfile.write_private(os.path.join(state_dir, RECORD), json.dumps(record, sort_keys=True))


def is_same_deploy(record: dict, commit: str | None, run_images: dict[str, str], env: str, override: str) -> bool:
    """Whether the failed deploy ran exactly what the record holds: then there is nothing to put back."""
    return (record.get("commit"), record.get("runImages"), record.get("env"), record.get("override")) == (
        commit, run_images, env, override)


def why_none(s: Settings, record: dict | None, commit: str | None, failed: RunSpec) -> str | None:
    """Why a failed deploy puts nothing back (None: it puts `record` back)."""
    if not s.rollback:
        return "rollback is off (--no-rollback)"
    if record is None:
        return "no earlier healthy deploy on this host"
    if is_same_deploy(record, commit, failed.run_images, failed.env_text, failed.override_text):
        return "the failed deploy is the last healthy one; nothing else to put back"
    return None


def served(record: dict) -> Served:
    """What the demo serves after a rollback, for the report and the error message."""
    return Served(ref=record.get("ref"), image_tag=record.get("imageTag"), commit=record.get("commit"))


def describe(serving: Served | None) -> str:
    s = serving or Served()
    return f"ref {s.ref}, tag {s.image_tag}, commit {(s.commit or '')[:12]}"


class Restore:
    """Run a recorded deploy again (its volumes as they are now) and wait for it healthy,
    the services and then, when the record has one, the proxy."""

    def __init__(self, s: Settings, front: proxy.Proxy, fence_running: Callable[[], None], secrets: list[str]):
        self.s, self.front, self.fence_running, self.secrets = s, front, fence_running, secrets

    def run(self, record: dict, entry: RollbackEntry, full_up: bool) -> Stack:
        """`entry` (the report's rollback) says how it went; `full_up`: a plain `up` of every
        service (after a reset's wipe there is nothing to keep). The stack as it runs now."""
        s, started = self.s, time.monotonic()
        entry.to = served(record)
        log(f"rollback: putting back {describe(entry.to)}")
        deadline = time.time() + s.health_timeout
        stack = Stack(record["project"], Compose(s.project_dir, os.path.join(s.state_dir, RUN_OVERRIDE)), self.secrets)
        try:
            same_project = self.put_back_files(record, full_up)
            proxied = f"  {proxy.SERVICE}:" in record["override"]  # a record from before the proxy has none
            if proxied:
                self.front.ensure(stack.compose)
            before, step, result = stack.converge(record["runImages"], same_project, deadline, "rollback: up")
            # A service the failed deploy left crash-looping (its dependency was down) starts
            # afresh: `up` keeps a container whose config did not change, restart count and all.
            stuck = sorted(svc for svc, c in before.items()
                           if plan.verdict_of(c) == plan.FAILED and svc not in step.services)
            if result.ok and stuck:
                log(f"rollback: restarting {' '.join(stuck)}")
                stack.run_plan(plan.UpPlan("recreate", tuple(stuck)), deadline)
            self.fence_running()  # after the last `up`: where the restored engine really runs
            self.wait(stack, record["runImages"], entry, proxied, deadline)
        except DeployError as err:
            entry.status, entry.reason = "failed", envfile.redact(str(err), self.secrets)
            log(f"rollback: FAILED: {entry.reason}; the demo is down")
        else:
            entry.status = "healthy"
        finally:
            entry.seconds = round(time.monotonic() - started, 1)
        return stack

    def put_back_files(self, record: dict, full_up: bool) -> bool:
        """The record's commit, .env, override and shape in place; whether only images differ
        from what runs (then `up` recreates only what the failed deploy changed)."""
        s = self.s
        env_path, shape_path = os.path.join(s.project_dir, ".env"), os.path.join(s.state_dir, SHAPE_FILE)
        same_project = not full_up and (os.path.exists(shape_path) and open(shape_path).read() == record.get("shape")
                                        and envfile.same_but_tag(open(env_path).read(), record["env"]))
        source.checkout(s.project_dir, record["commit"])
        envfile.write_private(env_path, record["env"])
        with open(os.path.join(s.state_dir, RUN_OVERRIDE), "w") as f:
            f.write(record["override"])
        with open(shape_path, "w") as f:
            f.write(record.get("shape") or "")
        return same_project

    def wait(self, stack: Stack, services: dict[str, str], entry: RollbackEntry, proxied: bool, deadline: float) -> None:
        status, containers, _ = stack.wait_healthy(services, deadline)
        entry.unhealthy = stack.not_ok(services, containers)
        if status != "healthy":
            stack.diagnose(entry.unhealthy, deadline - self.s.health_timeout)
            raise DeployError(f"not healthy within {self.s.health_timeout}s: {', '.join(entry.unhealthy)}")
        through = self.front.wait_through(stack.project, deadline) if proxied else {"error": None}
        if through["error"]:
            entry.unhealthy = [proxy.SERVICE]
            stack.diagnose(entry.unhealthy, deadline - self.s.health_timeout)
            raise DeployError(through["error"])
