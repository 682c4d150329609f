"""engine/source.py: the ref (or the pinned commit) fetched from a real local git repository,
its compose file staged and checked without touching the project dir, and checked out."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from engine import envfile, settings, source
from engine.errors import DeployError
from tests.engine.fakedocker import FakeDocker

COMPOSE = "name: sirius\nservices:\n  sirius-ui:\n    image: ghcr.io/siriusscan/sirius-ui:${IMAGE_TAG:-latest}\n"


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def upstream(tmp_path) -> Path:
    repo = tmp_path / "upstream"
    repo.mkdir()
    (repo / "docker-compose.yaml").write_text(COMPOSE)
    (repo / "rabbitmq").mkdir()
    (repo / "rabbitmq" / "rabbitmq.conf").write_text("loopback_users = none\n")
    (repo / "rabbitmq" / "rabbitmq.conf").chmod(0o600)
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "one", cwd=repo)
    return repo


def configured(tmp_path, upstream: Path, ref: str = "main", *flags: str) -> settings.Settings:
    return settings.from_args(["--repo", f"file://{upstream}", "--ref", ref, "--dir", str(tmp_path / "opt" / "sirius"),
                               "--state-dir", str(tmp_path / "state"), *flags])


def test_a_ref_is_fetched_as_objects_only_until_the_checkout(tmp_path, upstream):
    s = configured(tmp_path, upstream)
    fetched = source.fetch(s, time.time() + 60)
    assert fetched == source.Fetched(git("rev-parse", "HEAD", cwd=upstream), COMPOSE, False)
    assert not (Path(s.project_dir) / "docker-compose.yaml").exists()  # the running project's files stay
    source.checkout(s.project_dir, fetched.commit)
    assert (Path(s.project_dir) / "docker-compose.yaml").read_text() == COMPOSE
    assert (Path(s.project_dir) / "rabbitmq" / "rabbitmq.conf").stat().st_mode & 0o777 == 0o644  # upstream #128


def test_a_pinned_commit_is_fetched_even_after_its_ref_moved(tmp_path, upstream):
    pinned = git("rev-parse", "HEAD", cwd=upstream)
    (upstream / "docker-compose.yaml").write_text(COMPOSE.replace("sirius-ui", "sirius-web"))
    git("commit", "-q", "-am", "two", cwd=upstream)
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=upstream)
    fetched = source.fetch(configured(tmp_path, upstream, "main", "--commit", pinned), time.time() + 60)
    assert (fetched.commit, fetched.compose_text) == (pinned, COMPOSE)


def test_a_pinned_commit_that_is_gone_is_refused_by_name(tmp_path, upstream):
    with pytest.raises(DeployError, match="commit 0123456789ab of main is not in .* run pulumi up again"):
        source.fetch(configured(tmp_path, upstream, "main", "--commit", "0123456789ab" + "0" * 28), time.time() + 60)


def test_a_ref_that_does_not_exist_falls_back_to_the_default_branch(tmp_path, upstream):
    fetched = source.fetch(configured(tmp_path, upstream, "no-such-branch"), time.time() + 60)
    assert fetched.fell_back and fetched.commit == git("rev-parse", "main", cwd=upstream)


def test_a_ref_without_a_compose_file_is_refused(tmp_path, upstream):
    git("checkout", "-q", "-b", "bare", cwd=upstream)
    git("rm", "-q", "docker-compose.yaml", cwd=upstream)
    git("commit", "-q", "-m", "no compose", cwd=upstream)
    with pytest.raises(DeployError, match="at bare has no docker-compose.yaml"):
        source.fetch(configured(tmp_path, upstream, "bare"), time.time() + 60)


def test_checking_out_what_is_not_there_fails_by_name(tmp_path, upstream):
    s = configured(tmp_path, upstream)
    source.fetch(s, time.time() + 60)
    with pytest.raises(DeployError, match="cannot check out 0123456789ab in"):
        source.checkout(s.project_dir, "0123456789ab" + "0" * 28)


def test_the_stage_keeps_the_running_secrets_and_leaves_nothing_behind(tmp_path, upstream, monkeypatch):
    FakeDocker(root=str(tmp_path)).install(monkeypatch)
    s = configured(tmp_path, upstream, "main", "--public-host", "203.0.113.7")
    source.checkout(s.project_dir, source.fetch(s, time.time() + 60).commit)
    first = source.stage(s, COMPOSE)
    assert first.problems == [] and set(first.services) == {"sirius-ui"} and first.project == "sirius"
    assert not first.same_settings and not (Path(s.state_dir) / source.STAGING_DIR).exists()
    envfile.write_private(str(Path(s.project_dir) / ".env"), first.env_text)  # the switch
    again = source.stage(configured(tmp_path, upstream, "main", "--public-host", "203.0.113.7", "--tag", "v2"), COMPOSE)
    assert again.same_settings and again.secrets == first.secrets  # the secrets are made once
    *generated, api_key = first.secrets
    assert generated and all(secret in first.env_text for secret in generated)
    assert api_key == (Path(s.project_dir) / envfile.API_KEY_FILE).read_text().strip()
    broken = source.stage(s, COMPOSE.replace("image: ghcr.io/siriusscan/sirius-ui:${IMAGE_TAG:-latest}", "build: ."))
    assert broken.problems and broken.problems[0].startswith("sirius-ui has no image")
