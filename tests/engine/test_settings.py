"""The engine's flags: refused before anything runs, naming the flag and the form."""

from __future__ import annotations

import pytest

from engine import settings


def test_defaults_deploy_main_from_the_published_images():
    s = settings.from_args([])
    assert (s.ref, s.git_ref, s.image_tag, s.registry) == ("main", "main", "latest", "ghcr.io/siriusscan")
    assert s.ref_of("sirius-ui") == "ghcr.io/siriusscan/sirius-ui:latest"


def test_per_image_tags():
    s = settings.from_args(["--tag", "sha-" + "a" * 40, "--image-tag", "sirius-ui=latest"])
    assert s.ref_of("sirius-ui").endswith(":latest") and s.ref_of("sirius-api").endswith(":sha-" + "a" * 40)


def test_pinned_digests_are_pulled_by_digest_and_the_rest_by_tag():
    digest = "sha256:" + "b" * 64
    s = settings.from_args(["--image-digest", f"sirius-ui={digest}", "--commit", "c" * 40])
    assert s.pull_ref_of("sirius-ui") == f"ghcr.io/siriusscan/sirius-ui@{digest}"
    assert s.pull_ref_of("sirius-api") == "ghcr.io/siriusscan/sirius-api:latest"
    assert s.ref_of("sirius-ui") == "ghcr.io/siriusscan/sirius-ui:latest"  # the tag, for the report
    assert s.commit == "c" * 40 and settings.from_args([]).commit == ""


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--tag", "x;id"], "--tag"),
        (["--ref", "v1.0.0"], "--ref"),
        (["--ref", "dev"], "--ref"),
        (["--registry", "Evil/$(id)"], "--registry"),
        (["--public-host", "a b"], "--public-host"),
        (["--bind-address", "localhost"], "--bind-address"),
        (["--repo", "ssh://x/y"], "--repo"),
        (["--dir", "relative"], "--dir"),
        (["--image-tag", "sirius-ui"], "--image-tag"),
        (["--image-digest", "sirius-ui"], "--image-digest"),
        (["--image-digest", "sirius-ui=sha256:abc"], "--image-digest"),
        (["--image-digest", "sirius-ui=latest"], "--image-digest"),
        (["--image-digest", "Sirius UI=sha256:" + "a" * 64], "--image-digest"),
        (["--commit", "main"], "--commit"),
        (["--commit", "A" * 40], "--commit"),
        (["--commit", "a" * 39], "--commit"),
        (["--health-timeout", "0"], "--health-timeout"),
        (["--pull-delay", "-1"], "--pull-delay"),
        (["--domain", "localhost"], "--domain"),
        (["--domain", "Demo.Example.com"], "--domain"),
        (["--domain", "10.0.0.1"], "--domain"),
        (["--domain", "x-.example.com"], "--domain"),
        (["--acme-email", "nobody"], "--acme-email"),
        (["--acme-ca", "http://ca.example/dir"], "--acme-ca"),
        (["--acme-ca", "letsencrypt"], "--acme-ca"),
        (["--acme-ca-root", "roots.pem"], "--acme-ca-root"),
        (["--acme-ca-root", "/etc/../root.pem"], "--acme-ca-root"),
        (["--acme-ca-root", "/tmp/a b.pem"], "--acme-ca-root"),
        (["--proxy-image", "caddy"], "--proxy-image"),
        (["--proxy-image", "docker.io/library/caddy"], "--proxy-image"),
        (["--proxy-image", "docker.io/library/caddy:2;id"], "--proxy-image"),
        (["--proxy-http-port", "0"], "--proxy-http-port"),
        (["--proxy-https-port", "65536"], "--proxy-https-port"),
        (["--proxy-http-port", "8443", "--proxy-https-port", "8443"], "--proxy-https-port"),
        (["--cert-timeout", "0"], "--cert-timeout"),
    ],
)
def test_bad_values_are_refused_naming_the_flag(argv, flag):
    with pytest.raises(settings.SettingsError, match=f"^{flag} "):
        settings.from_args(argv)


def test_rollback_demo_data_and_https_flags():
    s = settings.from_args([])
    assert (s.rollback, s.demo_data, s.domain, s.acme_ca) == (True, True, "", "production")
    s = settings.from_args(["--no-rollback", "--no-demo-data", "--domain", "demo.example.com",
                            "--acme-ca", "https://127.0.0.1:14000/dir", "--acme-email", "ops@example.com"])
    assert (s.rollback, s.demo_data, s.domain, s.acme_ca, s.acme_email) == (
        False, False, "demo.example.com", "https://127.0.0.1:14000/dir", "ops@example.com")


def test_proxy_flags():
    s = settings.from_args([])
    assert (s.proxy_image, s.proxy_http_port, s.proxy_https_port, s.acme_ca_root, s.cert_timeout) == (
        "docker.io/library/caddy:2.8.4", 80, 443, "", 120)
    s = settings.from_args(["--proxy-image", "127.0.0.1:5000/testbed/caddy:2.6.2", "--proxy-http-port", "8080",
                            "--proxy-https-port", "8443", "--acme-ca-root", "/tmp/x/roots.pem", "--cert-timeout", "30"])
    assert (s.proxy_image, s.proxy_http_port, s.proxy_https_port, s.acme_ca_root, s.cert_timeout) == (
        "127.0.0.1:5000/testbed/caddy:2.6.2", 8080, 8443, "/tmp/x/roots.pem", 30)
