"""The git repository shaped like upstream's Sirius repo (its refs and commit dates), built
from the compose files of fixture_compose.py and the stand-ins' build contexts."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .daemon import HarnessError
from .docker_engine import DockerCommandError
from .fixture_compose import BUILD_TARGETS, RABBITMQ_CONF, compose_build_yaml, compose_yaml
from .programs import SYSTEM_PATH, find_busybox
from .standins import SIRIUS_IMAGES, write_standin_context

COMPOSE_PROD_YAML = """\
# Production override (TEST FIXTURE, abridged): tighter CORS.
# Use with: docker compose -f docker-compose.yaml -f docker-compose.prod.yaml up -d
services:
  sirius-ui:
    pull_policy: always
    environment:
      - NODE_ENV=production
      - SKIP_ENV_VALIDATION=0
    restart: unless-stopped

  sirius-api:
    pull_policy: always
    environment:
      - GO_ENV=production
      - CORS_ALLOWED_ORIGINS=${CORS_ALLOWED_ORIGINS:-http://localhost:3000,https://sirius.local}
    restart: unless-stopped

  sirius-engine:
    pull_policy: always
    environment:
      - GO_ENV=production
    restart: unless-stopped
"""

GITIGNORE = """\
# Temporary files
*.tmp
*.log
tmp/

# Environment files
.env
.env.local
.env.production.local
# Local installer-generated secrets (keep directory, ignore contents)
secrets/*
!secrets/.gitkeep
*.secrets
"""

#: The fixture repo's refs: ref -> (fixture release of its docker-compose.yaml,
#: commit date).  Dates follow upstream's.
FIXTURE_REFS: dict[str, tuple[str, str]] = {
    "v0.4.1": ("v0.4.1", "2025-11-13T22:20:01+00:00"),
    "demo": ("demo", "2025-11-13T23:06:15+00:00"),
    "v1.0.0": ("v1.0.0", "2026-02-17T04:42:41+00:00"),
    "v1.1.0": ("main", "2026-07-30T19:21:42+00:00"),
    "main": ("main", "2026-08-20T12:00:00+00:00"),
    "refs/pull/7/head": ("main", "2026-08-25T12:00:00+00:00"),
}


def _git(cwd: Path, *args: str, date: str | None = None) -> str:
    env = {
        "PATH": os.environ.get("PATH") or SYSTEM_PATH,
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Sirius Fixture",
        "GIT_AUTHOR_EMAIL": "fixture@sirius.invalid",
        "GIT_COMMITTER_NAME": "Sirius Fixture",
        "GIT_COMMITTER_EMAIL": "fixture@sirius.invalid",
        "LANG": "C",
    }
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    proc = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false",
                           "-c", "tag.gpgsign=false", *args],
                          cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise DockerCommandError(["git", *args], proc)
    return proc.stdout.strip()


def make_sirius_repo(path: str | os.PathLike, registry_host: str | None = None) -> str:
    """Create a bare git repository at ``path`` shaped like upstream's Sirius repo
    and return its ``file://`` URL.  ``registry_host`` (the tests' registry,
    ``127.0.0.1:<port>``) replaces ``ghcr.io`` in the image names; without it the
    files name ghcr.io like upstream's.

    Refs (``FIXTURE_REFS``; compose files from ``testbed/fixture_compose.py``)::

        v0.4.1 --- v1.0.0 --- v1.1.0 --- main --- refs/pull/7/head
              \\
               demo

    ``v0.4.1``  (tag) every service ``build:``, no ``image:`` at all.
    ``demo``    (branch, stale 2025-11) rabbitmq/postgres/valkey ``build:`` with no
                ``image:``, no key secret, no ``SIRIUS_API_KEY_FILE``, no migrate.
    ``v1.0.0``  (tag) infra ``build:``; ui/api/engine require ``SIRIUS_API_KEY``.
    ``v1.1.0``  (tag) upstream's current compose file (see below).
    ``main``    (HEAD) the same docker-compose.yaml as v1.1.0; only
                docker-compose.build.yaml's GO_API_COMMIT_SHA changed.
    ``refs/pull/7/head``  main + a UI change (images: tag ``pr-7-amd64``).

    Every commit holds ``rabbitmq/rabbitmq.conf``, ``.gitignore`` (``.env``,
    ``secrets/*``) and stand-in build contexts ``sirius-<image>/`` (Dockerfile
    with upstream's stage names, static busybox, scripts; they build in
    seconds); from v1.1.0 also ``docker-compose.build.yaml`` (local-build
    fallback), ``docker-compose.prod.yaml`` and ``secrets/.gitkeep``."""
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise HarnessError(f"{path} exists and is not empty")
    registry = registry_host or "ghcr.io"
    work = Path(tempfile.mkdtemp(prefix="sdg-", dir="/tmp"))

    def commit(ref: str, message: str, changelog: str) -> None:
        release, date = FIXTURE_REFS[ref]
        (work / "docker-compose.yaml").write_text(compose_yaml(release, registry))
        with open(work / "CHANGELOG.md", "a") as fh:
            fh.write(changelog)
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", message, date=date)

    try:
        bb = find_busybox()
        (work / "rabbitmq").mkdir()
        (work / "rabbitmq" / "rabbitmq.conf").write_text(RABBITMQ_CONF)
        (work / ".gitignore").write_text(GITIGNORE)
        (work / "README.md").write_text(
            "# Sirius Scan (sirius-demo test fixture)\n\n"
            "Shaped like github.com/SiriusScan/Sirius for the sirius-demo tests.\n"
            "From v1.1.0, `docker compose up -d` needs `.env` (POSTGRES_PASSWORD,\n"
            "DATABASE_URL, NEXTAUTH_SECRET, INITIAL_ADMIN_PASSWORD, and\n"
            "SIRIUS_API_KEY_FILE=/run/secrets/sirius_api_key as the installer writes it)\n"
            "and secrets/sirius_api_key.txt (mode 0644).\n"
            f"\nImages: {registry}/siriusscan/<service>:<tag>\n")
        (work / "CHANGELOG.md").write_text("# Changelog\n")
        for img in SIRIUS_IMAGES:
            write_standin_context(work / img, img, "source", target=BUILD_TARGETS.get(img),
                                  busybox=bb)
        _git(work, "init", "-q")
        commit("v0.4.1", "Release v0.4.1 (every image built from source)", "\n## v0.4.1\n")
        _git(work, "tag", "-a", "v0.4.1", "-m", "v0.4.1", date=FIXTURE_REFS["v0.4.1"][1])
        _git(work, "checkout", "-q", "-b", "demo")
        commit("demo", "demo: UI, API and engine from published images", "\n## demo\n")
        _git(work, "checkout", "-q", "main")
        commit("v1.0.0", "Release v1.0.0 (published ui/api/engine images, SIRIUS_API_KEY)",
               "\n## v1.0.0\n")
        _git(work, "tag", "-a", "v1.0.0", "-m", "v1.0.0", date=FIXTURE_REFS["v1.0.0"][1])
        (work / "secrets").mkdir()
        (work / "secrets" / ".gitkeep").write_text("")
        (work / "docker-compose.prod.yaml").write_text(COMPOSE_PROD_YAML)
        (work / "docker-compose.build.yaml").write_text(compose_build_yaml("v1.1.0"))
        commit("v1.1.0", "Release v1.1.0 (all images published, API key file secret, migrate)",
               "\n## v1.1.0\n")
        _git(work, "tag", "-a", "v1.1.0", "-m", "v1.1.0", date=FIXTURE_REFS["v1.1.0"][1])
        (work / "docker-compose.build.yaml").write_text(compose_build_yaml("main"))
        commit("main", "build: bump go-api commit", "\n## unreleased\n\n- go-api bump\n")
        main_sha = _git(work, "rev-parse", "HEAD")
        _git(work, "checkout", "-q", "--detach")
        (work / "sirius-ui" / "CHANGES").write_text("pr-7: new dashboard\n")
        commit("refs/pull/7/head", "ui: new dashboard (PR #7)", "")
        pr_sha = _git(work, "rev-parse", "HEAD")
        _git(work, "checkout", "-q", "main")
        path.parent.mkdir(parents=True, exist_ok=True)
        _git(work, "clone", "-q", "--bare", str(work), str(path))
        _git(path, "update-ref", "refs/pull/7/head", pr_sha)
        _git(path, "symbolic-ref", "HEAD", "refs/heads/main")
        assert _git(path, "rev-parse", "main") == main_sha
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path.resolve().as_uri()


# --------------------------------------------------------------------------
