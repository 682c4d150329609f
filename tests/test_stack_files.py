"""Stack files hold only real overrides: a default repeated in Pulumi.<stack>.yaml would keep
the old value when Pulumi.yaml's default changes, silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra import config

ROOT = Path(__file__).resolve().parent.parent
STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml"))


def as_text(value) -> str:
    """A config value as the CLI hands it to the program."""
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else json.dumps(value)


def overrides(path: Path) -> dict:
    return yaml.safe_load(path.read_text()).get("config") or {}


def test_there_are_stack_files():
    assert {p.name for p in STACK_FILES} >= {"Pulumi.demo.yaml", "Pulumi.branch.yaml"}


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_a_stack_file_repeats_no_default(path):
    schema = config.load_schema()
    for full_key, value in overrides(path).items():
        namespace, _, key = full_key.partition(":")
        if namespace != config.PROJECT:
            continue
        assert key in schema, f"{path.name}: {full_key} is not declared in Pulumi.yaml"
        assert as_text(value) != as_text(schema[key].default), (
            f"{path.name}: {full_key} repeats the default {schema[key].default!r}; remove it")


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_a_stack_file_is_valid_config(path):
    values = overrides(path)
    ours = {key.split(":", 1)[1]: as_text(value) for key, value in values.items() if key.startswith(f"{config.PROJECT}:")}
    others = {key: value for key, value in values.items() if not key.startswith(f"{config.PROJECT}:")}
    config.parse(ours, stack="branch-main", lookup_public_ip=lambda: "52.10.20.30", provider_config=others,
                 environ={})


def test_the_check_would_catch_a_repeated_default(tmp_path, monkeypatch):
    bad = tmp_path / "Pulumi.x.yaml"
    bad.write_text("config:\n  aws:region: us-west-2\n  sirius-demo:volumeSize: 30\n")
    with pytest.raises(AssertionError, match="repeats the default 30"):
        test_a_stack_file_repeats_no_default(bad)
