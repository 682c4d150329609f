"""The rehearsal speaks flags: each has help and its default, and a bad value is named by its
flag, never by the stack setting whose rule checked it. No Docker: refused flags stop first."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from engine import settings
from infra import config
from tools import rehearse

ROOT = Path(__file__).resolve().parent.parent


def test_every_flag_has_help_that_states_its_default():
    parser = rehearse.make_parser()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, action.dest
        assert "default" in action.help, f"{action.option_strings or action.dest}: help does not state the default"


def test_defaults_are_the_stack_settings_defaults():
    schema = config.load_schema()
    args = rehearse.make_parser().parse_args([])
    assert (args.ref, args.registry, args.repo_url, args.health_timeout, args.acme_ca, args.domain) == (
        schema["ref"].default, schema["imageRegistry"].default, schema["repoUrl"].default,
        schema["healthTimeout"].default, schema["acmeCa"].default, schema["domain"].default)
    assert args.rollback is schema["rollback"].default and args.demo_data is schema["demoData"].default


def test_each_flag_stands_for_a_declared_setting_and_exists():
    """The flag of each rehearsed setting comes from the engine's table, and its value lands
    where the rehearsal reads it: the engine setting's own name."""
    schema = config.load_schema()
    dest_of = {option: action.dest for action in rehearse.make_parser()._actions for option in action.option_strings}
    assert set(rehearse.FLAG_OF_SETTING) == set(rehearse.REHEARSED_KEYS)
    for key, flag in rehearse.FLAG_OF_SETTING.items():
        assert key in schema and flag in dest_of, (key, flag)
        assert dest_of[flag] == settings.BY_KEY[key].name, (key, flag)
    assert rehearse.FLAG_OF_SETTING["imageTag"] == "--tag" and rehearse.FLAG_OF_SETTING["rollback"] == "--no-rollback"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--ref", "main;reboot"], "--ref"),
        (["--ref", "demo"], "--ref"),
        (["--tag=-x"], "--tag"),
        (["--registry", "Not A Registry"], "--registry"),
        (["--repo", "git@github.com:x/y.git"], "--repo"),
        (["--health-timeout", "5"], "--health-timeout"),
        (["--domain", "localhost"], "--domain"),
        (["--domain", "demo.example.com", "--acme-ca", "prod"], "--acme-ca"),
        (["--domain", "demo.example.com", "--acme-email", "ops"], "--acme-email"),
    ],
)
def test_a_bad_value_is_named_by_its_flag(argv, flag, tmp_path, capsys):
    home = tmp_path / "home"
    with pytest.raises(SystemExit) as caught:
        rehearse.main([*argv, "--home", str(home)])
    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert f"  {flag}: " in err and "sirius-demo:" not in err and "pulumi config" not in err, err
    assert not home.exists()


def test_every_bad_flag_is_listed_at_once(capsys, tmp_path):
    with pytest.raises(SystemExit):
        rehearse.main(["--ref", "a b", "--tag=-x", "--health-timeout", "5", "--home", str(tmp_path / "h")])
    err = capsys.readouterr().err
    assert all(f"  {flag}: " in err for flag in ("--ref", "--tag", "--health-timeout")), err


def test_help_runs_as_the_docs_show_it():
    result = subprocess.run([sys.executable, "-m", "tools.rehearse", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "--no-rollback" in result.stdout
