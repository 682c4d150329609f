"""HTTPS on the host, with real parts on 127.0.0.1: the engine deploys the stand-in stack
plus its Caddy proxy (Debian's caddy in an image of its own, pulled from the test
registry) on the test dockerd; pebble (Let's Encrypt's test CA) validates the domain
through that proxy, its DNS answering 127.0.0.1 (testbed/acme.py). A client that trusts
only pebble's root checks the chain, the name, the UI and API through the proxy and the
http:// redirect. The failure path: the domain resolves elsewhere (127.0.0.2), the CA
refuses, the deploy fails with the CA's reason and the stack keeps serving.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import time

import pytest

from testbed.acme import Pebble, caddy_image
from testbed.ports import free_port
from testbed.standins import TAG_V1
from .site import Deploy, Site

DOMAIN = "demo.sirius.test"


@pytest.fixture(scope="session")
def caddy_ref(docker_engine, registry):
    return caddy_image(docker_engine, registry)


@pytest.fixture
def ports():
    http_port = free_port()
    https_port = free_port()
    while https_port == http_port:
        https_port = free_port()
    return http_port, https_port


def deploy(site: Site, pebble: Pebble, caddy_ref: str, ports: tuple[int, int], cert_timeout: int = 60) -> Deploy:
    """The laptop rehearsal (python -m tools.rehearse) with a domain and pebble as the CA, in the
    site's dirs, plus the engine flags only tests need after `--`."""
    argv = [sys.executable, "-m", "tools.rehearse", "--home", str(site.project.parent), "--ref", "main",
            "--tag", TAG_V1, "--registry", f"{site.registry.host}/siriusscan", "--repo", site.repo_url,
            "--health-timeout", "90", "--min-free-gb", "1", "--pull-attempts", "2", "--pull-delay", "1",
            "--domain", DOMAIN, "--acme-ca", pebble.directory, "--acme-email", "ops@example.com",
            "--", "--proxy-image", caddy_ref, "--acme-ca-root", str(pebble.roots_file),
            "--proxy-http-port", str(ports[0]), "--proxy-https-port", str(ports[1]), "--cert-timeout", str(cert_timeout)]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, env=site.engine.env, timeout=600)
    report = json.loads((site.state / "deploy.json").read_text())
    assert f"status: {report['status']}" in result.stdout  # the rehearsal's table
    return Deploy(result.returncode, report, result.stdout, result.stderr, time.monotonic() - started)


def proxy_container(site: Site) -> dict:
    ids = site.engine.run("ps", "-aq", "--filter", "label=com.docker.compose.service=sirius-proxy").stdout.split()
    assert len(ids) == 1, ids
    return json.loads(site.engine.run("inspect", ids[0]).stdout)[0]


class Client:
    """A browser that trusts only pebble's issuing root and resolves DOMAIN to 127.0.0.1."""

    def __init__(self, pebble: Pebble, ports: tuple[int, int]):
        self.ctx = ssl.create_default_context(cafile=str(pebble.issuing_root))
        self.http_port, self.https_port = ports

    def https(self, path: str) -> tuple[int, bytes, dict]:
        raw = socket.create_connection(("127.0.0.1", self.https_port), timeout=10)
        tls = self.ctx.wrap_socket(raw, server_hostname=DOMAIN)  # verifies the chain and the name
        conn = http.client.HTTPSConnection(DOMAIN, self.https_port, context=self.ctx)
        conn.sock = tls
        conn.request("GET", path)
        answer = conn.getresponse()
        body = answer.read()
        cert = tls.getpeercert()
        conn.close()
        return answer.status, body, cert

    def http(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        conn.request("GET", path, headers={"Host": DOMAIN})
        answer = conn.getresponse()
        answer.read()
        conn.close()
        return answer.status, answer.getheader("Location") or ""


def listening_addresses(port: int) -> set[str]:
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
    return {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def test_https_deploy_gets_a_certificate_through_the_proxy_and_keeps_it(site, caddy_ref, ports, no_sirius_images):
    with Pebble(*ports) as pebble:
        first = deploy(site, pebble, caddy_ref, ports)
        assert first.code == 0, first.stderr
        proxy = first.report["proxy"]
        assert first.report["status"] == "healthy" and proxy["https"] == "ok" and proxy["error"] is None, proxy
        assert proxy["domain"] == DOMAIN and proxy["trust"] == "acme-ca-root"
        assert proxy["redirect"] is True and proxy["api"] is True
        assert proxy["issuer"].startswith("commonName=Pebble Intermediate CA") and proxy["notAfter"].endswith("Z")
        assert proxy["seconds"] < 60
        assert f"proxy: pulling {caddy_ref}" in first.stderr  # the pinned image, pulled only when missing

        # The CA really validated the domain through the proxy (no ALWAYS_VALID): one order, one certificate.
        container = proxy_container(site)
        assert container["HostConfig"]["NetworkMode"] == "host"
        logs = site.engine.run("logs", container["Id"])
        assert "served key authentication" in logs.stdout + logs.stderr
        assert [s.upper() for s in pebble.issued_serials()] == [proxy["serial"]]

        # A browser that trusts pebble's root: chain and name checked by ssl, UI and API through the proxy.
        client = Client(pebble, ports)
        status, page, cert = client.https("/")
        assert status == 200 and ("DNS", DOMAIN) in cert["subjectAltName"]
        assert cert["serialNumber"] == proxy["serial"]
        assert f"https://{DOMAIN}".encode() in page  # the stand-in UI shows NEXTAUTH_URL
        status, body, _ = client.https("/sirius-api/health")
        assert status == 200 and json.loads(body)["status"] == "healthy"
        assert client.http("/sirius-api/health?x=1") == (308, f"https://{DOMAIN}/sirius-api/health?x=1")
        env = site.env_file()
        assert (env["NEXTAUTH_URL"], env["NEXT_PUBLIC_SIRIUS_API_URL"]) == (f"https://{DOMAIN}", f"https://{DOMAIN}/sirius-api")
        # The tests bind only loopback; so does the proxy (default_bind).
        assert listening_addresses(ports[0]) == {"127.0.0.1"} and listening_addresses(ports[1]) == {"127.0.0.1"}
        # A wrong name is refused by the client: the certificate is for DOMAIN only.
        with pytest.raises(ssl.SSLError):
            client.ctx.wrap_socket(socket.create_connection(("127.0.0.1", ports[1]), timeout=10),
                                   server_hostname="other.sirius.test")

        # While the API is away, API clients get the "being updated" page as JSON under
        # /sirius-api, and the UI is still served (the deploy below starts the API again).
        api_id = site.containers()["sirius-api"]["id"]
        site.engine.run("stop", "-t", "1", api_id)
        status, body, _ = client.https("/sirius-api/health")
        assert status == 503 and json.loads(body)["status"] == "updating"
        assert client.https("/")[0] == 200
        site.engine.run("start", api_id)

        # Redeploy: nothing to do, same certificate, no new order.
        again = deploy(site, pebble, caddy_ref, ports)
        assert again.code == 0, again.stderr
        assert again.report["proxy"]["serial"] == proxy["serial"] and "proxy: pulling" not in again.stderr
        assert proxy_container(site)["Id"] == container["Id"]

        # A new proxy container reads the certificate from the caddy_data volume: still no new order.
        site.engine.run("rm", "-f", container["Id"])
        third = deploy(site, pebble, caddy_ref, ports)
        assert third.code == 0, third.stderr
        assert proxy_container(site)["Id"] != container["Id"]
        assert third.report["proxy"]["serial"] == proxy["serial"]
        assert len(pebble.issued_serials()) == 1, pebble.issued_serials()
        assert client.https("/")[2]["serialNumber"] == proxy["serial"]


def test_a_refused_certificate_fails_the_deploy_with_the_cas_reason_and_the_stack_stays_up(
        site, caddy_ref, ports, no_sirius_images):
    assert site.deploy(TAG_V1).code == 0  # an earlier healthy deploy: a rollback would have a target
    # The domain resolves to 127.0.0.2, where nothing listens: the CA cannot validate it.
    with Pebble(*ports, resolve_to="127.0.0.2") as pebble:
        failed = deploy(site, pebble, caddy_ref, ports, cert_timeout=15)
        assert failed.code == 1
        report, proxy = failed.report, failed.report["proxy"]
        assert report["status"] == "failed" and proxy["https"] == "failed"
        # The stack is healthy: a certificate is no reason to roll back, and this is the new target.
        assert report["rollback"] is None and site.env_file()["NEXTAUTH_URL"] == f"https://{DOMAIN}"
        assert json.loads((site.state / "last-healthy.json").read_text())["commit"] == report["commit"]
        assert "sirius-proxy" in json.loads((site.state / "last-healthy.json").read_text())["override"]
        assert report["error"].startswith(f"HTTPS for {DOMAIN}: no certificate within 15s: ")
        assert "(the stack itself is healthy and stays up)" in report["error"]
        # Caddy's reason, with the CA's own problem document.
        assert "could not get certificate from issuer" in proxy["error"] or "challenges failed" in proxy["error"]
        assert "urn:ietf:params:acme:error:" in proxy["error"] and "127.0.0.2" in proxy["error"]
        assert 15 <= proxy["seconds"] < 15 + 20
        assert pebble.issued_serials() == []
        # Nothing was torn down: the stack is healthy and the UI answers on its own port.
        assert all(s["health"] == "healthy" for s in report["services"].values())
        assert {c["status"] for s, c in site.containers().items() if s != "sirius-migrate"} == {"running"}
        conn = http.client.HTTPConnection("127.0.0.1", 3000, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
