"""The proxy's pure parts: the Caddyfile (also run by the real caddy: the "being updated"
page), the compose service, the .env URLs, and Caddy's reason read from its log. The log samples in data/ are what Debian's caddy 2.6.2
printed here against pebble (obtained; and refused: the domain resolving to 127.0.0.2)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from engine import caddylog, envfile, override, proxy, proxyconfig, proxyhttps, rules
from engine.settings import Settings
from testbed.ports import free_port

DATA = Path(__file__).parent / "data"
FAILED_LOG = (DATA / "caddy-2.6.2-challenge-failed.log").read_text()
OBTAINED_LOG = (DATA / "caddy-2.6.2-obtained.log").read_text()
DOMAIN = "demo.sirius.test"


def settings(**kw) -> Settings:
    base = Settings(repo_url="https://github.com/SiriusScan/Sirius.git", ref="main", git_ref="main", image_tag="latest",
                    state_dir="/var/lib/sirius-demo", domain=DOMAIN)
    return dataclasses.replace(base, **kw)


def test_caddyfile_production_defaults():
    text = proxyconfig.caddyfile(settings())
    assert "\tacme_ca https://acme-v02.api.letsencrypt.org/directory\n" in text
    assert "\thttp_port 80\n\thttps_port 443\n" in text
    assert "\tadmin off\n" in text
    for absent in ("email", "acme_ca_root", "default_bind"):
        assert absent not in text
    # The API under /sirius-api, prefix stripped; everything else is the UI: on their loopback ports.
    assert "\thandle_path /sirius-api/* {\n\t\treverse_proxy 127.0.0.1:19001\n\t}\n" in text
    assert "\thandle {\n\t\treverse_proxy 127.0.0.1:13000\n\t}\n" in text
    assert f"\n{DOMAIN} {{\n" in text
    # The plain ports stay the proxy's too.
    assert "\nhttp://:3000 {\n" in text and "\nhttp://:9001 {\n" in text


def test_caddyfile_without_a_domain_is_plain_http_on_the_ui_and_api_ports():
    text = proxyconfig.caddyfile(settings(domain=""))
    assert "\nhttp://:3000 {\n" in text and "\nhttp://:9001 {\n" in text
    assert "\treverse_proxy 127.0.0.1:13000\n}" in text and "\treverse_proxy 127.0.0.1:19001\n}" in text
    assert "\tadmin off\n" in text
    for absent in ("acme", "email", "http_port", "https_port", DOMAIN, "sirius-api"):
        assert absent not in text
    assert "\tdefault_bind 127.0.0.1\n" in proxyconfig.caddyfile(settings(domain="", bind_address="127.0.0.1"))


def test_caddyfile_with_email_private_ca_root_ports_and_bind():
    text = proxyconfig.caddyfile(settings(acme_email="ops@example.com", acme_ca="https://127.0.0.1:14000/dir",
                                    acme_ca_root="/tmp/t/roots.pem", proxy_http_port=18080, proxy_https_port=18443,
                                    bind_address="127.0.0.1"))
    assert "\temail ops@example.com\n" in text
    assert "\tacme_ca https://127.0.0.1:14000/dir\n" in text
    # Caddy reads the root inside its container, where the engine mounts it.
    assert f"\tacme_ca_root {proxyconfig.CA_ROOT_MOUNT}\n" in text and "/tmp/t/roots.pem" not in text
    assert "\thttp_port 18080\n\thttps_port 18443\n\tdefault_bind 127.0.0.1\n" in text


def test_caddyfile_staging_listens_on_the_bind_address_and_reaches_the_services_on_loopback():
    text = proxyconfig.caddyfile(settings(acme_ca="staging", bind_address="10.0.0.5"))
    assert "acme_ca https://acme-staging-v02.api.letsencrypt.org/directory" in text
    assert "\tdefault_bind 10.0.0.5\n" in text
    assert "reverse_proxy 127.0.0.1:19001" in text and "reverse_proxy 127.0.0.1:13000" in text
    assert "10.0.0.5:" not in text


def adapt(text: str, tmp_path: Path) -> dict:
    import subprocess

    path = tmp_path / "Caddyfile"
    path.write_text(text)
    result = subprocess.run(["caddy", "adapt", "--config", str(path), "--adapter", "caddyfile"],
                            capture_output=True, text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_caddyfile_is_valid_for_the_real_caddy(tmp_path):
    """The real binary (Debian's caddy, a test dependency) accepts what the engine writes."""
    config = adapt(proxyconfig.caddyfile(settings(acme_email="ops@example.com", bind_address="127.0.0.1")), tmp_path)
    assert config["admin"]["disabled"] is True
    routes = json.dumps(config["apps"]["http"])
    assert '"/sirius-api/*"' in routes and '"strip_path_prefix": "/sirius-api"' in routes
    listens = sorted(a for server in config["apps"]["http"]["servers"].values() for a in server["listen"])
    assert listens == ["127.0.0.1:3000", "127.0.0.1:443", "127.0.0.1:9001"]
    plain = adapt(proxyconfig.caddyfile(settings(domain="")), tmp_path)
    assert plain["admin"]["disabled"] is True and "tls" not in plain["apps"]
    assert sorted(a for server in plain["apps"]["http"]["servers"].values() for a in server["listen"]) == [":3000", ":9001"]


def test_service_spec():
    s = settings(acme_ca_root="/tmp/t/roots.pem")
    spec = proxyconfig.service(s, "/var/lib/sirius-demo/Caddyfile", "text", "root")
    assert spec["image"] == rules.PROXY_IMAGE and spec["network_mode"] == "host" and spec["restart"] == "unless-stopped"
    assert spec["volumes"] == ["caddy_data:/data", "/var/lib/sirius-demo/Caddyfile:/etc/caddy/Caddyfile:ro",
                               "/tmp/t/roots.pem:/etc/caddy/acme-ca-root.pem:ro"]
    assert "ports" not in spec  # host network: Caddy binds http_port/https_port itself
    # What is mounted changes the label, so compose recreates the container (Caddy reads it at start).
    label = lambda *a: proxyconfig.service(s, "/p", *a)["labels"]["io.sirius-demo.proxy-config"]  # noqa: E731
    assert label("text", "root") != label("text2", "root") != label("text2", "root2")
    assert label("text", "root") == label("text", "root")


SERVICES = {
    "sirius-postgres": {"ports": [{"target": 5432, "published": "5432", "protocol": "tcp"}],
                        "healthcheck": {"test": ["CMD", "x"]}},
    "sirius-ui": {"ports": [{"target": 3000, "published": "3000", "protocol": "tcp"}],
                  "healthcheck": {"test": ["CMD", "wget"]}},
    "sirius-migrate": {},
}
IMAGES = {name: f"r/{name}@sha256:1" for name in SERVICES}
# override.render's output for the services alone, byte for byte.
BEFORE = ('services:\n  sirius-migrate:\n    image: "r/sirius-migrate@sha256:1"\n    pull_policy: missing\n'
          '  sirius-postgres:\n    image: "r/sirius-postgres@sha256:1"\n    pull_policy: missing\n'
          '    ports: !override ["127.0.0.1:5432:5432/tcp"]\n    healthcheck:\n      start_period: 600s\n'
          '      start_interval: 1s\n  sirius-ui:\n    image: "r/sirius-ui@sha256:1"\n    pull_policy: missing\n'
          '    ports: !override ["127.0.0.1:13000:3000/tcp"]\n    healthcheck:\n      start_period: 600s\n'
          '      start_interval: 1s\n')


def test_a_tag_change_leaves_what_the_proxy_reads_unchanged_and_a_domain_changes_it():
    """What compose compares for the proxy depends on its config only: a tag change (or a
    rollback, a reset) never recreates it; a new domain does (Caddy reads its file at start)."""
    def spec(**kw):
        s = settings(**{"domain": "", **kw})
        text = proxyconfig.caddyfile(s)
        return proxyconfig.service(s, f"/s/Caddyfile-{hash(text)}", text)

    assert spec(image_tag="v1") == spec(image_tag="v2", image_tags={"sirius-ui": "pr-7-amd64"})
    assert spec()["labels"] != spec(domain=DOMAIN)["labels"]
    assert spec()["labels"] != spec(bind_address="127.0.0.1")["labels"]
    assert "/etc/caddy/acme-ca-root.pem" not in json.dumps(spec(acme_ca_root="/r.pem"))  # only with a domain


def test_the_override_adds_the_proxy_and_its_volume():
    spec = proxyconfig.service(settings(), "/s/Caddyfile", "t")
    text = override.render(SERVICES, IMAGES, fast_health=True, start_period=600,
                           extra_services={proxy.SERVICE: spec}, extra_volumes=(proxyconfig.VOLUME,))
    assert text.startswith(BEFORE)
    rest = text[len(BEFORE):]
    assert rest == f"  sirius-proxy: {json.dumps(spec, sort_keys=True)}\nvolumes:\n  caddy_data: {{}}\n"


def test_env_urls_go_through_the_proxy_with_a_domain():
    secrets = envfile.with_secrets({})
    env = envfile.parse(envfile.render(secrets, "52.1.2.3", "v1", 3000, 9001, domain=DOMAIN))
    assert env["NEXTAUTH_URL"] == f"https://{DOMAIN}"
    assert env["NEXT_PUBLIC_SIRIUS_API_URL"] == f"https://{DOMAIN}/sirius-api"
    plain = envfile.parse(envfile.render(secrets, "52.1.2.3", "v1", 3000, 9001))
    assert (plain["NEXTAUTH_URL"], plain["NEXT_PUBLIC_SIRIUS_API_URL"]) == ("http://52.1.2.3:3000", "http://52.1.2.3:9001")
    assert envfile.render(secrets, "h", "v1", 3000, 9001) == envfile.render(secrets, "h", "v1", 3000, 9001, domain="")


def test_obtain_error_quotes_the_issuer_and_the_cas_answers():
    reason = caddylog.obtain_error(FAILED_LOG, DOMAIN)
    assert reason.startswith("could not get certificate from issuer 127.0.0.1:14100-dir: ")
    assert "; Caddy: [demo.sirius.test] solving challenges: " in reason
    assert "no solvers available for remaining challenges" in reason
    assert reason.index("the CA said: ") < reason.index("Caddy: ")
    assert ("tls-alpn-01: urn:ietf:params:acme:error:unauthorized: Failed to connect to 127.0.0.2:18443 "
            "for the tls-alpn-01 challenge") in reason
    assert "http-01: urn:ietf:params:acme:error:connection: " in reason and "connection refused" in reason


def test_obtain_error_none_when_obtained_or_other_domain():
    assert caddylog.obtain_error(OBTAINED_LOG, DOMAIN) is None
    assert caddylog.obtain_error(FAILED_LOG, "other.example.com") is None
    # A later success clears an earlier failure (Caddy retried and got it).
    assert caddylog.obtain_error(FAILED_LOG + OBTAINED_LOG, DOMAIN) is None
    assert caddylog.obtain_error(OBTAINED_LOG + FAILED_LOG, DOMAIN) is not None


def test_obtain_error_while_an_attempt_is_still_running():
    lines = [line for line in FAILED_LOG.splitlines() if "could not get certificate" not in line and "will retry" not in line]
    reason = caddylog.obtain_error("\n".join(lines), DOMAIN)
    assert reason.startswith("challenges failed: tls-alpn-01: urn:ietf:params:acme:error:unauthorized")


def test_obtain_error_ignores_noise_and_is_bounded():
    noisy = "not json\n[1,2]\n" + FAILED_LOG.replace("Failed to connect", "Failed " + "x" * 5000)
    reason = caddylog.obtain_error(noisy, DOMAIN)
    assert len(reason) <= 1500 and reason.endswith("...")


def test_container_error():
    log = '{"level":"info","msg":"using provided configuration"}\nError: loading initial config: bad\n'
    assert caddylog.container_error(log) == "Error: loading initial config: bad"
    assert caddylog.container_error(OBTAINED_LOG) is None


def test_cert_summary_and_name_matching():
    cert = {"subject": ((("commonName", DOMAIN),),), "issuer": ((("commonName", "Pebble Intermediate CA 794658"),),),
            "serialNumber": "2866F9425F0401DB", "notAfter": "Nov 29 05:40:50 2031 GMT",
            "subjectAltName": (("DNS", DOMAIN),)}
    assert proxyhttps.cert_summary(cert) == {"issuer": "commonName=Pebble Intermediate CA 794658", "names": [DOMAIN],
                                        "notAfter": "2031-11-29T05:40:50Z", "serial": "2866F9425F0401DB"}
    assert proxyhttps.name_matches([DOMAIN], DOMAIN) and proxyhttps.name_matches(["*.sirius.test"], DOMAIN)
    assert not proxyhttps.name_matches(["*.test"], DOMAIN) and not proxyhttps.name_matches(["other.sirius.test"], DOMAIN)


@pytest.mark.parametrize(("ca", "root", "trust"), [("production", "", "system"), ("staging", "", "name only (staging CA)"),
                                                   ("https://127.0.0.1:1/dir", "", "system")])
def test_how_the_certificate_is_judged(ca, root, trust):
    assert proxyhttps.trust_context(settings(acme_ca=ca, acme_ca_root=root))[1] == trust


def test_decode_der_reads_an_unverified_certificate(tmp_path):
    """The staging path: a certificate no system trusts is still read for its name and expiry."""
    import ssl
    import subprocess

    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=(STAGING) Test", "-addext", f"subjectAltName=DNS:{DOMAIN}",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem")], check=True, capture_output=True)
    der = ssl.PEM_cert_to_DER_cert((tmp_path / "c.pem").read_text())
    summary = proxyhttps.cert_summary(proxyhttps.decode_der(der))
    assert summary["names"] == [DOMAIN] and summary["issuer"] == "commonName=(STAGING) Test"
    assert summary["notAfter"].endswith("Z") and summary["serial"]


@pytest.mark.parametrize(
    ("status", "location", "ok"),
    [
        (308, "https://demo.example.com/", True),
        (301, "https://demo.example.com:8443/login", True),
        (302, "https://DEMO.example.com/", True),
        (308, "https://demo.example.com.evil.net/", False),  # starts like the name, is another host
        (308, "https://demo.example.com@evil.net/", False),
        (308, "http://demo.example.com/", False),
        (308, "//demo.example.com/", False),
        (308, "https://demo.example.com:port/", False),
        (200, "https://demo.example.com/", False),
        (308, "", False),
    ],
)
def test_the_https_gate_checks_where_the_redirect_goes(status, location, ok):
    assert proxyhttps.redirects_to_https(status, location, "demo.example.com") is ok


class _Backend:
    """A service behind the proxy on 127.0.0.1:port that answers `status` with `body`."""

    def __init__(self, port: int, status: int, body: bytes):
        import http.server
        import threading

        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(backend.status)
                self.send_header("Content-Length", str(len(backend.body)))
                self.end_headers()
                self.wfile.write(backend.body)

            def log_message(self, *args):
                pass

        self.status, self.body = status, body
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def running_caddy(tmp_path):
    """The real caddy with the engine's plain-HTTP Caddyfile, on free ports; nothing behind it yet."""
    import subprocess
    import time
    import urllib.request

    found: set[int] = set()
    while len(found) < 4:  # four different ports
        found.add(free_port())
    ports = proxyconfig.Ports(*found)
    path = tmp_path / "Caddyfile"
    path.write_text(proxyconfig.caddyfile(settings(domain="", bind_address="127.0.0.1"), ports))
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "PATH": "/usr/bin:/bin"}
    caddy = subprocess.Popen(["caddy", "run", "--config", str(path), "--adapter", "caddyfile"], env=env,
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "caddy.log", "w"))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{ports.ui}/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # caddy answers
            except OSError:
                assert caddy.poll() is None and time.monotonic() < deadline, (tmp_path / "caddy.log").read_text()
                time.sleep(0.1)
        yield ports
    finally:
        caddy.terminate()
        caddy.wait(timeout=10)


def _get(port: int, path: str = "/"):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.headers, answer.read()
    finally:
        conn.close()


def test_the_real_caddy_answers_being_updated_while_a_service_is_down_and_passes_it_through_after(running_caddy):
    ports = running_caddy
    look = proxy.Proxy(settings(domain="", bind_address="127.0.0.1")).look_through
    # Nothing listens behind it (a container being replaced): 503 with Retry-After, never a 502.
    status, headers, body = _get(ports.ui)
    assert status == 503 and headers["Retry-After"] == str(proxyconfig.RETRY_AFTER_SECONDS)
    assert headers["Content-Type"] == "text/html; charset=utf-8" and headers["Cache-Control"] == "no-store"
    assert proxy.is_updating_page(status, headers)
    assert body.decode() == proxyconfig.UPDATING_HTML and "being updated, back in a minute" in body.decode()
    status, headers, body = _get(ports.api, "/health")
    assert status == 503 and headers["Retry-After"] == str(proxyconfig.RETRY_AFTER_SECONDS)
    assert headers["Content-Type"] == "application/json" and proxy.is_updating_page(status, headers)
    assert json.loads(body) == {"status": "updating", "message": proxyconfig.UPDATING_MESSAGE}
    problem = look(ports)
    assert "the UI (:3000/) is behind the 'being updated' page" in problem and "the API (:9001/health) is behind" in problem

    ui = _Backend(ports.ui_backend, 200, b"login page")
    api = _Backend(ports.api_backend, 200, b'{"status":"healthy"}')
    try:
        status, headers, body = _get(ports.ui, "/login?x=1")
        assert (status, body) == (200, b"login page") and not proxy.is_updating_page(status, headers)
        assert _get(ports.api, "/health")[:3:2] == (200, b'{"status":"healthy"}')
        assert look(ports) is None
        # A service's own 503 is passed on as it is: the gate tells it from the proxy's page.
        api.status = 503
        status, headers, body = _get(ports.api, "/health")
        assert status == 503 and body == b'{"status":"healthy"}' and not proxy.is_updating_page(status, headers)
        assert look(ports) == "the API (:9001/health) answered HTTP 503 through the proxy"
    finally:
        ui.close()
        api.close()
    assert proxy.is_updating_page(*_get(ports.ui)[:2])  # and back to the page when it goes away


def test_through_problem_names_each_port():
    assert proxy.through_problem((200, False), (200, False)) is None
    assert proxy.through_problem((302, False), (200, False)) is None  # a redirect to the login page is served
    assert proxy.through_problem("ConnectionRefusedError: [Errno 111] Connection refused", (200, False)) == (
        "the UI (:3000/): ConnectionRefusedError: [Errno 111] Connection refused")
    assert proxy.through_problem((200, False), (404, False)) == "the API (:9001/health) answered HTTP 404 through the proxy"
    assert "the UI (:3000/) answered HTTP 502" in proxy.through_problem((502, False), (200, False))
