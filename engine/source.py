"""The compose project's source: the ref fetched into the project dir, its compose file
checked in a staging dir, and checked out.

The deploy fetches the ref (or the pinned commit) as objects only, reads its compose file
from git, renders it in a staging dir with the new .env (engine/compat.py judges it), and
checks it out only at the switch, after the check and the pull: until then the running
project's files stay as they are.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass

from engine import compat, envfile, rules
from engine.docker import Compose, Result, log, run
from engine.errors import DeployError
from engine.settings import Settings

FETCH_ATTEMPTS = 3
STAGING_DIR = "staging"  # in the state dir: where a new ref's compose file is checked before anything switches
# What git says when the remote has no such ref (or, for a commit id, no such object).
_NO_REF = ("couldn't find remote ref", "not our ref", "no such remote ref")
_NO_COMMIT = ("not our ref", "no such remote ref", "unadvertised object")


@dataclass(frozen=True)
class Fetched:
    commit: str  # the 40-hex commit fetched
    compose_text: str  # its docker-compose.yaml
    fell_back: bool  # the ref did not exist: the repository's default branch was fetched


def _git(project_dir: str) -> list[str]:
    return ["git", "-C", project_dir]


def fetch(s: Settings, deadline: float) -> Fetched:
    """Fetch the settings' commit (or what their ref points at) into the project dir, with
    retries until `deadline`; a ref that does not exist falls back to the default branch."""
    git = _git(s.project_dir)
    log(f"fetch: {s.repo_url} at {s.git_ref}")
    os.makedirs(s.project_dir, mode=0o755, exist_ok=True)
    if not os.path.isdir(os.path.join(s.project_dir, ".git")):
        run([*git, "init", "-q"])
        run([*git, "remote", "add", "origin", s.repo_url])
    else:
        run([*git, "remote", "set-url", "origin", s.repo_url])
    result, fell_back = Result(1, "", ""), False
    # A pinned commit is fetched by its id: the ref may have moved since the program resolved it.
    wanted = s.commit or s.git_ref
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        result = run([*git, "fetch", "-q", "--depth", "1", "origin", wanted],
                     timeout=min(300, max(deadline - time.time(), 1.0)))
        if result.ok:
            break
        if s.commit and any(m in result.err for m in _NO_COMMIT):
            raise DeployError(f"commit {s.commit[:12]} of {s.git_ref} is not in {s.repo_url} (any more): run pulumi up "
                              "again to deploy what the ref points at now")
        if any(m in result.err for m in _NO_REF):
            log(f"fetch: WARNING: {s.git_ref} does not exist in {s.repo_url}; deploying its default branch instead")
            fell_back = True
            result = run([*git, "fetch", "-q", "--depth", "1", "origin", "HEAD"], timeout=300)
            break
        log(f"fetch: attempt {attempt} failed: {result.last_line()}")
        if attempt < FETCH_ATTEMPTS and time.time() + attempt * 2 < deadline:
            time.sleep(attempt * 2)
    if not result.ok:
        raise DeployError(f"cannot fetch {s.repo_url} at {wanted}: {result.last_line()}")
    commit = run([*git, "rev-parse", "FETCH_HEAD^{commit}"]).out.strip()
    shown = run([*git, "show", f"{commit}:docker-compose.yaml"])
    if not shown.ok:
        raise DeployError(f"{s.repo_url} at {s.git_ref} has no docker-compose.yaml")
    return Fetched(commit, shown.out, fell_back)


def checkout(project_dir: str, commit: str) -> None:
    """The project dir's files become `commit`'s (the switch, or a rollback's)."""
    result = run([*_git(project_dir), "-c", "advice.detachedHead=false", "checkout", "-q", "--force", commit])
    if not result.ok:
        raise DeployError(f"cannot check out {commit[:12]} in {project_dir}: {result.last_line()}")
    # rabbitmq reads its bind-mounted config as another user (upstream issue #128).
    conf = os.path.join(project_dir, "rabbitmq", "rabbitmq.conf")
    if os.path.isfile(conf):
        os.chmod(conf, 0o644)


def pin(project_dir: str, ref: str, commit: str) -> None:
    """Keep `commit` from being pruned: a git ref names it (the rollback target's)."""
    run([*_git(project_dir), "update-ref", ref, commit])



@dataclass(frozen=True)
class Staged:
    """The fetched project as compose renders it with the deploy's .env, and what cannot work in it."""

    services: dict  # service -> its rendered spec ({} when compose could not render it)
    project: str
    env_text: str  # the .env the deploy runs with: the running one's secrets, these settings
    same_settings: bool  # the .env differs from the running one by the tag at most
    secrets: list[str]  # every secret in it, and the API key: blanked wherever the engine prints
    problems: list[str]  # engine/compat.py's findings: the deploy stops on any


def stage(s: Settings, compose_text: str) -> Staged:
    """The deploy's .env (the running one's secrets kept; the API key file written only when
    missing) and the fetched compose file rendered with it in a staging dir: nothing the
    running project uses changes."""
    env_path = os.path.join(s.project_dir, ".env")
    old_env = open(env_path).read() if os.path.exists(env_path) else ""
    secrets = envfile.with_secrets(envfile.parse(old_env))
    api_key = envfile.ensure_api_key(s.project_dir)
    env_text = envfile.render(secrets, s.public_host, s.image_tag, rules.UI_PORT, rules.API_PORT, domain=s.domain)
    rendered, problems = check(s, compose_text, env_text)
    return Staged((rendered or {}).get("services") or {}, (rendered or {}).get("name") or rules.DEFAULT_PROJECT,
                  env_text, envfile.same_but_tag(old_env, env_text), [*secrets.values(), api_key], problems)


def check(s: Settings, compose_text: str, env_text: str) -> tuple[dict | None, list[str]]:
    """Render the fetched compose file with `env_text` in a staging dir: the project as
    compose renders it, and what cannot work in it (engine/compat.py)."""
    # Same base name as the project dir: compose names an unnamed project after it.
    stage = os.path.join(s.state_dir, STAGING_DIR, os.path.basename(s.project_dir.rstrip("/")))
    shutil.rmtree(os.path.dirname(stage), ignore_errors=True)
    os.makedirs(stage, mode=0o700)
    try:
        with open(os.path.join(stage, "docker-compose.yaml"), "w") as f:
            f.write(compose_text)
        envfile.write_private(os.path.join(stage, ".env"), env_text)
        os.symlink(os.path.join(s.project_dir, "secrets"), os.path.join(stage, "secrets"))
        compose = Compose(stage)
        rendered, error = compose.config()
        if rendered is None:
            return None, compat.render_problems(error)
        env = {**envfile.parse(env_text), **os.environ}  # compose: the process env wins over .env
        probe, probed = compat.probe_text(compose_text, env), None
        if probe != compose_text:  # the staged copy again, with markers where values render empty
            with open(compose.files[0], "w") as f:
                f.write(probe)
            probed = compose.config()[0]
            if probed is None:
                log("check: WARNING: could not render the project with empty variables marked; "
                    "health checks that render empty are not detected")
        return rendered, compat.problems(rendered, probed)
    finally:
        shutil.rmtree(os.path.dirname(stage), ignore_errors=True)
