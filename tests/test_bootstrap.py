"""user_data rendering: deterministic, under AWS's limit, values quoted."""

from __future__ import annotations

import shlex
import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from infra import bootstrap, commands
from infra.config import ConfigError, parse


def spec(**overrides) -> commands.DeploySpec:
    values = dict(repo_url="https://github.com/SiriusScan/Sirius.git", ref="main", git_ref="main",
                  image_tag="latest", public_host="52.12.34.56", health_timeout=600)
    values.update(overrides)
    return commands.DeploySpec(**values)


def test_render_is_deterministic_and_small():
    first, second = bootstrap.render_user_data(spec()), bootstrap.render_user_data(spec())
    assert first == second
    assert bootstrap.script_archive() == bootstrap.script_archive()
    assert len(first.encode()) <= bootstrap.USER_DATA_LIMIT


def test_user_data_is_valid_bash_and_unpacks(tmp_path):
    user_data = bootstrap.render_user_data(spec())
    subprocess.run(["bash", "-n"], input=user_data, text=True, check=True)
    # Run the unpack step for real into a scratch dir (not the exec line).
    body = user_data.replace("/opt/sirius-demo/bin", str(tmp_path)).rsplit("\nexec ", 1)[0]
    subprocess.run(["bash", "-c", body], check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(bootstrap.HOST_SCRIPTS)
    assert (tmp_path / "deploy.sh").stat().st_mode & 0o111


def test_oversized_user_data_is_refused(monkeypatch):
    monkeypatch.setattr(bootstrap, "USER_DATA_LIMIT", 1000)
    try:
        bootstrap.render_user_data(spec())
    except ValueError as err:
        assert "AWS allows 1000" in str(err)
    else:
        raise AssertionError("expected a size error")


@settings(max_examples=200)
@given(ref=st.text(max_size=40), tag=st.text(max_size=40))
def test_accepted_values_reach_the_shell_as_single_words(ref, tag):
    """Whatever the validator accepts lands in the exec line as one quoted word each."""
    try:
        demo = parse({"ref": ref, "imageTag": tag}, stack="t", lookup_public_ip=lambda: "52.1.1.1")
    except ConfigError:
        return
    line = bootstrap.render_user_data(
        spec(ref=demo.ref, git_ref=demo.git_ref, image_tag=demo.image_tag)
    ).rstrip().splitlines()[-1]
    argv = shlex.split(line)
    assert argv[argv.index("--ref") + 1] == demo.ref
    assert argv[argv.index("--tag") + 1] == demo.image_tag
    assert not set(line) & set(";|&`$()<>\\\"\n*?!{}")


def test_nothing_but_the_demo_on_the_boot_critical_path():
    """No full upgrade before the stack is up, and Docker is installed only when missing."""
    install = (bootstrap.HOST_DIR / "install.sh").read_text()
    boot = (bootstrap.HOST_DIR / "bootstrap.sh").read_text()
    for text in (install, boot):
        assert "apt-get upgrade" not in text and "dist-upgrade" not in text and "full-upgrade" not in text
    skip = install.index('docker compose version >/dev/null 2>&1; then')
    assert skip < install.index("docker-ce docker-ce-cli")
    # Security updates start only after the deploy, without waiting for them.
    assert boot.index('"$HERE/deploy.sh"') < boot.index("unattended-upgrade") and "--no-block" in boot
