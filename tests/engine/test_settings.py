"""The engine's flags: refused before anything runs, naming the flag and the form."""

from __future__ import annotations

import pytest

import dataclasses

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from engine import settings

BY_FLAG = {option.flag: option for option in settings.OPTIONS}


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
    with pytest.raises(settings.SettingsError, match=f"^{flag} ") as caught:
        settings.from_args(argv)
    form = "a port other than --proxy-http-port" if "8443" in argv else BY_FLAG[flag].form
    assert f": expected {form}" in str(caught.value), str(caught.value)


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


def test_the_table_declares_every_setting_once():
    names = [option.name for option in settings.OPTIONS]
    assert sorted(names) == sorted(f.name for f in dataclasses.fields(settings.Settings)), "a field without its option"
    assert len(set(names)) == len(names) and len(BY_FLAG) == len(names), "a field or flag declared twice"
    keys = [option.key for option in settings.OPTIONS if option.key]
    assert len(set(keys)) == len(keys) == len(settings.BY_KEY)
    for option in settings.OPTIONS:
        assert option.form and option.help, option.flag


def test_the_parser_is_the_table():
    """Each option's flag, with the Settings default; a bad value of each kind names its form."""
    parser = settings.parser()
    dest_of = {flag: action.dest for action in parser._actions for flag in action.option_strings}
    for option in settings.OPTIONS:
        assert dest_of[option.flag] == option.name
        if option.kind is bool:
            assert dest_of[f"--no-{option.flag[2:]}"] == option.name
    assert settings.from_args([]) == settings.Settings()
    with pytest.raises(settings.SettingsError, match=r"^--scan-targets '0.0.0.0/0': .*whole internet"):
        settings.from_args(["--scan-targets", "0.0.0.0/0"])


def test_the_defaults_send_only_what_a_deploy_always_names():
    """A default deploy's command line (the Pulumi program's trigger: a change redeploys every stack)."""
    assert settings.to_args(settings.Settings(public_host="203.0.113.9")) == [
        "--repo", settings.REPO_URL, "--ref", "main", "--git-ref", "main", "--tag", "latest",
        "--registry", "ghcr.io/siriusscan", "--public-host", "203.0.113.9", "--health-timeout", "600",
        "--dir", settings.PROJECT_DIR, "--state-dir", settings.STATE_DIR, "--build-timeout", "3600"]
    assert "--acme-ca" not in settings.to_args(settings.Settings(acme_ca="staging", acme_email="ops@example.com"))


DIGEST = "sha256:" + "d" * 64
# Valid values of every setting (the first is not the default), drawn together.
SAMPLES = {
    "repo_url": ["file:///srv/sirius.git", settings.REPO_URL], "ref": ["pr-7", "v1.1.0", "main"],
    "git_ref": ["refs/pull/7/head", ""], "image_tag": ["pr-7-amd64", "latest"],
    "image_tags": [{"sirius-ui": "latest", "sirius-api": "pr-7-amd64"}, {}],
    "image_digests": [{"sirius-ui": DIGEST}, {}], "commit": ["e" * 40, ""],
    "registry": ["127.0.0.1:5000/siriusscan", "ghcr.io/siriusscan"], "public_host": ["203.0.113.9", "demo.example.com"],
    "bind_address": ["127.0.0.1", ""], "health_timeout": [90, 600], "build_timeout": [900, 3600],
    "project_dir": ["/tmp/x/sirius", settings.PROJECT_DIR], "state_dir": ["/tmp/x/state", settings.STATE_DIR],
    "pull_attempts": [2, 6], "pull_delay": [0.5, 1, 5.0], "min_free_gb": [0, 8], "install_seconds": [12.25, 0.0],
    "rollback": [False, True], "demo_data": [False, True], "domain": ["demo.example.com", ""],
    "acme_email": ["ops@example.com", ""], "acme_ca": ["staging", "https://127.0.0.1:14000/dir", "production"],
    "acme_ca_root": ["/tmp/roots.pem", ""], "proxy_image": ["127.0.0.1:5000/testbed/caddy:2.6.2", settings.rules.PROXY_IMAGE],
    "proxy_http_port": [8080, 80], "proxy_https_port": [8443, 443], "cert_timeout": [30, 120],
    "scan_targets": [("203.0.113.0/28", "198.51.100.7/32"), ()], "firewall": [False, True],
    "firewall_parent": ["SDT-USER-1", "DOCKER-USER"],
}


def test_every_setting_has_samples():
    assert set(SAMPLES) == {option.name for option in settings.OPTIONS}
    assert all(values[0] != settings.default_of(name) for name, values in SAMPLES.items())


@hypothesis_settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({name: st.sampled_from(values) for name, values in SAMPLES.items()}))
def test_to_args_and_from_args_round_trip(values):
    s = settings.Settings(**values)
    expected = s if s.domain else dataclasses.replace(s, acme_ca="production", acme_email="")  # no proxy, no CA
    assert settings.from_args(settings.to_args(s)) == expected
