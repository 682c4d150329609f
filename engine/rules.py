"""The rules shared by the Pulumi program and the host engine: one copy of each.

Which git ref to fetch and which image tag to run for the `ref` setting, and what a
registry, image name, tag and public host look like. Standard library only: this
module ships to the instance inside the engine. Pure functions: no Pulumi, no I/O. The rules follow what Sirius CI publishes to
ghcr.io (see ../shared/sirius-stack.md): `latest` from main, `pr-N-amd64` for pull
requests (per-architecture only), `sha-<commit>` from main pushes, release tags
re-tagged by hand, `beta` and `dev` as-is.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# Registry host (optional port) and namespace, e.g. ghcr.io/siriusscan or 127.0.0.1:5000/siriusscan.
REGISTRY_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?(?:/[a-z0-9][a-z0-9._-]*)+")
# An image's last path component, e.g. sirius-ui.
IMAGE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
# Docker's tag grammar.
IMAGE_TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# A safe subset of git's ref grammar: nothing a shell or git option parser reads as syntax.
REF_FORM = "expected a branch, tag, pr-N or commit: letters, digits, '.', '_', '-', '/'"
_REF_CHAR = re.compile(r"[A-Za-z0-9._/-]")

_RELEASE = re.compile(r"v\d+\.\d+\.\d+(?:-[A-Za-z0-9.]+)?")
_PR_SHORT = re.compile(r"pr-(\d{1,9})")
_PR_REF = re.compile(r"refs/pull/(\d{1,9})(?:/(?:head|merge))?")
_SHA_TAG = re.compile(r"sha-([0-9a-fA-F]{40})")
_COMMIT = re.compile(r"[0-9a-fA-F]{40}")
_LATEST_BRANCHES = frozenset({"main", "demo"})
_SAME_NAME_TAGS = frozenset({"beta", "dev"})


def ref_problem(ref: object) -> str | None:
    """What is wrong with `ref` as the `ref` setting, or None when it is accepted."""
    if not isinstance(ref, str) or not ref:
        return "is empty"
    shown = repr(ref if len(ref) <= 60 else ref[:57] + "...")
    if len(ref) > 200:
        return "is longer than 200 characters"
    bad = sorted({c for c in ref if not _REF_CHAR.fullmatch(c)})
    if bad:
        return f"{shown} contains " + ", ".join("whitespace" if c.isspace() else repr(c) for c in bad)
    if ".." in ref or "//" in ref or "/." in ref:
        return f"{shown} contains '..', '//' or '/.'"
    if ref[0] in "-/." or ref[-1] in "/." or ref.endswith(".lock"):
        return f"{shown} starts with '-', '/' or '.', or ends with '/', '.' or '.lock'"
    return None


def is_public_host(value: str) -> bool:
    """An IP address or DNS name that browsers use to reach the demo."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(_HOSTNAME.fullmatch(value)) and ".." not in value


@dataclass(frozen=True)
class RefPlan:
    """What a `ref` means for a deploy."""

    ref: str  # as configured
    git_ref: str  # what `git fetch` asks for
    image_tag: str
    published: bool  # False: Sirius CI publishes no image for this ref
    pull_request: int | None = None


def plan_ref(ref: str, image_tag: str | None = None) -> RefPlan:
    """Resolve `ref` (already validated) and an optional explicit `image_tag`."""
    git_ref, derived_tag, published, pr = _derive(ref)
    if image_tag:
        return RefPlan(ref, git_ref, image_tag, True, pr)
    return RefPlan(ref, git_ref, derived_tag, published, pr)


def resolve_image_tag(ref: str, image_tag: str | None = None) -> str:
    return plan_ref(ref, image_tag).image_tag


def _derive(ref: str) -> tuple[str, str, bool, int | None]:
    if _RELEASE.fullmatch(ref):
        return ref, ref, True, None
    if ref in _LATEST_BRANCHES:
        return ref, "latest", True, None
    if ref in _SAME_NAME_TAGS:
        return ref, ref, True, None
    for pattern in (_PR_SHORT, _PR_REF):
        match = pattern.fullmatch(ref)
        if match:
            number = int(match.group(1))
            return f"refs/pull/{number}/head", f"pr-{number}-amd64", True, number
    match = _SHA_TAG.fullmatch(ref)
    commit = match.group(1) if match else (ref if _COMMIT.fullmatch(ref) else None)
    if commit:
        commit = commit.lower()
        return commit, f"sha-{commit}", True, None
    return ref, "latest", False, None
