"""Stand-in images of the Sirius services (FROM scratch + static busybox + the scripts in
standin/rootfs), the tags they are published under, and removing them from an engine.
What the stand-ins answer: testbed/README.md."""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable

from .docker_engine import DockerEngine
from .programs import find_busybox
from .registry import Registry

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
        "# test bed (testbed/standins.py): static busybox + shell scripts.\n"
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

