"""Host command builders: argument lists, quoted once, unsafe values refused."""

import shlex

import pytest

from infra import commands


def spec(**overrides):
    values = dict(repo_url="file:///srv/sirius.git", ref="pr-7", git_ref="refs/pull/7/head", image_tag="pr-7-amd64",
                  public_host="127.0.0.1", health_timeout=120)
    values.update(overrides)
    return commands.DeploySpec(**values)


def test_deploy_argv_round_trips_through_the_shell():
    s = spec(image_tags={"sirius-ui": "pr-7-amd64", "sirius-api": "latest"}, pull_attempts=3, pull_delay=1)
    argv = commands.deploy_argv(s, bin_dir="/opt/x")
    assert shlex.split(commands.shell(argv)) == argv
    assert argv[0] == "/opt/x/deploy.sh"
    assert argv[argv.index("--git-ref") + 1] == "refs/pull/7/head"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--image-tag"] == ["sirius-api=latest", "sirius-ui=pr-7-amd64"]
    assert argv[argv.index("--pull-attempts") + 1] == "3"


def test_bootstrap_takes_the_same_flags():
    s = spec()
    assert commands.bootstrap_argv(s)[1:] == commands.deploy_argv(s)[1:]


@pytest.mark.parametrize(
    "overrides",
    [{"image_tag": "x;id"}, {"registry": "evil.io/$(id)"}, {"public_host": "1.2.3.4; reboot"},
     {"image_tags": {"sirius-ui": "a b"}}, {"project_dir": "relative"}],
)
def test_unsafe_values_are_refused(overrides):
    with pytest.raises(ValueError, match="unsafe deploy values"):
        spec(**overrides)
