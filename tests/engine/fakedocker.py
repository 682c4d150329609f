"""A fake Docker CLI for fast tests of the deploy, the health report, rollback and disk care.

The engine runs every program through engine.docker.run, which calls `subprocess.run` of
engine.docker's own `subprocess` name: `install(monkeypatch)` replaces that name only, so
every docker call of every engine module meets this fake, and `git` still runs for real
(against a local file:// repository, tests/engine/test_deploy_unit.py makes one).

What it keeps, as Docker would: a registry (tag -> digest; a tag can move), the local
images (id, tags, digests), and the containers of compose projects (`docker inspect`
shape: Config.Image as the service names it, Image as the id, labels, State, Health).
`docker compose up` reads the image of each service from the engine's override (the
last -f file) and (re)creates what changed (image or environment); a container of an
image in `broken` crash-loops (exited, restarted 3 times: the gate fails it at once);
others turn healthy when next inspected, or `slow[digest]` seconds after they start; a
running container whose dependency crash-loops crash-loops too. `flaky` pulls fail on
the way before they work; `refuse` makes `up` fail to create a service's container
(as a create error does, the old container stays).
`docker compose build` makes a local image with the tag the engine's build file names.
A command it does not know raises, so a new docker call shows up here instead of
running for real.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass, field

import yaml

from engine import docker

_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
_OVERRIDE_SERVICE = re.compile(r"^  ([A-Za-z0-9_.-]+):$")
_OVERRIDE_IMAGE = re.compile(r'^    image: (".*")$')


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def docker_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e9):09d}Z"


@dataclass
class Image:
    id: str
    tags: set[str] = field(default_factory=set)  # repo:tag
    digests: set[str] = field(default_factory=set)  # repo@sha256:...


@dataclass
class FakeDocker:
    root: str  # what `docker info` names as DockerRootDir (free space is measured there)
    registry: dict[str, str] = field(default_factory=dict)  # repo:tag -> digest
    images: dict[str, Image] = field(default_factory=dict)  # id -> image
    containers: dict[str, dict] = field(default_factory=dict)  # id -> `docker inspect` entry
    broken: set[str] = field(default_factory=set)  # digests (or tags of local builds) whose containers crash-loop
    slow: dict[str, float] = field(default_factory=dict)  # digest -> seconds its containers stay "starting"
    flaky: dict[str, int] = field(default_factory=dict)  # repo:tag -> pulls that fail before one works
    refuse: dict[str, str] = field(default_factory=dict)  # service -> why `up` cannot create its container
    config_error: str = ""  # `docker compose config` fails with this (after {NAME} from .env is filled in)
    calls: list[list[str]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _ready: dict[str, float] = field(default_factory=dict)  # container id -> when a slow one turns healthy
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the engine pulls from several threads

    # --- what tests set up and read ---------------------------------------------------

    def publish(self, ref: str, content: str | None = None) -> str:
        """Push `repo:tag` (a new digest each time unless `content` repeats); the digest."""
        digest = digest_of(content or f"{ref}#{next(self._ids)}")
        self.registry[ref] = digest
        return digest

    def pulls(self) -> list[str]:
        return [argv[-1] for argv in self.calls if argv[:2] == ["docker", "pull"]]

    def removed(self) -> list[str]:
        return [argv[-1] for argv in self.calls if argv[:3] == ["docker", "image", "rm"]]

    def image_of(self, ref: str) -> Image | None:
        """The local image a reference (repo:tag, repo@digest or id) names."""
        for image in self.images.values():
            if ref == image.id or ref in image.tags or ref in image.digests:
                return image
        return None

    def running(self, project: str = "sirius") -> dict[str, str]:
        """service -> the image reference its container runs."""
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c["Config"]["Image"]
                for c in self.containers.values()
                if c["Config"]["Labels"]["com.docker.compose.project"] == project}

    # --- the CLI ------------------------------------------------------------------------

    def handle(self, argv: list[str], env: dict[str, str] | None) -> tuple[int, str, str]:
        self.calls.append(argv)
        match argv:
            case ["docker", "version", "--format", _]:
                return 0, "1.45\n", ""
            case ["docker", "compose", "version", "--short"]:
                return 0, "2.29.7\n", ""
            case ["docker", "info", "--format", "{{.DockerRootDir}}"]:
                return 0, self.root + "\n", ""
            case ["docker", "compose", "--project-directory", project_dir, *rest]:
                return self.compose(project_dir, rest, env)
            case ["docker", "pull", "--quiet", ref]:
                return self.pull(ref)
            case ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref]:
                image = self.image_of(ref)
                return (0, json.dumps(sorted(image.digests)) + "\n", "") if image else (1, "", f"Error: No such image: {ref}\n")
            case ["docker", "image", "ls", "--no-trunc", "--format", "{{json .}}"]:
                return 0, "".join(json.dumps(row) + "\n" for row in self.image_rows()), ""
            case ["docker", "image", "rm", "--force", image_id]:
                return self.remove_image(image_id)
            case ["docker", "rm", "--force", "--volumes", *ids] if ids:  # a reset's wipe
                for cid in ids:
                    self.containers.pop(cid, None)
                return 0, "".join(cid + "\n" for cid in ids), ""
            case ["docker", "volume", "ls", "--quiet"]:  # volumes are not modelled: none to remove
                return 0, "", ""
            case ["docker", "builder", "prune", "--force"]:
                return 0, "Total reclaimed space: 0B\n", ""
            case ["docker", "ps", "-aq", "--no-trunc", "--filter", label] if label.startswith("label=com.docker.compose.project="):
                project = label.split("=", 2)[2]
                return 0, "".join(cid + "\n" for cid, c in self.containers.items()
                                  if c["Config"]["Labels"]["com.docker.compose.project"] == project), ""
            case ["docker", "inspect", *ids] if ids:
                self.turn_healthy()
                self.follow_dependencies()
                found = [self.containers[i] for i in ids if i in self.containers]
                return (0 if len(found) == len(ids) else 1), json.dumps(found), ""
            case ["docker", "logs", "--tail", _, cid]:  # like the stand-ins: the config a service read
                return 0, "".join(f"config: {entry}\n" for entry in self.containers[cid]["Config"]["Env"]), ""
            case ["df", "-h", "/"] | ["free", "-m"]:
                return 0, "(fake)\n", ""
            case ["fallocate", *_]:  # a small host's swap file for a build: the fake has none
                return 1, "", "fallocate: fake Docker host has no swap\n"
        raise AssertionError(f"the fake Docker does not know: {shlex.join(argv)}")

    def pull(self, ref: str) -> tuple[int, str, str]:
        if self.flaky.get(ref):
            self.flaky[ref] -= 1
            return 1, "", f"Error response from daemon: Get \"https://{ref.split('/')[0]}/v2/\": connection reset by peer\n"
        if ref not in self.registry:
            return 1, "", f"Error response from daemon: manifest unknown: {ref}\n"
        repo, digest = ref.rsplit(":", 1)[0], self.registry[ref]
        for image in self.images.values():  # a moved tag leaves its old image
            image.tags.discard(ref)
        image_id = digest_of("config of " + digest)
        image = self.images.setdefault(image_id, Image(image_id))
        image.tags.add(ref)
        image.digests.add(f"{repo}@{digest}")
        return 0, ref + "\n", ""

    def image_rows(self) -> list[dict]:
        rows = []
        for image in self.images.values():
            for ref in sorted(image.tags):
                repo, tag = ref.rsplit(":", 1)
                rows.append({"Repository": repo, "Tag": tag, "ID": image.id})
            if not image.tags:
                for ref in sorted(image.digests):
                    rows.append({"Repository": ref.split("@")[0], "Tag": "<none>", "ID": image.id})
        return rows

    def remove_image(self, image_id: str) -> tuple[int, str, str]:
        if image_id not in self.images:
            return 1, "", f"Error: No such image: {image_id}\n"
        if any(c["Image"] == image_id for c in self.containers.values()):
            return 1, "", f"Error response from daemon: conflict: unable to delete {image_id[:19]} (image is in use)\n"
        del self.images[image_id]
        return 0, f"Deleted: {image_id}\n", ""

    # --- docker compose -----------------------------------------------------------------

    def compose(self, project_dir: str, rest: list[str], env: dict[str, str] | None) -> tuple[int, str, str]:
        files = []
        while rest[:1] == ["-f"]:
            files.append(rest[1])
            rest = rest[2:]
        dotenv = os.path.join(project_dir, ".env")
        values = {}
        if os.path.exists(dotenv):
            for line in open(dotenv).read().splitlines():
                if "=" in line and not line.startswith("#"):
                    key, _, value = line.partition("=")
                    values[key] = value
        values.update(env if env is not None else os.environ)  # compose: the process env wins
        project = self.render(files[0], values)
        match rest:
            case ["config", "--format", "json"]:
                if self.config_error:
                    return 1, "", self.config_error.format(**values) + "\n"
                return 0, json.dumps(project), ""
            case ["build", service]:
                ref = self.override_images(files[1:])[service]
                image_id = digest_of(f"built {ref} #{next(self._ids)}")
                for image in self.images.values():
                    image.tags.discard(ref)
                self.images[image_id] = Image(image_id, {ref})
                return 0, "", ""
            case ["up", "-d", "--remove-orphans"]:
                return self.up(project, files[1:], list(project["services"]), remove_orphans=True)
            case ["up", "-d", "--no-deps", "--force-recreate", *services]:
                return self.up(project, files[1:], services, force=True)
            case ["ps", "-a"]:
                return 0, "".join(f"{svc} {ref}\n" for svc, ref in sorted(self.running(project["name"]).items())), ""
        raise AssertionError(f"the fake docker compose does not know: {shlex.join(rest)}")

    @staticmethod
    def render(path: str, values: dict[str, str]) -> dict:
        """`docker compose config` of a compose file written in the long form (ports as maps)."""
        text = _VARIABLE.sub(lambda m: values.get(m[1]) or (m[2] or ""), open(path).read())
        project = yaml.safe_load(text)
        project.setdefault("name", "sirius")
        return project

    @staticmethod
    def override_images(paths: list[str]) -> dict[str, str]:
        images, service = {}, None
        for path in paths:
            for line in open(path).read().splitlines():
                if _OVERRIDE_SERVICE.match(line):
                    service = _OVERRIDE_SERVICE.match(line)[1]
                elif _OVERRIDE_IMAGE.match(line) and service:
                    images[service] = json.loads(_OVERRIDE_IMAGE.match(line)[1])
        return images

    def up(self, project: dict, overrides: list[str], services: list[str], *, force: bool = False,
           remove_orphans: bool = False) -> tuple[int, str, str]:
        name, images = project["name"], self.override_images(overrides)
        current = {c["Config"]["Labels"]["com.docker.compose.service"]: cid for cid, c in self.containers.items()
                   if c["Config"]["Labels"]["com.docker.compose.project"] == name}
        if remove_orphans:
            for svc in set(current) - set(project["services"]):
                del self.containers[current.pop(svc)]
        for svc in services:
            spec = project["services"][svc]
            ref = images.get(svc) or spec["image"]
            image = self.image_of(ref)
            if image is None:
                return 1, "", f"Error response from daemon: pull access denied for {ref}\n"
            if svc in self.refuse:
                return 1, "", f"Error response from daemon: {self.refuse[svc]}\n"
            old = self.containers.get(current.get(svc, ""))
            if old and not force and old["Config"]["Image"] == ref and old["Config"]["Env"] == self.env_of(spec):
                continue  # compose recreates a container when its image or configuration changed
            if old:
                del self.containers[current[svc]]
            cid = hashlib.sha256(f"container {next(self._ids)}".encode()).hexdigest()
            self.containers[cid] = self.container(cid, name, svc, spec, ref, image.id)
        return 0, "", ""

    @staticmethod
    def env_of(spec: dict) -> list[str]:
        return sorted(f"{key}={value}" for key, value in (spec.get("environment") or {}).items())

    def turn_healthy(self) -> None:
        now = time.time()
        for cid, ready in list(self._ready.items()):
            if now >= ready and cid in self.containers:
                self.containers[cid]["State"]["Health"] = {
                    "Status": "healthy", "Log": [{"ExitCode": 0, "End": docker_time(ready), "Output": "ok"}]}
                del self._ready[cid]

    def follow_dependencies(self) -> None:
        """A running service whose dependency crash-loops crash-loops too (it cannot reach
        it), as Sirius's UI and engine do when the API is gone; a fresh container does not."""
        by_service = {(c["Config"]["Labels"]["com.docker.compose.project"],
                       c["Config"]["Labels"]["com.docker.compose.service"]): c for c in self.containers.values()}
        changed = True
        while changed:
            changed = False
            for (project, _), c in by_service.items():
                label = c["Config"]["Labels"].get("com.docker.compose.depends_on", "")
                deps = [entry.split(":")[0] for entry in label.split(",") if entry]
                down = [by_service.get((project, dep)) for dep in deps]
                if c["State"]["Status"] == "running" and any(d and d["RestartCount"] >= 3 for d in down):
                    c["State"] = {"Status": "restarting", "ExitCode": 1, "StartedAt": c["State"]["StartedAt"],
                                  "FinishedAt": docker_time(time.time())}
                    c["RestartCount"], changed = 3, True

    def container(self, cid: str, project: str, service: str, spec: dict, ref: str, image_id: str) -> dict:
        now = time.time()
        policy = spec.get("restart") or "no"
        state: dict = {"Status": "running", "ExitCode": 0, "StartedAt": docker_time(now),
                       "FinishedAt": "0001-01-01T00:00:00Z"}
        restarts = 0
        image = self.images[image_id]
        marks = {ref.partition("@")[2] for ref in image.digests} | image.tags
        if marks & self.broken:
            state.update(Status="exited", ExitCode=1, FinishedAt=docker_time(now))
            restarts = 3
        elif policy == "no":  # a one-shot such as sirius-migrate
            state.update(Status="exited", FinishedAt=docker_time(now))
        delay = max((self.slow.get(mark, 0.0) for mark in marks), default=0.0)
        if spec.get("healthcheck") and state["Status"] == "running":
            state["Health"] = {"Status": "starting", "Log": []}
            self._ready[cid] = now + delay
        return {"Id": cid, "Created": docker_time(now), "Image": image_id, "RestartCount": restarts,
                "Config": {"Image": ref, "Env": self.env_of(spec), "Labels": {
                    "com.docker.compose.project": project, "com.docker.compose.service": service,
                    "com.docker.compose.depends_on": ",".join(f"{dep}:{cond.get('condition')}:false" for dep, cond in
                                                              (spec.get("depends_on") or {}).items())}},
                "HostConfig": {"RestartPolicy": {"Name": policy}}, "State": state}

    # --- the seam -----------------------------------------------------------------------

    def install(self, monkeypatch) -> FakeDocker:
        """Route engine.docker's subprocess calls here (git runs for real)."""
        fake = self

        class Subprocess:
            TimeoutExpired = subprocess.TimeoutExpired

            @staticmethod
            def run(argv, *, input=None, capture_output=True, text=True, timeout=None, cwd=None, env=None):
                if argv[0] == "git":
                    return subprocess.run(argv, input=input, capture_output=capture_output, text=text,
                                          timeout=timeout, cwd=cwd, env=env)
                with fake._lock:
                    code, out, err = fake.handle(list(argv), env)
                return subprocess.CompletedProcess(argv, code, out, err)

        monkeypatch.setattr(docker, "subprocess", Subprocess)
        return self
