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
        (["--health-timeout", "0"], "--health-timeout"),
        (["--pull-delay", "-1"], "--pull-delay"),
        (["--domain", "localhost"], "--domain"),
        (["--domain", "Demo.Example.com"], "--domain"),
        (["--domain", "10.0.0.1"], "--domain"),
        (["--domain", "x-.example.com"], "--domain"),
        (["--acme-email", "nobody"], "--acme-email"),
        (["--acme-ca", "http://ca.example/dir"], "--acme-ca"),
        (["--acme-ca", "letsencrypt"], "--acme-ca"),
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
