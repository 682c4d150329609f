"""The rules shared by the Pulumi program and the host engine: one copy of each.

Which git ref to fetch and which image tag to run for the `ref` setting, and what a
registry, image name, tag and public host look like. Standard library only: this
module ships to the instance inside the engine. Pure functions: no Pulumi, no I/O. The rules follow what Sirius CI publishes to
ghcr.io (see ../shared/sirius-stack.md): `latest` from main, `pr-N-amd64` for pull
requests (per-architecture only), `sha-<commit>` from main pushes, release tags
re-tagged by hand, `beta` and `dev` as-is.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from dataclasses import dataclass


DEFAULT_REGISTRY = "ghcr.io/siriusscan"
# The ports the world reaches: the UI and the API. Every other port a Sirius service
# publishes is bound to 127.0.0.1 on the host (RabbitMQ takes guest/guest, Valkey has no
# password), and the security group opens only these two (and SSH).
UI_PORT = 3000
API_PORT = 9001
PUBLIC_SERVICES = {"sirius-ui": UI_PORT, "sirius-api": API_PORT}
# The proxy (engine/proxy.py) owns UI_PORT and API_PORT; the UI and API containers publish
# their own port only on 127.0.0.1, on these, so the proxy keeps answering (503, "being
# updated") while a container is replaced. None of them is a port upstream publishes.
BACKEND_PORTS = {"sirius-ui": 13000, "sirius-api": 19001}
# With a domain, the world reaches the demo only through the HTTPS proxy on these.
HTTP_PORT = 80
HTTPS_PORT = 443
# The API behind the proxy: the UI (NextAuth) owns /api/auth/*, so the API cannot live
# under /api. Caddy strips this prefix: https://<domain>/sirius-api/health is GET /health.
API_PATH = "/sirius-api"
API_HEALTH_PATH = "/health"  # the API's own check: 200 and {"status": "healthy"}, no key
# The compose project's name when the file names none (upstream's does: sirius).
DEFAULT_PROJECT = "sirius"
# The proxy's image: Caddy, pinned by version (the engine pulls it only when missing).
PROXY_IMAGE = "docker.io/library/caddy:2.8.4"
PROXY_IMAGE_FORM = "an image reference with a tag or digest, e.g. docker.io/library/caddy:2.8.4"
# ACME directories by the `acmeCa` setting's names; any other https:// URL is taken as is
# (a private CA, or pebble in the tests).
ACME_CAS = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}
ACME_CA_FORM = "production, staging or an https:// ACME directory URL"
DOMAIN_FORM = "a DNS name with at least two labels, e.g. demo.example.com (letters, digits, '-')"
EMAIL_FORM = "an email address, e.g. ops@example.com"
# The scanner's fence (engine/firewall.py, docs/scanner-firewall.md). sirius-engine runs
# nmap with NET_RAW: it may reach the stack's own network, the stack's `scanTargets` and
# what upstream's engine fetches by itself, nothing else. The override pins the sirius
# network (subnet, bridge name) and the engine's address, so the rules hold from the
# first packet and across reboots, when Docker restarts the containers on its own.
SCANNER_SERVICE = "sirius-engine"
SIRIUS_SUBNET = "172.30.213.0/24"  # clear of the default VPC (172.31.0.0/16) and Docker's first pools
SIRIUS_DYNAMIC_RANGE = "172.30.213.0/25"  # what Docker hands out: never the engine's address
SCANNER_ADDRESS = "172.30.213.250"
SIRIUS_BRIDGE = "br-sirius"  # the network's bridge device (at most 15 characters)
# What sirius-engine fetches on its own at run time (upstream main 823a80f6; its app-scanner
# a031480c enriches found CVEs with go-api's nvd.GetCVE). The NSE scripts are baked into the
# image (sirius-nse at a pinned commit); the scanner never clones or pulls them at run time.
SCANNER_FETCHES = (("services.nvd.nist.gov", 443),)
FIREWALL_PARENT = "DOCKER-USER"  # Docker's chain for user rules, before its own in FORWARD
FIREWALL_CHAIN = "SIRIUS-SCANNER"
CHAIN_NAME_PATTERN = re.compile(r"[A-Z][A-Z0-9_-]{0,27}")
SCAN_TARGETS_FORM = "IPv4 CIDRs, comma separated, e.g. 203.0.113.0/28,198.51.100.7/32 (empty: none)"
MAX_SCAN_TARGETS = 64
_LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")  # EC2's metadata service (169.254.169.254) lives here
# The first release whose compose file runs the published images with the API key file.
FIRST_SUPPORTED_RELEASE = (1, 1, 0)

# Registry host (optional port) and namespace, e.g. ghcr.io/siriusscan or 127.0.0.1:5000/siriusscan.
REGISTRY_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?(?:/[a-z0-9][a-z0-9._-]*)+")
# An image's last path component, e.g. sirius-ui.
IMAGE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
# The Sirius compose project's repository: https:// (optional port) or file:///, no '..'.
REPO_URL_PATTERN = re.compile(r"(?:https://[A-Za-z0-9.-]+(?::\d{1,5})?|file://)(?:/[A-Za-z0-9._~-]+)+/?")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_EMAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,63}")
_ACME_URL = re.compile(r"https://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[A-Za-z0-9._~-]+)*/?")
# registry/path:tag or registry/path@sha256:<hex> (a tag or a digest is required: no moving default).
_IMAGE_REF = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?(?:/[a-z0-9][a-z0-9._-]*)+"
                        r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?")
# Docker's tag grammar.
IMAGE_TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# What a deploy pins (the canary's inputs): a manifest digest and a full git commit id.
DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
DIGEST_FORM = "IMAGE=sha256:<64 hex>, e.g. sirius-ui=sha256:0123...cdef"
COMMIT_PATTERN = re.compile(r"[0-9a-f]{40}")
COMMIT_FORM = "a full commit id (40 lower-case hex digits)"
# A safe subset of git's ref grammar: nothing a shell or git option parser reads as syntax.
REF_FORM = "expected a branch, tag, pr-N or commit: letters, digits, '.', '_', '-', '/'"
_REF_CHAR = re.compile(r"[A-Za-z0-9._/-]")

_RELEASE = re.compile(r"v\d+\.\d+\.\d+(?:-[A-Za-z0-9.]+)?")
_PR_SHORT = re.compile(r"pr-(\d{1,9})")
_PR_REF = re.compile(r"refs/pull/(\d{1,9})(?:/(?:head|merge))?")
_SHA_TAG = re.compile(r"sha-([0-9a-fA-F]{40})")
_COMMIT = re.compile(r"[0-9a-fA-F]{40}")
_LATEST_BRANCHES = frozenset({"main"})
# `beta` images are `latest`'s digests, built from main: main's compose runs them.
_MAIN_TAGS = frozenset({"beta"})
# What a ref may not be, and why (shared facts: refs vs images).
_REFUSED = {
    "dev": "is unmaintained: its images were last pushed in 2025-10 and predate the API key file "
    "that every compose file since v1.1.0 mounts; use main (tag latest) or v1.1.0 or later",
}


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


# Branches that exist but cannot run the published images. The engine still takes them (its
# compatibility check names what is missing, and the tests exercise that); the stack config
# refuses them before any resource exists.
_STALE = {
    "demo": "is stale (last commit 2025-11-13): its rabbitmq, postgres and valkey have no image:, it has "
    "no API key file, and the published latest images crash-loop on it; use main (tag latest) or v1.1.0 or later",
}


def stale_ref_problem(ref: str) -> str | None:
    """Why the stack config refuses `ref` (a valid ref): unmaintained, stale or too old; or None."""
    if ref in _STALE:
        return f"{ref!r} {_STALE[ref]}"
    return release_problem(ref)


def release_problem(ref: str) -> str | None:
    """Why `ref` (a valid ref) cannot deploy the published images, or None."""
    if ref in _REFUSED:
        return f"{ref!r} {_REFUSED[ref]}"
    match = _RELEASE.fullmatch(ref)
    if match:
        version = tuple(int(part) for part in ref[1:].split("-")[0].split("."))
        if version < FIRST_SUPPORTED_RELEASE:
            return (f"{ref!r} is older than v1.1.0, the first release whose compose file runs the "
                    "published images (older ones build from source or need the removed SIRIUS_API_KEY); "
                    "use v1.1.0 or later, or main")
    return None


def is_domain(value: str) -> bool:
    """A DNS name a certificate can be issued for: two or more labels, lower case, not an IP."""
    labels = value.split(".") if isinstance(value, str) else []
    return (len(value) <= 253 and len(labels) >= 2 and all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
            and not labels[-1].isdigit())


def is_email(value: str) -> bool:
    return bool(_EMAIL.fullmatch(value)) and ".." not in value


def acme_directory(ca: str) -> str | None:
    """The ACME directory URL for the `acmeCa` setting, or None when it is not one."""
    if ca in ACME_CAS:
        return ACME_CAS[ca]
    return ca if _ACME_URL.fullmatch(ca) and ".." not in ca else None


def is_image_ref(value: str) -> bool:
    """A pinned image reference: it names a tag or a digest."""
    return (isinstance(value, str) and bool(_IMAGE_REF.fullmatch(value)) and ".." not in value
            and ("@sha256:" in value or ":" in value.rsplit("/", 1)[-1]))


def local_address(bind_address: str) -> str:
    """Where the host itself reaches the UI and API: their bind address, else loopback."""
    return bind_address if bind_address and bind_address != "0.0.0.0" else "127.0.0.1"


def is_repo_url(url: str) -> bool:
    return bool(REPO_URL_PATTERN.fullmatch(url)) and ".." not in url


def is_digest(value: object) -> bool:
    return isinstance(value, str) and bool(DIGEST_PATTERN.fullmatch(value))


def is_commit(value: object) -> bool:
    return isinstance(value, str) and bool(COMMIT_PATTERN.fullmatch(value))


def is_immutable_tag(tag: str) -> bool:
    """Release and sha- image tags never move: present locally, they need no registry trip."""
    return bool(_RELEASE.fullmatch(tag) or _SHA_TAG.fullmatch(tag))


def is_public_host(value: str) -> bool:
    """An IP address or DNS name that browsers use to reach the demo."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(_HOSTNAME.fullmatch(value)) and ".." not in value


# Stack names and expiry, shared by the Pulumi program (domain names, the expiresAt
# setting) and ci.stacks (branch stacks, cleanup).
NAME_HASH_LENGTH = 10  # hex digits of SHA-256 that keep cleaned names apart
UTC_TIME_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
UTC_TIME_FORM = "a UTC time like 2026-12-01T02:00:00Z"
# The nightly reset (docs/reset.md): the workflow runs at minute 59 of every hour and a
# stack's nightlyReset names the hour it resets in, or turns it off.
NIGHTLY_RESET_OFF = "off"
NIGHTLY_RESET_PATTERN = re.compile(r"(?:[01][0-9]|2[0-3]):59")
NIGHTLY_RESET_FORM = ("HH:59, a UTC hour at minute 59 (the reset workflow runs at minute 59 of every hour), "
                      "e.g. 23:59 or 04:59, or off")


def is_nightly_reset(value: str) -> bool:
    return value == NIGHTLY_RESET_OFF or bool(NIGHTLY_RESET_PATTERN.fullmatch(value))


MAX_DNS_LABEL = 63
_NOT_LABEL = re.compile(r"[^a-z0-9]+")


def dns_label(stack: str) -> str:
    """A stack name (`org/project/stack` or `stack`) as one DNS label, for `<label>.<domainSuffix>`.

    Kept when it already is a label (lower-case `[a-z0-9-]`, at most 63, no `--`: Let's
    Encrypt refuses `ab--c`-style labels that are not punycode): `pr-42` stays `pr-42`.
    Otherwise, as ci.stacks does for stack names: cleaned (anything else to one `-`), cut,
    and suffixed with NAME_HASH_LENGTH hex of the SHA-256 of the stack name, so `Demo` and
    `demo`, or two long branch stacks, get different names."""
    short = stack.rsplit("/", 1)[-1]
    if _DOMAIN_LABEL.fullmatch(short) and "--" not in short:
        return short
    digest = hashlib.sha256(short.encode("utf-8", "surrogatepass")).hexdigest()[:NAME_HASH_LENGTH]
    folded = unicodedata.normalize("NFKD", short).encode("ascii", "ignore").decode("ascii").lower()
    head = _NOT_LABEL.sub("-", folded)[: MAX_DNS_LABEL - 1 - NAME_HASH_LENGTH].strip("-")
    return f"{head}-{digest}" if head else digest


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
    if ref in _MAIN_TAGS:
        return "main", ref, True, None
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


def scan_targets(value: str) -> tuple[str, ...]:
    """The `scanTargets` setting as CIDRs (comma separated, "" = none); ValueError says why not.

    IPv4 only: the sirius network has no IPv6, so an IPv6 target could never be reached.
    Never the whole internet: that is what the fence exists to prevent.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a string of {SCAN_TARGETS_FORM}")
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if len(parts) > MAX_SCAN_TARGETS:
        raise ValueError(f"lists {len(parts)} CIDRs; expected at most {MAX_SCAN_TARGETS}")
    found = []
    for part in parts:
        shown = repr(part if len(part) <= 60 else part[:57] + "...")
        if "/" not in part:
            raise ValueError(f"{shown} has no prefix length; expected {SCAN_TARGETS_FORM}")
        try:
            network = ipaddress.ip_network(part, strict=True)
        except ValueError as err:
            raise ValueError(f"{shown} is not a valid CIDR ({err}); expected {SCAN_TARGETS_FORM}") from None
        if network.version != 4:
            raise ValueError(f"{shown} is IPv6; the scanner's network is IPv4 only; expected {SCAN_TARGETS_FORM}")
        if network.prefixlen == 0:
            raise ValueError(f"{shown} is the whole internet, which the scanner must never reach; "
                             "expected the networks you own or may scan")
        if network.overlaps(_LINK_LOCAL):
            raise ValueError(f"{shown} overlaps {_LINK_LOCAL}, where the instance metadata service hands out the "
                             "host's credentials; expected the networks you own or may scan")
        found.append(str(network))
    return tuple(dict.fromkeys(found))
