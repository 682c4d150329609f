"""Disk care after a healthy deploy: at most two sets of Sirius images stay on the host.

UI and engine images are GBs each; a 30 GB volume fills after a handful of tag
changes. What stays: the images the running deploy uses and those of the rollback
target (the deploy before it). Every other image of a Sirius repository goes, and
so does dangling build cache. Images of anything else on the host are not touched.
"""

from __future__ import annotations

import json
import shutil

from engine.docker import log, run
from engine.report import Disk


def docker_root() -> str:
    root = run(["docker", "info", "--format", "{{.DockerRootDir}}"], timeout=30).out.strip()
    return root or "/"


def free_gb(path: str) -> float:
    try:
        return round(shutil.disk_usage(path).free / 1024**3, 2)
    except OSError:
        return round(shutil.disk_usage("/").free / 1024**3, 2)


def repository_of(ref: str) -> str:
    """registry/namespace/name of an image reference by tag or digest."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def removable(images: list[dict], repositories: set[str], keep_ids: set[str]) -> list[str]:
    """Ids of the images (`docker image ls` rows) of `repositories` that nothing keeps, sorted."""
    return sorted({row["ID"] for row in images if row.get("Repository") in repositories and row["ID"] not in keep_ids})


def local_images() -> list[dict]:
    r = run(["docker", "image", "ls", "--no-trunc", "--format", "{{json .}}"], timeout=120)
    rows = []
    for line in r.out.splitlines() if r.ok else []:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def care(running: dict, target: dict | None, failed_images: set[str], build_cache: bool) -> Disk:
    """Remove the Sirius images neither the running deploy nor the rollback target uses (both
    rollback records); after a rollback, `failed_images` (the failed deploy's) name more
    repositories whose unused images go."""
    keep = set(running["imageIds"].values()) | set((target or {}).get("imageIds", {}).values())
    repositories = {repository_of(ref) for r in (running, target) if r
                    for ref in [*r["runImages"].values(), *failed_images]}
    return prune(repositories, keep, build_cache=build_cache)


def prune(repositories: set[str], keep_ids: set[str], build_cache: bool = True) -> Disk:
    """Remove what nothing keeps, and dangling build cache when a build made some (only
    local builds do); the report's `disk` entry (free GiB before and after)."""
    root = docker_root()
    before = free_gb(root)
    removed, failed = [], []
    for image_id in removable(local_images(), repositories, keep_ids):
        # --force: one image can carry several tags (v1 and v1.1.0); Docker still refuses
        # to remove an image a container uses.
        result = run(["docker", "image", "rm", "--force", image_id], timeout=300)
        (removed if result.ok else failed).append(image_id)
    cache = run(["docker", "builder", "prune", "--force"], timeout=300) if build_cache else None
    if failed or (cache and not cache.ok):
        log(f"disk: could not remove {len(failed)} image(s)" + ("; build cache prune failed" if cache and not cache.ok else ""))
    after = free_gb(root)
    log(f"disk: removed {len(removed)} unused Sirius image(s); {before} -> {after} GiB free")
    return report(before, after, len(removed), len(failed))


def unchanged() -> Disk:
    """The same images as the last healthy deploy: nothing to remove, the free space only."""
    free = free_gb(docker_root())
    return report(free, free)


def report(before: float, after: float, removed: int = 0, not_removed: int = 0) -> Disk:
    """The deploy report's `disk` entry."""
    return Disk(free_gb_before=before, free_gb_after=after, removed_images=removed, not_removed=not_removed)


def low_disk_advice(root: str, free: float, needed: int) -> str:
    """What the free-disk pre-check says: how much is free, and how to get more."""
    return (f"only {free:.1f} GiB free under {root}; a deploy needs {needed} GiB. Healthy deploys and rollbacks "
            "remove unused Sirius images themselves; to free space now: `sudo docker builder prune --force` and "
            "`sudo docker image prune --force` (build cache, untagged images), then if need be "
            "`sudo docker image prune --all --force` (every image no container uses, the rollback target's too), "
            "or raise the stack's volumeSize")
