"""The one way the engine runs a program: argument lists, never a shell.

Every docker, git and apt call goes through `run`, so a value is never parsed by a
shell and every call can be logged, timed out and read the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass


def log(message: str) -> None:
    print(time.strftime("%H:%M:%S", time.gmtime()), message, file=sys.stderr, flush=True)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def last_line(self) -> str:
        lines = [line for line in (self.err + "\n" + self.out).splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"exit {self.code}"


def run(argv: list[str], *, timeout: float | None = None, input: str | None = None, cwd: str | None = None,
        env: dict[str, str] | None = None) -> Result:
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    except subprocess.TimeoutExpired:
        return Result(124, "", f"{argv[0]} {argv[1] if len(argv) > 1 else ''}: timed out after {timeout:.0f}s")
    except FileNotFoundError:
        return Result(127, "", f"{argv[0]}: not installed")
    return Result(p.returncode, p.stdout, p.stderr)


class Compose:
    """`docker compose` for one project directory and its files."""

    def __init__(self, project_dir: str, *extra_files: str):
        self.project_dir = project_dir
        self.files = [f"{project_dir}/docker-compose.yaml", *extra_files]
        self.base = ["docker", "compose", "--project-directory", project_dir]
        for f in self.files:
            self.base += ["-f", f]

    def with_files(self, *extra: str) -> "Compose":
        return Compose(self.project_dir, *self.files[1:], *extra)

    def __call__(self, *args: str, timeout: float | None = None, env: dict[str, str] | None = None) -> Result:
        return run([*self.base, *args], timeout=timeout, env=env)

    def config(self, env: dict[str, str] | None = None) -> tuple[dict | None, str]:
        """The rendered project (`docker compose config`), or None and compose's error."""
        r = self("config", "--format", "json", timeout=120, env=env)
        try:
            return (json.loads(r.out), "") if r.ok else (None, r.err.strip() or r.out.strip())
        except ValueError:
            return None, f"docker compose config printed no JSON: {r.out.strip()[:200]}"


def inspect(ids: list[str]) -> list[dict]:
    if not ids:
        return []
    r = run(["docker", "inspect", *ids], timeout=60)
    try:
        return json.loads(r.out) or []
    except ValueError:  # a container removed meanwhile, a daemon gone: nothing to judge now
        return []


def project_containers(project: str) -> list[dict]:
    """`docker inspect` of every container of the compose project."""
    r = run(["docker", "ps", "-aq", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}"], timeout=60)
    return inspect(r.out.split())
