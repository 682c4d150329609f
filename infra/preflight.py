"""Tag preflight: ask the registry which image tags exist before anything changes.

Runs inside the Pulumi program, so both `pulumi preview` (the canary) and `pulumi up`
catch a tag that was never published. Per image it walks a fallback chain (a pull
request rebuilds only what changed, so `pr-N-amd64` exists for some images and not
others) and returns the tag each image will run. Speaks the registry HTTP API v2 with
the anonymous bearer-token flow that ghcr.io uses; `requests` does the HTTP.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import requests

from engine import rules

# The images of the Sirius stack (sirius-migrate runs the sirius-api image).
SIRIUS_IMAGES = ("sirius-api", "sirius-engine", "sirius-postgres", "sirius-rabbitmq", "sirius-ui", "sirius-valkey")
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
ATTEMPTS = 2  # per request; the 401 -> token round trip is not one of them
DEADLINE = 90.0  # seconds for the whole preflight, however many images, tags and retries
_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryUnreachable(RuntimeError):
    """The registry did not answer as a registry (network, DNS, timeouts, 5xx, a token service
    that refuses, 401/403 on a manifest): a clear error, never a hang and never a fallback to
    another tag. Only 404 ("manifest unknown") means a tag is not published."""


@dataclass(frozen=True)
class Preflight:
    chosen: Mapping[str, str]  # image -> tag that exists for linux/amd64
    missing: Mapping[str, tuple[str, ...]]  # image -> tags tried, none found
    tried: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    digests: Mapping[str, str] = field(default_factory=dict)  # image -> manifest digest of its chosen tag

    @property
    def fell_back(self) -> dict[str, str]:
        return {image: tag for image, tag in self.chosen.items() if tag != self.tried[image][0]}


def fallback_chain(tag: str) -> tuple[str, ...]:
    """Tags to try, best first: the tag, its amd64 variant, then `latest`."""
    chain = [tag]
    if not tag.endswith("-amd64"):
        chain.append(f"{tag}-amd64")
    if tag != "latest":
        chain.append("latest")
    return tuple(dict.fromkeys(chain))


class RegistryClient:
    """Just enough of the registry API to ask 'does name:tag exist for linux/amd64?'.

    Every request shares one deadline (`deadline` seconds from the client's creation), so a
    slow registry ends the preflight with a clear error instead of 6 images x 3 tags x
    timeouts."""

    def __init__(self, registry: str, session: requests.Session | None = None, deadline: float = DEADLINE):
        host, _, namespace = registry.partition("/")
        self.host = host
        self.namespace = namespace
        loopback = host.split(":")[0] in ("127.0.0.1", "localhost", "::1")
        self.base = f"{'http' if loopback else 'https'}://{host}"
        self.session = session or requests.Session()
        self._tokens: dict[str, str] = {}
        self._deadline_seconds = deadline
        self._deadline = time.monotonic() + deadline

    def _repository(self, image: str) -> str:
        return f"{self.namespace}/{image}" if self.namespace else image

    def _timeout(self) -> tuple[float, float]:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise RegistryUnreachable(
                f"registry {self.host} did not answer every tag question within {self._deadline_seconds:g} s"
            )
        return (min(CONNECT_TIMEOUT, left), min(READ_TIMEOUT, left))

    def _json(self, response: requests.Response, what: str) -> dict:
        """The JSON body, or the same clear error as an unreachable registry (a captive
        portal, a proxy's login page or a web server at that address answer 200 with HTML)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            kind = response.headers.get("Content-Type", "no content type")
            raise RegistryUnreachable(
                f"registry {self.host} answered {what} with HTTP {response.status_code} ({kind}) that is not "
                "registry JSON; is it a container registry, or is a proxy or captive portal in the way?"
            )
        return body

    def _get(self, url: str, repository: str, accept: str | None = None) -> requests.Response:
        headers = {"Accept": accept} if accept else {}
        last_error: Exception | None = None
        failures = 0
        while failures < ATTEMPTS:
            if repository in self._tokens:
                headers["Authorization"] = f"Bearer {self._tokens[repository]}"
            try:
                response = self.session.get(url, headers=headers, timeout=self._timeout())
            except requests.RequestException as err:
                last_error, failures = err, failures + 1
                continue
            if response.status_code == 401 and repository not in self._tokens:
                token = self._token(response.headers.get("WWW-Authenticate", ""), repository)
                if token is None:
                    return response
                self._tokens[repository] = token  # at most once per repository: no loop
                continue
            if response.status_code >= 500:
                last_error, failures = RuntimeError(f"HTTP {response.status_code}"), failures + 1
                continue
            return response
        raise RegistryUnreachable(f"cannot reach registry {self.host}: {last_error}")

    def _token(self, challenge: str, repository: str) -> str | None:
        if not challenge.lower().startswith("bearer "):
            return None
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", None)
        if not realm:
            return None
        params["scope"] = f"repository:{repository}:pull"
        response = None
        for _ in range(ATTEMPTS):  # a flaky token service gets the same second chance as the registry
            try:
                response = self.session.get(realm, params=params, timeout=self._timeout())
            except requests.RequestException as err:
                response, last_error = None, err
                continue
            if response.status_code < 500:
                break
        if response is None:
            raise RegistryUnreachable(f"cannot reach the token service of {self.host}: {last_error}") from None
        if response.status_code != 200:
            # A refusing or failing token service says nothing about the tag: never "not published".
            raise RegistryUnreachable(f"the token service of {self.host} answered HTTP {response.status_code} "
                                      f"for {repository}; is the image public and the namespace right?")
        body = self._json(response, "the token request")
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryUnreachable(f"the token service of {self.host} gave no token for {repository}")
        return token

    def manifest_digest(self, image: str, tag: str) -> str | None:
        """The manifest digest of image:tag when it exists for linux/amd64; None when it is not
        published (404) or has no amd64 image. Anything else raises RegistryUnreachable."""
        repository = self._repository(image)
        response = self._get(f"{self.base}/v2/{repository}/manifests/{tag}", repository, _ACCEPT)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            hint = "; no pull access to it" if response.status_code in (401, 403) else ""
            raise RegistryUnreachable(f"registry {self.host} answered HTTP {response.status_code} for {image}:{tag}{hint}")
        manifest = self._json(response, f"{image}:{tag}")
        digest = response.headers.get("Docker-Content-Digest") or f"sha256:{hashlib.sha256(response.content).hexdigest()}"
        if not rules.is_digest(digest):
            raise RegistryUnreachable(f"registry {self.host} gave {digest[:80]!r} as the digest of {image}:{tag}")
        if "manifests" in manifest:  # an index: one entry per platform
            amd64 = any(
                (m.get("platform") or {}).get("os") == "linux" and (m.get("platform") or {}).get("architecture") == "amd64"
                for m in manifest["manifests"]
            )
            return digest if amd64 else None
        config_digest = (manifest.get("config") or {}).get("digest")
        if not config_digest:
            return None
        blob = self._get(f"{self.base}/v2/{repository}/blobs/{config_digest}", repository)
        if blob.status_code != 200:
            raise RegistryUnreachable(f"registry {self.host} answered HTTP {blob.status_code} for the config of {image}:{tag}")
        config = self._json(blob, f"the config of {image}:{tag}")
        return digest if config.get("os", "linux") == "linux" and config.get("architecture") == "amd64" else None

    def has_amd64(self, image: str, tag: str) -> bool:
        return self.manifest_digest(image, tag) is not None


def check_tags(
    client: RegistryClient,
    tag: str,
    images: Iterable[str] = SIRIUS_IMAGES,
    explicit: Mapping[str, str] | None = None,
) -> Preflight:
    """Walk each image's fallback chain; `explicit` pins an image's first choice."""
    chosen: dict[str, str] = {}
    missing: dict[str, tuple[str, ...]] = {}
    tried: dict[str, tuple[str, ...]] = {}
    digests: dict[str, str] = {}
    for image in images:
        chain = fallback_chain((explicit or {}).get(image, tag))
        tried[image] = chain
        for candidate in chain:
            digest = client.manifest_digest(image, candidate)
            if digest:
                chosen[image], digests[image] = candidate, digest
                break
        else:
            missing[image] = chain
    return Preflight(chosen, missing, tried, digests)


def fallback_warning(registry: str, image: str, wanted: str, running: str) -> str:
    """One image running another tag than the deploy's. Loud for a sha- ref: that commit's
    compose file then runs an image built from another commit."""
    text = f"preflight: {registry}/{image}:{wanted} is not published; running {running}"
    if wanted.startswith("sha-") and not running.startswith(wanted):
        text += (f". WARNING: the compose file of commit {wanted[4:16]} will run {image} built from another "
                 "commit (most main commits publish no sha- tag for every image)")
    return text


@dataclass(frozen=True)
class Pins:
    """What the deploy runs, as the program saw it: the tag per image, and (preflight on) the
    manifest digest per image and the commit of the ref. Digests and commit are the deploy's
    triggers: a moved `latest` or a new commit on main redeploys, nothing else does."""

    tags: Mapping[str, str]
    digests: Mapping[str, str] = field(default_factory=dict)
    commit: str = ""

    @property
    def pinned(self) -> bool:
        return bool(self.commit)

    def trigger(self) -> dict:
        """The deploy command's trigger: identical for the same registry state and commit."""
        return {"commit": self.commit, "digests": dict(sorted(self.digests.items()))}


def offline_note(deploy_urn: str) -> str:
    """Said on every preview and up with preflight off: moving tags and branches do not redeploy."""
    return ("preflight: off (preflight: false): image digests and the ref's commit are not resolved, so a moved "
            "tag (latest) or a new commit of the ref does not redeploy. To deploy what they point at now: "
            f"pulumi up --replace '{deploy_urn}'")


def run(config, client: RegistryClient | None = None,
        resolve_commit: Callable[[str, str], str] | None = None) -> Pins:
    """The preflight of a stack: the tag and digest each image runs and the ref's commit, or one RunError.

    Logs which image falls back to which tag; an image with no tag at all is an
    error naming what was tried, unless allowBuildFallback (then the host builds it).
    """
    import pulumi

    from infra import gitref

    if not config.preflight:
        return Pins({image: config.image_tag for image in SIRIUS_IMAGES})
    client = client or RegistryClient(config.image_registry)
    try:
        result = check_tags(client, config.image_tag)
    except RegistryUnreachable as err:
        raise pulumi.RunError(
            f"preflight: registry unreachable: {err}. Check the network, or set sirius-demo:preflight false to deploy "
            "without checking tags (moving tags then redeploy only with pulumi up --replace, see docs/canary.md)."
        ) from None
    for image, tag in sorted(result.fell_back.items()):
        pulumi.log.warn(fallback_warning(config.image_registry, image, config.image_tag, tag))
    if result.missing:
        tried = "; ".join(f"{image} (tried {', '.join(tags)})" for image, tags in sorted(result.missing.items()))
        if not config.allow_build_fallback:
            raise pulumi.RunError(
                f"preflight: no published linux/amd64 image in {config.image_registry} for: {tried}. "
                "Pick another ref or imageTag, or set sirius-demo:allowBuildFallback true to build them on the host."
            )
        pulumi.log.warn(f"preflight: will build on the host (allowBuildFallback): {tried}")
    try:
        commit = (resolve_commit or gitref.resolve)(config.repo_url, config.git_ref)
    except gitref.RefError as err:
        raise pulumi.RunError(f"preflight: {err}") from None
    tags = {**{image: config.image_tag for image in result.missing}, **result.chosen}
    pulumi.log.info(f"preflight: {config.ref} is commit {commit}; " + ", ".join(
        f"{image} {tags[image]} = {digest}" for image, digest in sorted(result.digests.items())))
    return Pins(tags, dict(result.digests), commit)
