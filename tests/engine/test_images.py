"""engine/images.py against the fake Docker: pulls retried only when retrying can help, the
digest the deploy runs, and the local build of what cannot be pulled."""

from __future__ import annotations

import time

import pytest

from engine import images, settings
from engine.docker import Compose
from tests.engine.fakedocker import FakeDocker

REGISTRY = "127.0.0.1:5000/siriusscan"
COMPOSE = """\
name: sirius
services:
  sirius-api:
    image: ghcr.io/siriusscan/sirius-api:${IMAGE_TAG:-latest}
  sirius-migrate:
    image: ghcr.io/siriusscan/sirius-api:${IMAGE_TAG:-latest}
    restart: "no"
  sirius-ui:
    image: ghcr.io/siriusscan/sirius-ui:${IMAGE_TAG:-latest}
"""
SERVICES = {"sirius-api": {"image": "x/sirius-api:v"}, "sirius-migrate": {"image": "x/sirius-api:v"},
            "sirius-ui": {"image": "x/sirius-ui:v"}}


@pytest.fixture
def docker(tmp_path, monkeypatch) -> FakeDocker:
    monkeypatch.setattr(images.time, "sleep", lambda seconds: None)  # the waits themselves: plan.py's tests
    return FakeDocker(root=str(tmp_path)).install(monkeypatch)


def configured(tmp_path, *flags: str) -> settings.Settings:
    return settings.from_args(["--registry", REGISTRY, "--tag", "latest", "--dir", str(tmp_path / "project"),
                               "--state-dir", str(tmp_path / "state"), "--pull-delay", "1", *flags])


def test_a_pull_that_fails_on_the_way_is_retried_and_its_digest_known(tmp_path, docker):
    digest = docker.publish(f"{REGISTRY}/sirius-ui:latest")
    docker.flaky[f"{REGISTRY}/sirius-ui:latest"] = 2
    pulled = images.pull(configured(tmp_path), ["sirius-ui"], time.time() + 600)
    assert (pulled.rounds, pulled.digests, pulled.missing) == (3, {"sirius-ui": digest}, [])


def test_a_tag_that_is_not_published_is_not_pulled_again(tmp_path, docker):
    api = docker.publish(f"{REGISTRY}/sirius-api:latest")
    pulled = images.pull(configured(tmp_path), ["sirius-api", "sirius-ui"], time.time() + 600)
    assert (pulled.rounds, pulled.digests, pulled.missing) == (1, {"sirius-api": api}, ["sirius-ui"])
    assert docker.pulls().count(f"{REGISTRY}/sirius-ui:latest") == 1


def test_pulls_give_up_after_the_attempts_and_the_image_is_missing(tmp_path, docker):
    docker.publish(f"{REGISTRY}/sirius-ui:latest")
    docker.flaky[f"{REGISTRY}/sirius-ui:latest"] = 10
    pulled = images.pull(configured(tmp_path, "--pull-attempts", "3"), ["sirius-ui"], time.time() + 600)
    assert (pulled.rounds, pulled.missing, pulled.digests) == (3, ["sirius-ui"], {})


def test_pulls_stop_at_the_deadline(tmp_path, docker):
    docker.publish(f"{REGISTRY}/sirius-ui:latest")
    docker.flaky[f"{REGISTRY}/sirius-ui:latest"] = 10
    pulled = images.pull(configured(tmp_path), ["sirius-ui"], time.time() + 0.5)  # the first wait passes it
    assert (pulled.rounds, pulled.missing) == (1, ["sirius-ui"])


def test_what_is_here_by_its_pinned_digest_or_an_immutable_tag_is_not_pulled(tmp_path, docker):
    pinned = docker.publish(f"{REGISTRY}/sirius-ui:latest")
    docker.pull(f"{REGISTRY}/sirius-ui:latest")
    s = configured(tmp_path, "--image-digest", f"sirius-ui={pinned}")
    assert images.pull(s, ["sirius-ui"], time.time() + 600).digests == {"sirius-ui": pinned}
    fixed = docker.publish(f"{REGISTRY}/sirius-api:v1.1.0")
    docker.pull(f"{REGISTRY}/sirius-api:v1.1.0")
    pulled = images.pull(configured(tmp_path, "--tag", "v1.1.0"), ["sirius-api"], time.time() + 600)
    assert (pulled.rounds, pulled.digests) == (0, {"sirius-api": fixed})
    assert docker.pulls() == []  # (the set-up pulls are not docker calls)
    docker.publish(f"{REGISTRY}/sirius-ui:latest")  # `latest` moved: it is pulled again
    assert images.pull(configured(tmp_path), ["sirius-ui"], time.time() + 600).rounds == 1


def test_the_local_digest_is_the_pinned_one_when_several_are_here(tmp_path, docker):
    old = docker.publish(f"{REGISTRY}/sirius-ui:latest")
    docker.pull(f"{REGISTRY}/sirius-ui:latest")
    docker.image_of(f"{REGISTRY}/sirius-ui:latest").digests.add(f"{REGISTRY}/sirius-ui@sha256:" + "f" * 64)
    s = configured(tmp_path, "--image-digest", f"sirius-ui={old}")
    assert images.local_digest(s, "sirius-ui") == old
    assert images.local_digest(configured(tmp_path), "sirius-api") is None


def project(tmp_path, build_file: bool) -> Compose:
    (tmp_path / "project").mkdir()
    (tmp_path / "state").mkdir()
    (tmp_path / "project" / "docker-compose.yaml").write_text(COMPOSE)
    if build_file:
        (tmp_path / "project" / images.BUILD_FILE).write_text("services:\n  sirius-api: {build: .}\n")
    return Compose(str(tmp_path / "project"))


def test_what_cannot_be_pulled_is_built_with_the_tag_the_deploy_runs(tmp_path, docker):
    built = images.build(configured(tmp_path), project(tmp_path, True), SERVICES, ["sirius-api"], [])
    assert built.error is None and built.services == ["sirius-api", "sirius-migrate"]
    assert set(built.seconds) == {"sirius-api"}
    assert docker.image_of(f"{REGISTRY}/sirius-api:latest") is not None
    assert ["build", "sirius-api"] == docker.calls[-1][-2:]


def test_without_a_build_file_nothing_is_built_and_the_error_says_why(tmp_path, docker):
    built = images.build(configured(tmp_path), project(tmp_path, False), SERVICES, ["sirius-ui"], [])
    assert built.services == [] and "cannot pull sirius-ui" in built.error and images.BUILD_FILE in built.error
    assert not any("build" in argv for argv in docker.calls)
    nothing = images.build(configured(tmp_path), Compose(str(tmp_path / "project")), SERVICES, [], [])
    assert (nothing.error, nothing.services) == (None, [])
