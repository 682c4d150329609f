"""Host command builders: argument lists, quoted once, unsafe values refused."""

import shlex
import subprocess

import pytest

from engine import settings
from infra import commands


def spec(**overrides):
    values = dict(repo_url="file:///srv/sirius.git", ref="pr-7", git_ref="refs/pull/7/head", image_tag="pr-7-amd64",
                  public_host="127.0.0.1", health_timeout=120)
    values.update(overrides)
    return settings.Settings(**values)


def test_deploy_argv_round_trips_through_the_shell():
    s = spec(image_tags={"sirius-ui": "pr-7-amd64", "sirius-api": "latest"}, pull_attempts=3, pull_delay=1)
    argv = commands.deploy_argv(s, engine="/opt/x/engine.pyz")
    assert shlex.split(commands.shell(argv)) == argv
    assert argv[:3] == ["python3", "/opt/x/engine.pyz", "deploy"]
    assert argv[argv.index("--git-ref") + 1] == "refs/pull/7/head"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--image-tag"] == ["sirius-api=latest", "sirius-ui=pr-7-amd64"]
    assert argv[argv.index("--pull-attempts") + 1] == "3"


def test_the_engine_parses_exactly_what_the_builder_writes():
    """One copy of the rules: the engine's own parser reads the builder's flags back."""
    s = spec(image_tags={"sirius-ui": "latest"}, build_timeout=900, bind_address="127.0.0.1")
    parsed = settings.from_args(settings.to_args(s))
    assert (parsed.git_ref, parsed.image_tag, parsed.image_tags) == ("refs/pull/7/head", "pr-7-amd64", {"sirius-ui": "latest"})
    assert (parsed.build_timeout, parsed.bind_address, parsed.public_host) == (900, "127.0.0.1", "127.0.0.1")
    assert (parsed.rollback, parsed.demo_data, parsed.domain) == (True, True, "")
    off = settings.from_args(settings.to_args(spec(rollback=False, demo_data=False, domain="demo.example.com",
                                                       acme_ca="staging", acme_email="ops@example.com")))
    assert (off.rollback, off.demo_data, off.domain, off.acme_ca, off.acme_email) == (
        False, False, "demo.example.com", "staging", "ops@example.com")
    assert (parsed.scan_targets, parsed.firewall, parsed.firewall_parent) == ((), True, "DOCKER-USER")
    fenced = settings.from_args(settings.to_args(spec(scan_targets=("203.0.113.0/28", "198.51.100.7/32"),
                                                          firewall_parent="SDT-USER-1")))
    assert (fenced.scan_targets, fenced.firewall_parent) == (("203.0.113.0/28", "198.51.100.7/32"), "SDT-USER-1")
    assert not settings.from_args(settings.to_args(spec(firewall=False))).firewall


@pytest.mark.parametrize(
    "overrides",
    [{"image_tag": "x;id"}, {"registry": "evil.io/$(id)"}, {"public_host": "1.2.3.4; reboot"},
     {"image_tags": {"sirius-ui": "a b"}}, {"project_dir": "relative"}, {"ref": "v1.0.0"}, {"bind_address": "0.0.0.0; x"},
     {"scan_targets": ("0.0.0.0/0",)}, {"scan_targets": ("10.0.0.0/8 -j ACCEPT",)}, {"firewall_parent": "A B"}],
)
def test_unsafe_values_are_refused(overrides):
    with pytest.raises(settings.SettingsError, match=r"^--[a-z-]+ '.*': expected "):
        spec(**overrides)


DIGEST = "sha256:" + "d" * 64


def test_the_pins_reach_the_engine_exactly():
    s = spec(image_digests={"sirius-ui": DIGEST}, commit="e" * 40)
    parsed = settings.from_args(settings.to_args(s))
    assert (parsed.image_digests, parsed.commit) == ({"sirius-ui": DIGEST}, "e" * 40)
    assert "--commit" not in settings.to_args(spec()) and "--image-digest" not in settings.to_args(spec())


@pytest.mark.parametrize("overrides", [{"image_digests": {"sirius-ui": "sha256:x"}}, {"commit": "main"},
                                       {"image_digests": {"sirius-ui": DIGEST + "; reboot"}}])
def test_unsafe_pins_are_refused(overrides):
    with pytest.raises(settings.SettingsError, match=r"^--(image-digest|commit) '.*': expected "):
        spec(**overrides)


def test_the_boot_line_carries_the_first_deploy_as_data():
    argv = commands.bootstrap_argv(ref="main", image_tag="latest",
                                   pulls=(f"ghcr.io/siriusscan/sirius-ui@{DIGEST}", "ghcr.io/siriusscan/sirius-api:latest"))
    assert argv[argv.index("--ref") + 1] == "main" and argv[argv.index("--tag") + 1] == "latest"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--pull"] == [
        f"ghcr.io/siriusscan/sirius-ui@{DIGEST}", "ghcr.io/siriusscan/sirius-api:latest"]
    assert commands.bootstrap_argv() == ["python3", commands.BOOT_ENGINE, "bootstrap", "--state-dir", commands.STATE_DIR]


@pytest.mark.parametrize("values", [{"ref": "main;reboot", "image_tag": "latest"}, {"ref": "main", "image_tag": "a b"},
                                    {"pulls": ("--privileged",)}, {"pulls": ("ghcr.io/siriusscan/sirius-ui",)}])
def test_unsafe_boot_values_are_refused(values):
    with pytest.raises(ValueError, match="unsafe boot values"):
        commands.bootstrap_argv(**values)


def test_a_broken_engine_upload_keeps_the_old_engine(tmp_path):
    """pipefail: base64 failing in the pipe fails the command, so `mv` never installs a truncated file."""
    target = tmp_path / "engine.pyz"
    target.write_text("old engine")
    create = commands.install_engine(str(target)).replace("sudo ", "")
    result = subprocess.run(["bash", "-c", create], input="not base64 at all!\n", text=True, capture_output=True)
    assert result.returncode != 0 and target.read_text() == "old engine"
