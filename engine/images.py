"""The images a deploy runs: pulled with retries (a tag that is not published is not
retried), known by their registry digest, built on the host only when they cannot be
pulled (with a swap file on small hosts meanwhile).

Pure rules (retry delays, which errors are hopeless, swap or not) are in engine/plan.py.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
from dataclasses import dataclass, field

from engine import envfile, plan, rules
from engine.docker import Compose, log, run
from engine.settings import Settings

BUILD_FILE = "docker-compose.build.yaml"  # upstream's: builds every image from source
BUILD_TAGS_FILE = "compose.build-tags.yaml"  # in the state dir: built images get the tag the deploy runs
SWAP_FILE = "build.swap"
SWAP_SIZE = "4G"


@dataclass
class Pulled:
    digests: dict[str, str] = field(default_factory=dict)  # image -> the digest pulled (or found)
    missing: list[str] = field(default_factory=list)  # images that cannot be pulled: to build
    rounds: int = 0  # rounds of `docker pull` (0: everything was here already)


@dataclass
class Built:
    services: list[str] = field(default_factory=list)  # services whose image was built, sorted
    seconds: dict[str, float] = field(default_factory=dict)  # image -> seconds its build took
    error: str | None = None  # why a build failed (the builds after it did not run)


def local_digest(s: Settings, image: str) -> str | None:
    """The registry digest of the local image the deploy would run: the pinned one, else the tag's."""
    r = run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", s.pull_ref_of(image)], timeout=60)
    repo = f"{s.registry}/{image}"
    found = [entry.split("@", 1)[1] for entry in ((json.loads(r.out) or []) if r.ok else [])
             if entry.startswith(repo + "@")]
    pinned = s.image_digests.get(image)
    return pinned if pinned in found else (found[0] if found else None)


def already_here(s: Settings, images: list[str]) -> dict[str, str]:
    """The images that need no pull: the pinned digest is here, or an immutable tag is."""
    here = {}
    for image in images:
        pinned, local = s.image_digests.get(image), local_digest(s, image)
        if pinned and local == pinned:
            log(f"pull: {s.pull_ref_of(image)} (the digest the preflight saw) is present")
            here[image] = local
        elif not pinned and rules.is_immutable_tag(s.tag_of(image)) and local:
            log(f"pull: {s.ref_of(image)} never moves and is present")
            here[image] = local
    return here


def pull(s: Settings, images: list[str], deadline: float) -> Pulled:
    """Pull every image not already here, in parallel rounds, retrying what failed on the way
    (plan.retry_delays) until the attempts or the deadline run out."""
    result = Pulled(digests=already_here(s, images))
    pending = [image for image in images if image not in result.digests]
    delays = plan.retry_delays(s.pull_attempts, s.pull_delay)
    while pending:
        result.rounds += 1
        log(f"pull: round {result.rounds}: {' '.join(pending)}")
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(pending)) as pool:
            outcomes = dict(zip(pending, pool.map(lambda i: run(
                ["docker", "pull", "--quiet", s.pull_ref_of(i)], timeout=max(deadline - time.time(), 1.0)), pending)))
        retry = []
        for image, outcome in outcomes.items():
            if outcome.ok:
                result.digests[image] = local_digest(s, image) or ""
            elif plan.pull_is_hopeless(outcome.err + outcome.out):
                log(f"pull: {s.pull_ref_of(image)} is not published")
                result.missing.append(image)
            else:
                log(f"pull: {s.pull_ref_of(image)} failed: {outcome.last_line()}")
                retry.append(image)
        pending = retry
        if not pending:
            break
        wait = plan.next_retry(result.rounds, delays, time.time(), deadline)
        if wait is None:
            log(f"pull: giving up on {' '.join(pending)} after {result.rounds} attempts")
            result.missing += pending
            break
        log(f"pull: retrying in {wait:.0f}s")
        time.sleep(wait)
    return result


def build(s: Settings, compose: Compose, services: dict, missing: list[str], secrets: list[str]) -> Built:
    """Build `missing` images from the project's build file, each tagged as the deploy runs
    it, within --build-timeout; stops at the first failure (Built.error)."""
    result = Built()
    if not missing:
        return result
    build_file = os.path.join(s.project_dir, BUILD_FILE)
    if not os.path.isfile(build_file):
        result.error = f"cannot pull {', '.join(missing)} and {s.git_ref} has no {BUILD_FILE} to build them"
        return result
    names = plan.images_of(services)
    tags_path = os.path.join(s.state_dir, BUILD_TAGS_FILE)
    with open(tags_path, "w") as f:
        f.write("services:\n" + "".join(f"  {svc}:\n    image: {json.dumps(s.ref_of(names[svc]))}\n"
                                        for svc in sorted(services)))
    builder = compose.with_files(build_file, tags_path)
    swap = add_swap(s.state_dir)
    budget_end = time.monotonic() + s.build_timeout
    try:
        for image in missing:
            service = image if image in services else next(svc for svc, i in names.items() if i == image)
            log(f"build: {image} (service {service}); upstream builds take minutes to tens of minutes")
            started = time.monotonic()
            outcome = builder("build", service, timeout=max(budget_end - time.monotonic(), 1))
            result.seconds[image] = round(time.monotonic() - started, 1)
            if not outcome.ok:
                result.error = f"local build of {image} failed: {envfile.redact(outcome.last_line(), secrets)}"
                break
            result.services += [svc for svc, i in names.items() if i == image]
    finally:
        remove_swap(swap)
    result.services.sort()
    return result


def add_swap(state_dir: str) -> str | None:
    """A swap file while building on a host with little memory (plan.needs_swap); its path."""
    mem = next((int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal:")), 0)
    if not plan.needs_swap(mem):
        return None
    path = os.path.join(state_dir, SWAP_FILE)
    for argv in (["fallocate", "-l", SWAP_SIZE, path], ["chmod", "600", path], ["mkswap", path], ["swapon", path]):
        if not run(argv, timeout=120).ok:
            log(f"build: no swap file ({argv[0]} failed); building without")
            remove_swap(path)
            return None
    log(f"build: {SWAP_SIZE} swap file while building ({mem / 1024**3:.1f} GiB of memory)")
    return path


def remove_swap(path: str | None) -> None:
    if path:
        run(["swapoff", path], timeout=300)
        if os.path.exists(path):
            os.remove(path)
