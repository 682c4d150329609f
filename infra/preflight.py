"""Tag preflight: ask the registry which image tags exist before anything changes.

Runs inside the Pulumi program, so both `pulumi preview` (the canary) and `pulumi up`
catch a tag that was never published. Per image it walks a fallback chain (a pull
request rebuilds only what changed, so `pr-N-amd64` exists for some images and not
others) and returns the tag each image will run. Speaks the registry HTTP API v2 with
the anonymous bearer-token flow that ghcr.io uses; `requests` does the HTTP.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import requests

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
    """The registry did not answer (network, DNS, 5xx): a clear error, never a hang."""


@dataclass(frozen=True)
class Preflight:
    chosen: Mapping[str, str]  # image -> tag that exists for linux/amd64
    missing: Mapping[str, tuple[str, ...]]  # image -> tags tried, none found
    tried: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

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
        try:
            response = self.session.get(realm, params=params, timeout=self._timeout())
        except requests.RequestException as err:
            raise RegistryUnreachable(f"cannot reach the token service of {self.host}: {err}") from None
        if response.status_code != 200:
            return None  # no anonymous access: treated as "not published"
        body = self._json(response, "the token request")
        return body.get("token") or body.get("access_token")

    def has_amd64(self, image: str, tag: str) -> bool:
        repository = self._repository(image)
        response = self._get(f"{self.base}/v2/{repository}/manifests/{tag}", repository, _ACCEPT)
        if response.status_code in (401, 403, 404):
            return False
        if response.status_code != 200:
            raise RegistryUnreachable(f"registry {self.host} answered HTTP {response.status_code} for {image}:{tag}")
        manifest = self._json(response, f"{image}:{tag}")
        if "manifests" in manifest:  # an index: one entry per platform
            return any(
                (m.get("platform") or {}).get("os") == "linux" and (m.get("platform") or {}).get("architecture") == "amd64"
                for m in manifest["manifests"]
            )
        digest = (manifest.get("config") or {}).get("digest")
        if not digest:
            return False
        blob = self._get(f"{self.base}/v2/{repository}/blobs/{digest}", repository)
        if blob.status_code != 200:
            return False
        config = self._json(blob, f"the config of {image}:{tag}")
        return config.get("os", "linux") == "linux" and config.get("architecture") == "amd64"


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
    for image in images:
        chain = fallback_chain((explicit or {}).get(image, tag))
        tried[image] = chain
        for candidate in chain:
            if client.has_amd64(image, candidate):
                chosen[image] = candidate
                break
        else:
            missing[image] = chain
    return Preflight(chosen, missing, tried)


def fallback_warning(registry: str, image: str, wanted: str, running: str) -> str:
    """One image running another tag than the deploy's. Loud for a sha- ref: that commit's
    compose file then runs an image built from another commit."""
    text = f"preflight: {registry}/{image}:{wanted} is not published; running {running}"
    if wanted.startswith("sha-") and not running.startswith(wanted):
        text += (f". WARNING: the compose file of commit {wanted[4:16]} will run {image} built from another "
                 "commit (most main commits publish no sha- tag for every image)")
    return text


def run(config, client: RegistryClient | None = None) -> dict[str, str]:
    """The preflight of a stack: the tag each image runs, or one RunError.

    Logs which image falls back to which tag; an image with no tag at all is an
    error naming what was tried, unless allowBuildFallback (then the host builds it).
    """
    import pulumi

    if not config.preflight:
        pulumi.log.info("preflight: off (preflight: false); image tags are not checked")
        return {image: config.image_tag for image in SIRIUS_IMAGES}
    client = client or RegistryClient(config.image_registry)
    try:
        result = check_tags(client, config.image_tag)
    except RegistryUnreachable as err:
        raise pulumi.RunError(
            f"preflight: {err}. Check the network, or set sirius-demo:preflight false to deploy without checking tags."
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
    return {**{image: config.image_tag for image in result.missing}, **result.chosen}
