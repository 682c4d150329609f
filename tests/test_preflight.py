"""The tag preflight against a fake registry in this process (no Docker): the bearer-token
flow ghcr.io uses, OCI indexes with several platforms, single-platform manifests, and the
ways a registry misbehaves (HTML instead of JSON, 5xx, slowness)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pulumi
import pytest

from infra import preflight
from infra.preflight import RegistryClient, RegistryUnreachable, check_tags, fallback_chain

NAMESPACE = "siriusscan"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def index(*architectures: str) -> dict:
    return {"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": MANIFEST, "digest": f"sha256:{arch * 8}", "platform": {"os": "linux", "architecture": arch}}
        for arch in architectures
    ]}


class FakeRegistry(http.server.ThreadingHTTPServer):
    """Registry API v2 that answers only with a bearer token for the asked repository.

    `tags[(image, tag)]` is an OCI index (dict), a single-platform manifest ("amd64" or
    "arm64": its config blob says so), "html" (a captive portal's page) or absent (404).
    `fail_next[path]` answers that many 503s first; `delay` slows every answer."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tags: dict[tuple[str, str], object] = {}
        self.fail_next: dict[str, int] = {}
        self.token_status = 200  # what the token service answers
        self.denied: set[tuple[str, str]] = set()  # (image, tag) answered 403 even with a token
        self.delay = 0.0
        self.log: list[tuple[str, int]] = []

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}/{NAMESPACE}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeRegistry

    def log_message(self, *args) -> None:
        pass

    def answer(self, status: int, body: object = b"", content_type: str = "application/json", **headers: str) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.server.log.append((urllib.parse.urlsplit(self.path).path, status))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        time.sleep(self.server.delay)
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/token":
            scope = urllib.parse.parse_qs(url.query).get("scope", [""])[0]
            if self.server.token_status != 200:
                return self.answer(self.server.token_status, {"errors": [{"code": "DENIED"}]})
            return self.answer(200, {"token": f"t:{scope}"})
        parts = url.path.split("/")  # ['', 'v2', ns, image, 'manifests'|'blobs', ref]
        repository = "/".join(parts[2:4])
        if self.headers.get("Authorization") != f"Bearer t:repository:{repository}:pull":
            realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
            return self.answer(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                               WWW_Authenticate=f'Bearer realm="{realm}",service="fake"')
        if self.server.fail_next.get(url.path, 0) > 0:
            self.server.fail_next[url.path] -= 1
            return self.answer(503, {"errors": [{"code": "UNAVAILABLE"}]})
        image, kind, ref = parts[3], parts[4], parts[5]
        if (image, ref) in self.server.denied:
            return self.answer(403, {"errors": [{"code": "DENIED"}]})
        if kind == "blobs":
            return self.answer(200, {"os": "linux", "architecture": ref.removeprefix("sha256:config-")})
        found = self.server.tags.get((image, ref))
        if found is None:
            return self.answer(404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        if found == "html":
            return self.answer(200, b"<html>Sign in to the hotel wifi</html>", "text/html")
        if isinstance(found, dict):
            return self.answer(200, found, INDEX)
        return self.answer(200, {"schemaVersion": 2, "mediaType": MANIFEST,
                                 "config": {"digest": f"sha256:config-{found}"}}, MANIFEST)


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake(_server) -> FakeRegistry:
    """The module's registry, emptied: no tags, no failures, no delay, no log."""
    _server.tags, _server.fail_next, _server.delay, _server.log = {}, {}, 0.0, []
    _server.token_status, _server.denied = 200, set()
    return _server


def test_fallback_chain():
    assert fallback_chain("pr-7-amd64") == ("pr-7-amd64", "latest")
    assert fallback_chain("v1.0.0") == ("v1.0.0", "v1.0.0-amd64", "latest")
    assert fallback_chain("latest") == ("latest", "latest-amd64")


def test_token_flow_and_platforms(fake):
    fake.tags = {
        ("sirius-ui", "v1"): index("amd64", "arm64"),  # multi-arch index
        ("sirius-api", "v1"): index("arm64"),  # index without amd64: falls back
        ("sirius-api", "v1-amd64"): "amd64",  # single-platform manifest, read through its config blob
        ("sirius-engine", "v1"): "arm64",
        ("sirius-engine", "latest"): index("amd64"),
    }
    result = check_tags(RegistryClient(fake.registry), "v1", ["sirius-ui", "sirius-api", "sirius-engine", "sirius-valkey"])
    assert result.chosen == {"sirius-ui": "v1", "sirius-api": "v1-amd64", "sirius-engine": "latest"}
    assert result.missing == {"sirius-valkey": ("v1", "v1-amd64", "latest")}
    # One token per repository, asked once: every other 401 would be a token not sent.
    assert [path for path, status in fake.log if path == "/token"] == ["/token"] * 4
    assert sum(status == 401 for _, status in fake.log) == 4


def test_the_token_round_trip_does_not_use_up_a_retry(fake):
    fake.tags = {("sirius-ui", "v1"): index("amd64")}
    fake.fail_next = {f"/v2/{NAMESPACE}/sirius-ui/manifests/v1": 1}
    assert check_tags(RegistryClient(fake.registry), "v1", ["sirius-ui"]).chosen == {"sirius-ui": "v1"}
    assert [status for _, status in fake.log] == [401, 200, 503, 200]  # 401, token, 503, retried


def test_a_registry_that_keeps_failing_is_unreachable(fake):
    fake.fail_next = {f"/v2/{NAMESPACE}/sirius-ui/manifests/v1": preflight.ATTEMPTS}
    with pytest.raises(RegistryUnreachable, match="HTTP 503"):
        check_tags(RegistryClient(fake.registry), "v1", ["sirius-ui"])


@pytest.mark.parametrize("status", [401, 403, 500, 503])
def test_a_token_service_that_refuses_or_fails_is_unreachable_never_a_fallback(fake, status):
    """A flaky or refusing token service says nothing about the tag: falling back to `latest`
    would redeploy the demo with other images."""
    fake.tags = {("sirius-ui", "v1"): index("amd64"), ("sirius-ui", "latest"): index("amd64")}
    fake.token_status = status
    with pytest.raises(RegistryUnreachable, match=f"token service of 127.0.0.1:[0-9]+ answered HTTP {status}"):
        check_tags(RegistryClient(fake.registry), "v1", ["sirius-ui"])


def test_a_manifest_denied_with_a_token_is_unreachable_never_a_fallback(fake):
    fake.tags = {("sirius-ui", "v1"): index("amd64"), ("sirius-ui", "latest"): index("amd64")}
    fake.denied = {("sirius-ui", "v1")}
    with pytest.raises(RegistryUnreachable, match=r"HTTP 403 for sirius-ui:v1; no pull access"):
        check_tags(RegistryClient(fake.registry), "v1", ["sirius-ui"])


def test_only_not_found_falls_back_and_the_digest_is_the_chosen_tags(fake):
    fake.tags = {("sirius-ui", "latest"): index("amd64"), ("sirius-api", "v1"): index("amd64", "arm64")}
    result = check_tags(RegistryClient(fake.registry), "v1", ["sirius-ui", "sirius-api"])
    assert result.chosen == {"sirius-ui": "latest", "sirius-api": "v1"}
    body = json.dumps(index("amd64", "arm64")).encode()  # what the fake serves: its digest is sha256 of it
    assert result.digests["sirius-api"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert result.digests["sirius-ui"] != result.digests["sirius-api"]


def test_html_instead_of_json_is_a_clear_error(fake):
    fake.tags = {("sirius-ui", "v1"): "html"}
    with pytest.raises(RegistryUnreachable, match=r"text/html.*not registry JSON; is it a container registry"):
        check_tags(RegistryClient(fake.registry), "v1", ["sirius-ui"])


def test_the_whole_preflight_has_one_deadline(fake):
    fake.delay = 0.05
    started = time.monotonic()
    with pytest.raises(RegistryUnreachable, match=r"within 0.3 s"):
        check_tags(RegistryClient(fake.registry, deadline=0.3), "v1")  # 6 images x 3 tags x ~0.1 s
    assert time.monotonic() - started < 1.0


class _Settings:
    preflight = True
    image_tag = "v1"
    allow_build_fallback = False

    def __init__(self, registry: str):
        self.image_registry = registry


def test_the_program_turns_registry_trouble_into_one_run_error(fake):
    fake.tags = {(image, "v1"): "html" for image in preflight.SIRIUS_IMAGES}
    with pytest.raises(pulumi.RunError, match=r"preflight: registry .* not registry JSON.*preflight false"):
        preflight.run(_Settings(fake.registry))


def test_a_sha_ref_falling_back_is_called_out_image_by_image():
    sha = "sha-" + "a" * 40
    loud = preflight.fallback_warning("ghcr.io/siriusscan", "sirius-ui", sha, "latest")
    assert "WARNING: the compose file of commit aaaaaaaaaaaa will run sirius-ui built from another commit" in loud
    assert "WARNING" not in preflight.fallback_warning("ghcr.io/siriusscan", "sirius-ui", sha, sha + "-amd64")
    assert "WARNING" not in preflight.fallback_warning("ghcr.io/siriusscan", "sirius-ui", "pr-7-amd64", "latest")
