"""The HTTPS proxy's pure parts: the Caddyfile, the compose service, the .env URLs, and
Caddy's reason read from its log. The log samples in data/ are what Debian's caddy 2.6.2
printed here against pebble (obtained; and refused: the domain resolving to 127.0.0.2)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from engine import envfile, override, proxy, rules
from engine.settings import Settings

DATA = Path(__file__).parent / "data"
FAILED_LOG = (DATA / "caddy-2.6.2-challenge-failed.log").read_text()
OBTAINED_LOG = (DATA / "caddy-2.6.2-obtained.log").read_text()
DOMAIN = "demo.sirius.test"


def settings(**kw) -> Settings:
    base = Settings(repo_url="https://github.com/SiriusScan/Sirius.git", ref="main", git_ref="main", image_tag="latest",
                    state_dir="/var/lib/sirius-demo", domain=DOMAIN)
    return dataclasses.replace(base, **kw)


def test_caddyfile_production_defaults():
    text = proxy.caddyfile(settings())
    assert "\tacme_ca https://acme-v02.api.letsencrypt.org/directory\n" in text
    assert "\thttp_port 80\n\thttps_port 443\n" in text
    assert "\tadmin off\n" in text
    for absent in ("email", "acme_ca_root", "default_bind"):
        assert absent not in text
    # The API under /sirius-api, prefix stripped; everything else is the UI.
    assert "\thandle_path /sirius-api/* {\n\t\treverse_proxy 127.0.0.1:9001\n\t}\n" in text
    assert "\thandle {\n\t\treverse_proxy 127.0.0.1:3000\n\t}\n" in text
    assert f"\n{DOMAIN} {{\n" in text


def test_caddyfile_with_email_private_ca_root_ports_and_bind():
    text = proxy.caddyfile(settings(acme_email="ops@example.com", acme_ca="https://127.0.0.1:14000/dir",
                                    acme_ca_root="/tmp/t/roots.pem", proxy_http_port=18080, proxy_https_port=18443,
                                    bind_address="127.0.0.1"))
    assert "\temail ops@example.com\n" in text
    assert "\tacme_ca https://127.0.0.1:14000/dir\n" in text
    # Caddy reads the root inside its container, where the engine mounts it.
    assert f"\tacme_ca_root {proxy.CA_ROOT_MOUNT}\n" in text and "/tmp/t/roots.pem" not in text
    assert "\thttp_port 18080\n\thttps_port 18443\n\tdefault_bind 127.0.0.1\n" in text


def test_caddyfile_staging_and_upstream_on_the_bind_address():
    text = proxy.caddyfile(settings(acme_ca="staging", bind_address="10.0.0.5"))
    assert "acme_ca https://acme-staging-v02.api.letsencrypt.org/directory" in text
    assert "reverse_proxy 10.0.0.5:9001" in text and "reverse_proxy 10.0.0.5:3000" in text


def test_caddyfile_is_valid_for_the_real_caddy(tmp_path):
    """The real binary (Debian's caddy, a test dependency) accepts what the engine writes."""
    import subprocess

    path = tmp_path / "Caddyfile"
    path.write_text(proxy.caddyfile(settings(acme_email="ops@example.com", bind_address="127.0.0.1")))
    result = subprocess.run(["caddy", "adapt", "--config", str(path), "--adapter", "caddyfile"],
                            capture_output=True, text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["admin"]["disabled"] is True
    routes = json.dumps(config["apps"]["http"])
    assert '"/sirius-api/*"' in routes and '"strip_path_prefix": "/sirius-api"' in routes


def test_service_spec():
    s = settings(acme_ca_root="/tmp/t/roots.pem")
    spec = proxy.service(s, "/var/lib/sirius-demo/Caddyfile", "text", "root")
    assert spec["image"] == rules.PROXY_IMAGE and spec["network_mode"] == "host" and spec["restart"] == "unless-stopped"
    assert spec["volumes"] == ["caddy_data:/data", "/var/lib/sirius-demo/Caddyfile:/etc/caddy/Caddyfile:ro",
                               "/tmp/t/roots.pem:/etc/caddy/acme-ca-root.pem:ro"]
    assert "ports" not in spec  # host network: Caddy binds http_port/https_port itself
    # What is mounted changes the label, so compose recreates the container (Caddy reads it at start).
    label = lambda *a: proxy.service(s, "/p", *a)["labels"]["io.sirius-demo.proxy-config"]  # noqa: E731
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
# override.render's output before the proxy existed (commit 2f8d068), byte for byte.
BEFORE = ('services:\n  sirius-migrate:\n    image: "r/sirius-migrate@sha256:1"\n    pull_policy: missing\n'
          '  sirius-postgres:\n    image: "r/sirius-postgres@sha256:1"\n    pull_policy: missing\n'
          '    ports: !override ["127.0.0.1:5432:5432/tcp"]\n    healthcheck:\n      start_period: 600s\n'
          '      start_interval: 1s\n  sirius-ui:\n    image: "r/sirius-ui@sha256:1"\n    pull_policy: missing\n'
          '    ports: !override ["127.0.0.1:3000:3000/tcp"]\n    healthcheck:\n      start_period: 600s\n'
          '      start_interval: 1s\n')


def test_without_a_domain_the_override_is_byte_identical(tmp_path):
    extra = proxy.Proxy(settings(domain="", state_dir=str(tmp_path))).prepare(60)
    assert extra == {} and list(tmp_path.iterdir()) == []  # no Caddyfile, no docker call
    text = override.render(SERVICES, IMAGES, bind_address="127.0.0.1", fast_health=True, start_period=600, **extra)
    assert text == BEFORE


def test_with_a_domain_the_override_adds_the_proxy_and_its_volume():
    spec = proxy.service(settings(), "/s/Caddyfile", "t")
    text = override.render(SERVICES, IMAGES, bind_address="127.0.0.1", fast_health=True, start_period=600,
                           extra_services={proxy.SERVICE: spec}, extra_volumes=(proxy.VOLUME,))
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
    reason = proxy.obtain_error(FAILED_LOG, DOMAIN)
    assert reason.startswith("could not get certificate from issuer 127.0.0.1:14100-dir: ")
    assert "; Caddy: [demo.sirius.test] solving challenges: " in reason
    assert "no solvers available for remaining challenges" in reason
    assert reason.index("the CA said: ") < reason.index("Caddy: ")
    assert ("tls-alpn-01: urn:ietf:params:acme:error:unauthorized: Failed to connect to 127.0.0.2:18443 "
            "for the tls-alpn-01 challenge") in reason
    assert "http-01: urn:ietf:params:acme:error:connection: " in reason and "connection refused" in reason


def test_obtain_error_none_when_obtained_or_other_domain():
    assert proxy.obtain_error(OBTAINED_LOG, DOMAIN) is None
    assert proxy.obtain_error(FAILED_LOG, "other.example.com") is None
    # A later success clears an earlier failure (Caddy retried and got it).
    assert proxy.obtain_error(FAILED_LOG + OBTAINED_LOG, DOMAIN) is None
    assert proxy.obtain_error(OBTAINED_LOG + FAILED_LOG, DOMAIN) is not None


def test_obtain_error_while_an_attempt_is_still_running():
    lines = [line for line in FAILED_LOG.splitlines() if "could not get certificate" not in line and "will retry" not in line]
    reason = proxy.obtain_error("\n".join(lines), DOMAIN)
    assert reason.startswith("challenges failed: tls-alpn-01: urn:ietf:params:acme:error:unauthorized")


def test_obtain_error_ignores_noise_and_is_bounded():
    noisy = "not json\n[1,2]\n" + FAILED_LOG.replace("Failed to connect", "Failed " + "x" * 5000)
    reason = proxy.obtain_error(noisy, DOMAIN)
    assert len(reason) <= 1500 and reason.endswith("...")


def test_container_error():
    log = '{"level":"info","msg":"using provided configuration"}\nError: loading initial config: bad\n'
    assert proxy.container_error(log) == "Error: loading initial config: bad"
    assert proxy.container_error(OBTAINED_LOG) is None


def test_cert_summary_and_name_matching():
    cert = {"subject": ((("commonName", DOMAIN),),), "issuer": ((("commonName", "Pebble Intermediate CA 794658"),),),
            "serialNumber": "2866F9425F0401DB", "notAfter": "Nov 29 05:40:50 2031 GMT",
            "subjectAltName": (("DNS", DOMAIN),)}
    assert proxy.cert_summary(cert) == {"issuer": "commonName=Pebble Intermediate CA 794658", "names": [DOMAIN],
                                        "notAfter": "2031-11-29T05:40:50Z", "serial": "2866F9425F0401DB"}
    assert proxy.name_matches([DOMAIN], DOMAIN) and proxy.name_matches(["*.sirius.test"], DOMAIN)
    assert not proxy.name_matches(["*.test"], DOMAIN) and not proxy.name_matches(["other.sirius.test"], DOMAIN)


@pytest.mark.parametrize(("ca", "root", "trust"), [("production", "", "system"), ("staging", "", "name only (staging CA)"),
                                                   ("https://127.0.0.1:1/dir", "", "system")])
def test_how_the_certificate_is_judged(ca, root, trust):
    assert proxy.Proxy(settings(acme_ca=ca, acme_ca_root=root)).context()[1] == trust


def test_decode_der_reads_an_unverified_certificate(tmp_path):
    """The staging path: a certificate no system trusts is still read for its name and expiry."""
    import ssl
    import subprocess

    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=(STAGING) Test", "-addext", f"subjectAltName=DNS:{DOMAIN}",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem")], check=True, capture_output=True)
    der = ssl.PEM_cert_to_DER_cert((tmp_path / "c.pem").read_text())
    summary = proxy.cert_summary(proxy.decode_der(der))
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
    assert proxy.redirects_to_https(status, location, "demo.example.com") is ok
