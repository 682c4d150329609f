"""Secrets hygiene of the program, under the SDK mocks.

The SSH private key (generated or configured) and the admin password read back from the
host exist in the stack only as secrets: secret outputs, secret-wrapped resource inputs
(the SSH connection). Never in a plain output, a plain input, a command line, a trigger,
a log message or the user data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infra import config as infra_config
from policy import rules
from tests.pulumi_mocks import (
    FAKE_ADMIN_PASSWORD,
    FAKE_PRIVATE_KEY,
    SECRET_SIG,
    SECRET_VALUE,
    run_stack,
)

COMMAND = "command:remote:Command"
INSTANCE = "aws:ec2/instance:Instance"
OWN_PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3duLWtleS1ub3Qtc2hhcmVkLTAx\n-----END OPENSSH PRIVATE KEY-----\n"
OWN_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwnKeyForTests me@laptop"


def needles(private_key: str) -> list[str]:
    """What must never show in plain: the key, its body alone, the admin password."""
    body = private_key.split("\n")[1]
    return [private_key, private_key.strip(), body, FAKE_ADMIN_PASSWORD]


STACKS = {
    # name: (config, preview, secret keys, private key in play, key output expected)
    "generated-key": ({"ref": "beta"}, False, (), FAKE_PRIVATE_KEY, True),
    "release": ({"ref": "v1.1.0"}, False, (), FAKE_PRIVATE_KEY, True),
    "pr-42": ({"ref": "pr-42", "expiresAt": "2026-12-01T02:00:00Z"}, False, (), FAKE_PRIVATE_KEY, True),
    "own-public-key": ({"sshPublicKey": OWN_PUBLIC_KEY, "sshPrivateKey": OWN_PRIVATE_KEY}, False, ("sshPrivateKey",),
                       OWN_PRIVATE_KEY, False),
    "existing-key-pair": ({"keyName": "team-key", "sshPrivateKey": OWN_PRIVATE_KEY}, False, ("sshPrivateKey",),
                          OWN_PRIVATE_KEY, False),
    "preview": ({"ref": "v1.1.0"}, True, (), FAKE_PRIVATE_KEY, True),
    "preview-own-key": ({"sshPublicKey": OWN_PUBLIC_KEY, "sshPrivateKey": OWN_PRIVATE_KEY}, True, ("sshPrivateKey",),
                        OWN_PRIVATE_KEY, False),
}


@pytest.fixture(scope="module")
def runs(ip_echo):
    return {
        name: run_stack(cfg, stack=name, preview=preview, secret_keys=secret, ip_lookup_url=ip_echo)
        for name, (cfg, preview, secret, _, _) in STACKS.items()
    }


def strings(value: Any, path: str = "", *, in_secret: bool = False) -> Iterator[tuple[str, str, bool]]:
    """(path, string, inside a secret) of every string in a registration's raw inputs."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            yield from strings(value.get("value"), path, in_secret=True)
            return
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}", in_secret=in_secret)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]", in_secret=in_secret)
    elif isinstance(value, str):
        yield path, value, in_secret


def leaks(text: str, private_key: str) -> list[str]:
    return [n for n in needles(private_key) if n in text]


@pytest.mark.parametrize("stack", STACKS)
def test_secret_outputs_are_secret_and_nothing_else_holds_them(runs, stack):
    run = runs[stack]
    _, preview, _, private_key, key_output = STACKS[stack]
    expected = {"adminPassword", "sshPrivateKey"} if key_output else {"adminPassword"}
    assert run.secret_outputs == expected
    assert ("sshPrivateKey" in run.outputs) == key_output
    for name, value in run.outputs.items():
        if name not in run.secret_outputs:
            assert not leaks(repr(value), private_key), name
    if not preview:
        # The secrets really flow (so the checks above are not vacuous).
        assert run.outputs["adminPassword"] == FAKE_ADMIN_PASSWORD
        if key_output:
            assert run.outputs["sshPrivateKey"] == FAKE_PRIVATE_KEY


@pytest.mark.parametrize("stack", STACKS)
def test_resource_inputs_hold_secrets_only_inside_secret_values(runs, stack):
    run = runs[stack]
    _, preview, _, private_key, _ = STACKS[stack]
    seen_in_secret = set()
    for resource in run.resources:
        for path, text, in_secret in strings(resource.raw):
            found = leaks(text, private_key)
            if in_secret:
                seen_in_secret.update(found)
            else:
                assert not found, f"{resource.type} {resource.name}{path} holds a secret in plain text"
    if not preview:
        # The SSH connection carries the key (config values are stripped), wrapped as a secret.
        assert private_key.strip() in seen_in_secret
        for command in run.of_type(COMMAND):
            assert command.is_secret("connection") or command.is_secret("connection", "privateKey")


@pytest.mark.parametrize("stack", STACKS)
def test_commands_never_carry_a_secret(runs, stack):
    run = runs[stack]
    _, preview, _, private_key, _ = STACKS[stack]
    commands = run.of_type(COMMAND)
    assert {c.name.removeprefix("sirius-") for c in commands} == {"wait-boot", "engine", "deploy", "health",
                                                                   "admin-password", "reset"}
    for command in commands:
        for field in ("create", "update", "delete", "stdin", "triggers", "environment"):
            value = command.inputs.get(field)
            assert not leaks(repr(value), private_key), (command.name, field)
            assert not command.is_secret(field) if field in command.raw else True, (command.name, field)
        assert "environment" not in command.inputs  # values go on the command line, never a secret
        # The reset's stdout is its report, which the workflow's summary reads from the log: the
        # deploy report's format, secrets redacted (tests/host/test_reset.py checks its output).
        logged = ("stderr", "none", "stdoutAndStderr") if command.name.endswith("-reset") else ("stderr", "none")
        assert command.inputs.get("logging") in logged, command.name
    admin = next(c for c in commands if c.name.endswith("-admin-password"))
    assert admin.inputs["logging"] == "none" and "stdout" in admin.additional_secret_outputs
    if not preview:
        # It reads the password on the host; the password itself is not in the command.
        assert admin.inputs["create"] == "sudo sed -n 's/^INITIAL_ADMIN_PASSWORD=//p' /opt/sirius/.env"


@pytest.mark.parametrize("stack", STACKS)
def test_user_data_holds_no_secret(runs, stack):
    run = runs[stack]
    private_key = STACKS[stack][3]
    instance = run.one(INSTANCE)
    props = rules.plain(instance.inputs)
    assert rules.no_secrets_in_user_data(INSTANCE, props) == []
    # user_data holds no setting, so it is known in preview too.
    texts = rules.user_data_findings(INSTANCE, props)
    assert len(texts) > 1  # the user data and the boot engine inside it
    for where, text in texts:
        assert not leaks(text, private_key), where
        assert rules.secret_findings(text) == [], where


@pytest.mark.parametrize("stack", STACKS)
def test_logs_hold_no_secret(runs, stack):
    run = runs[stack]
    private_key = STACKS[stack][3]
    for message in run.warnings:
        assert not leaks(message, private_key)


def test_generated_key_is_only_a_tls_output():
    run = run_stack({"sshCidrs": "198.51.100.7/32"})
    key = run.one("tls:index/privateKey:PrivateKey")
    assert key.inputs == {"algorithm": "ED25519"}
    pair = run.one("aws:ec2/keyPair:KeyPair")
    assert pair.inputs["publicKey"].startswith("ssh-ed25519 ")


def test_a_plain_text_private_key_is_refused_without_echoing_it():
    raw = {"sshPublicKey": OWN_PUBLIC_KEY, "sshPrivateKey": OWN_PRIVATE_KEY, "sshCidrs": "198.51.100.7/32"}
    with pytest.raises(infra_config.ConfigError) as caught:
        infra_config.parse(raw, stack="demo")
    assert caught.value.keys == ["sshPrivateKey"]
    assert not leaks(str(caught.value), OWN_PRIVATE_KEY)


@pytest.mark.parametrize("bad", ["not a key " + "b3duLWtleS1ub3Qtc2hhcmVkLTAx",
                                 OWN_PRIVATE_KEY.replace("OPENSSH", "DSA"),
                                 OWN_PRIVATE_KEY + "trailing b3duLWtleS1ub3Qtc2hhcmVkLTAx"])
def test_a_malformed_private_key_is_refused_without_echoing_it(bad):
    raw = {"sshPublicKey": OWN_PUBLIC_KEY, "sshPrivateKey": bad, "sshCidrs": "198.51.100.7/32"}
    with pytest.raises(infra_config.ConfigError) as caught:
        infra_config.parse(raw, stack="demo", secret_keys={"sshPrivateKey"})
    assert "sshPrivateKey" in caught.value.keys
    assert "b3duLWtleS1ub3Qtc2hhcmVkLTAx" not in str(caught.value)


def test_config_repr_hides_the_private_key():
    raw = {"sshPublicKey": OWN_PUBLIC_KEY, "sshPrivateKey": OWN_PRIVATE_KEY, "sshCidrs": "198.51.100.7/32"}
    parsed = infra_config.parse(raw, stack="demo", secret_keys={"sshPrivateKey"})
    assert parsed.ssh_private_key == OWN_PRIVATE_KEY.strip()
    assert not leaks(repr(parsed), OWN_PRIVATE_KEY) and not leaks(str(parsed), OWN_PRIVATE_KEY)
