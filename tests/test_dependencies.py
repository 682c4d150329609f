"""Declared versions: the SDK, provider and CLI floors cover the features the program uses."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# The engine honours replacementTrigger from CLI 3.208 (an older one drops it without a word);
# stack tags on self-managed backends (the expiry cleanup) need 3.211.
CLI_FLOOR = (3, 211, 0)


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


# The SDK and the providers: exact pins (a provider release must not show a diff on every command).
EXACT = ("pulumi", "pulumi-aws", "pulumi-command", "pulumi-tls")


def floors(path: Path) -> dict[str, tuple[int, ...]]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)(?:>=|==)([0-9.]+)", line)
        if match:
            found[match.group(1).lower()] = version(match.group(2))
    return found


def test_requirements_floors_cover_the_options_the_program_passes():
    program = floors(ROOT / "requirements.txt")
    assert program["pulumi"] >= (3, 214), "ResourceOptions(replacement_trigger=) needs the 3.214 SDK"
    assert program["pulumi-aws"] >= (7, 6), "Instance(primary_network_interface=) needs pulumi-aws 7.6"
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name = re.split(r"[<>=]", line, maxsplit=1)[0].lower()
            form = r"[A-Za-z0-9_.-]+==[0-9]+\.[0-9]+\.[0-9]+" if name in EXACT else r"[A-Za-z0-9_.-]+>=[0-9.]+,<[0-9.]+"
            assert re.fullmatch(form, line), f"not pinned as it should be: {line}"
    assert set(EXACT) <= set(program)


def test_the_pins_are_what_the_test_environment_runs():
    """The exact pins are the versions the tests ran with: no untested provider in a deploy."""
    from importlib.metadata import version as installed

    program = floors(ROOT / "requirements.txt")
    for name in EXACT:
        assert version(installed(name)) == program[name], name


def test_pulumi_yaml_requires_a_cli_that_honours_replacement_trigger():
    required = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["requiredPulumiVersion"]
    match = re.fullmatch(r">=\s*([0-9]+\.[0-9]+\.[0-9]+)", required)
    assert match, required
    assert version(match.group(1)) >= CLI_FLOOR
