"""Hostile stack config, one property per string setting, with one oracle: the value is
refused by infra.config.parse (a ConfigError naming that key and no other), or every
command the program builds for the host still splits back into its argument list
(`shlex.split` of the `infra.commands` builders' quoted string), with the value as one
whole argument right after its flag, or, for settings that never reach a host, leaves
every argument list exactly as it was.

The strategies mix refusals (shell metacharacters, option-looking and control characters,
spliced into valid values) with values that are accepted and so really reach the command
lines (refs with '/', '.', '-', URLs with ports and '~', registries with ports)."""

from __future__ import annotations

import re
import shlex

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.settings import Settings
from infra import commands, preflight
from infra import config as infra_config
from tests.pulumi_mocks import FAKE_IP, FAKE_PRIVATE_KEY, run_stack

SCHEMA = infra_config.load_schema()
BASE = {"sshCidrs": "198.51.100.7/32"}
# Settings that reach a command line, and the flag that carries them.
FLAG_OF = {"ref": "--ref", "imageTag": "--tag", "repoUrl": "--repo", "imageRegistry": "--registry",
           "domain": "--domain", "domainSuffix": "--domain", "acmeEmail": "--acme-email", "acmeCa": "--acme-ca",
           "scanTargets": "--scan-targets"}
# The argument a setting becomes, when that is not the value as it was set.
ARGUMENT_OF = {
    "imageTag": lambda parsed, value: parsed.image_tag,
    "domain": lambda parsed, value: parsed.domain,  # lower-cased, no trailing dot
    "domainSuffix": lambda parsed, value: parsed.domain,  # demo.<suffix>
    "acmeEmail": lambda parsed, value: parsed.engine_settings["acme_email"],
    "acmeCa": lambda parsed, value: parsed.acme_ca,
    "scanTargets": lambda parsed, value: ",".join(parsed.engine_settings["scan_targets"]),  # normalised, duplicates dropped
}
# What each key needs next to it so that it is the only thing under test.
COMPANIONS = {
    "sshPublicKey": {"sshPrivateKey": FAKE_PRIVATE_KEY},
    "keyName": {"sshPrivateKey": FAKE_PRIVATE_KEY},
    "subnetId": {"vpcId": "vpc-0123456789abcdef0"},
    # Without a domain these never reach a host (nor a resource).
    "hostedZoneId": {"domain": "demo.example.com"},
    "acmeEmail": {"domain": "demo.example.com"},
    "acmeCa": {"domain": "demo.example.com"},
}
_DNS = r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){0,2}\.[a-z]{2,6}"
# Values of the accepted shape, with the punctuation that shape allows (they reach the host).
REACHING = {
    "ref": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,30}", fullmatch=True),
    "imageTag": st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}", fullmatch=True),
    "repoUrl": st.from_regex(r"(https://[a-z0-9.-]{1,12}(:[0-9]{1,5})?|file://)(/[A-Za-z0-9._~-]{1,10}){1,3}/?",
                             fullmatch=True),
    "imageRegistry": st.from_regex(r"[a-z0-9][a-z0-9.-]{0,12}(:[0-9]{1,5})?(/[a-z0-9][a-z0-9._-]{0,8}){1,2}",
                                   fullmatch=True),
    "publicCidrs": st.sampled_from(["0.0.0.0/0", "10.0.0.0/8,2001:db8::/32", '["192.0.2.0/24"]']),
    "sshCidrs": st.sampled_from(["198.51.100.7/32", "auto", "2001:db8::1/128, 203.0.113.0/24"]),
    "sshPublicKey": st.just("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake me@laptop"),
    "keyName": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=30),
    "ami": st.from_regex(r"ami-[0-9a-f]{8,17}", fullmatch=True),
    "vpcId": st.from_regex(r"vpc-[0-9a-f]{8,17}", fullmatch=True),
    "subnetId": st.from_regex(r"subnet-[0-9a-f]{8,17}", fullmatch=True),
    "expiresAt": st.just("2026-12-01T02:00:00Z"),
    "domain": st.from_regex(_DNS, fullmatch=True),
    "domainSuffix": st.from_regex(_DNS, fullmatch=True),
    "hostedZoneId": st.from_regex(r"Z[A-Z0-9]{1,20}", fullmatch=True),
    "acmeEmail": st.from_regex(r"[A-Za-z0-9._%+-]{1,10}@[a-z0-9-]{1,10}\.[a-z]{2,6}", fullmatch=True),
    "scanTargets": st.lists(st.builds(lambda a, b, n: f"{a}.{b}.0.0/{n}", st.integers(1, 223), st.integers(0, 255),
                                      st.integers(16, 32)), max_size=3).map(", ".join),
    "acmeCa": st.one_of(st.sampled_from(["production", "staging"]),
                        st.from_regex(r"https://[a-z0-9.-]{1,12}(:[0-9]{1,5})?(/[A-Za-z0-9._~-]{1,10}){0,3}/?",
                                      fullmatch=True)),
    "nightlyReset": st.one_of(st.just("off"), st.from_regex(r"(?:[01][0-9]|2[0-3]):59", fullmatch=True)),
}
INJECTIONS = [
    "$(touch /tmp/x)", "`touch /tmp/x`", ";touch /tmp/x", "\nreboot", "-x", "--help", "' ; touch /tmp/x ; '",
    '"$(id)"', "${IFS}id", "|id", "&& id", "> /tmp/x", "\\", "\x00", "*", "~root", "#", "a b", "\t", "\r", "\u202e",
]


def hostile(key: str) -> st.SearchStrategy[str]:
    fragment = st.sampled_from(INJECTIONS) | st.text(alphabet=st.sampled_from(list(";|&$()`'\"\\\n <>*?~#!-")), max_size=6)
    spliced = st.builds(lambda valid, bad, at: valid[:at] + bad + valid[at:], REACHING[key], fragment,
                        st.integers(0, 40))
    return st.one_of(REACHING[key], spliced, st.sampled_from(INJECTIONS), st.text(max_size=40))


def argvs(spec: Settings) -> list[list[str]]:
    """Every argument list the program sends to a host, from the infra.commands builders."""
    return [
        commands.sudo(commands.deploy_argv(spec)),
        commands.bootstrap_argv(),
        commands.sudo(commands.health_argv(spec)),
        commands.wait_boot_argv(spec, 1500),
        commands.read_admin_password(spec),
        commands.sudo(commands.reset_argv(spec.state_dir)),
    ]


def spec_of(parsed: infra_config.DemoConfig) -> Settings:
    image_tags = {image: parsed.image_tag for image in preflight.SIRIUS_IMAGES}
    if parsed.image_tag != "latest":
        image_tags["sirius-ui"] = "latest"  # a preflight fallback: exercises --image-tag
    return commands.settings_for(parsed, FAKE_IP, image_tags=image_tags)


# The commands with a key's companions alone (a private key alone is refused, and reaches no host anyway).
BASELINE = {
    key: argvs(spec_of(infra_config.parse(
        {**BASE, **{k: v for k, v in COMPANIONS.get(key, {}).items() if k != "sshPrivateKey"}},
        stack="demo", schema=SCHEMA)))
    for key in SCHEMA
}


def check(key: str, value: str) -> None:
    raw = {**BASE, **COMPANIONS.get(key, {}), key: value}
    try:
        parsed = infra_config.parse(raw, stack="demo", secret_keys={"sshPrivateKey"},
                                    lookup_public_ip=lambda: "203.0.113.9", schema=SCHEMA)
    except infra_config.ConfigError as err:
        empty_means_unset = key in ("sshPublicKey", "keyName") and not value.strip()
        assert err.keys == (["sshPrivateKey"] if empty_means_unset else [key]), (value, err)
        return
    built = argvs(spec_of(parsed))
    for argv in built:
        assert shlex.split(commands.shell(argv)) == argv, argv
    expected = ARGUMENT_OF.get(key, lambda parsed, value: value)(parsed, value)
    if key not in FLAG_OF or not expected:  # never on a command line, or empty: as if not set
        assert built == BASELINE[key], f"{key} changed a host command"
        return
    for argv in built[:1]:  # the remote deploy (user_data carries no setting)
        assert argv[argv.index(FLAG_OF[key]) + 1] == expected


@pytest.mark.parametrize("key", list(REACHING))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_values_are_refused_or_reach_the_host_as_one_quoted_argument(key, data):
    check(key, data.draw(hostile(key), label=key))


def test_every_string_setting_is_under_test():
    assert set(REACHING) == {key for key, s in SCHEMA.items() if s.type == "string"} - {"instanceType", "sshPrivateKey"}


@pytest.mark.parametrize(
    ("key", "value"),
    [("ref", "$(touch /tmp/x)"), ("ref", "main;reboot"), ("ref", "main\nreboot"), ("ref", "-main"),
     ("ref", "--upload-pack=touch /tmp/x"), ("imageTag", "$(id)"), ("imageTag", "-x"),
     ("repoUrl", "ext::sh -c touch% /tmp/x"), ("repoUrl", "-uhttps://github.com/x/y.git"),
     ("repoUrl", "https://github.com/" + "a" * 300 + "/Sirius.git"),  # would overflow the user data
     ("imageRegistry", "-ghcr.io/x"), ("imageRegistry", 'ghcr.io/x"\n  y: z'), ("imageRegistry", "ghcr.io/" + "a" * 200),
     ("publicCidrs", "0.0.0.0/0;id"), ("sshCidrs", "$(curl x)/32"), ("ami", "ami-0123456789abcdef0;id"),
     ("subnetId", "-subnet-0123456789abcdef0"), ("expiresAt", "2026-12-01T02:00:00Z\nid")],
)
def test_command_reaching_injections_are_refused_naming_the_key(key, value):
    with pytest.raises(infra_config.ConfigError) as caught:
        infra_config.parse({**BASE, **COMPANIONS.get(key, {}), key: value}, stack="demo", schema=SCHEMA,
                           secret_keys={"sshPrivateKey"})
    assert caught.value.keys == [key]


# --- accepted hostile-looking values that are not shell: they stay out of every command ---

ACCEPTED_ODDITIES = [
    ({"keyName": "$(touch /tmp/x); `id` | x", "sshPrivateKey": FAKE_PRIVATE_KEY}, "$(touch /tmp/x); `id` | x"),
    ({"sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake $(touch /tmp/x);`id`",
      "sshPrivateKey": FAKE_PRIVATE_KEY}, "$(touch /tmp/x);`id`"),
]


@pytest.mark.parametrize(("config", "needle"), ACCEPTED_ODDITIES)
def test_accepted_oddities_never_reach_a_command(config, needle):
    run = run_stack({**BASE, **config}, secret_keys=("sshPrivateKey",))
    for command in run.of_type("command:remote:Command"):
        for field in ("create", "stdin", "triggers"):
            assert needle not in repr(command.inputs.get(field)), (command.name, field)
    holders = {r.type for r in run.resources if needle in repr(r.inputs)}
    assert holders <= {"aws:ec2/instance:Instance", "aws:ec2/keyPair:KeyPair"}, holders


@example(ref="feature/scan-ui", tag="pr-9-amd64")
@given(ref=st.sampled_from(["beta", "v1.1.0", "pr-42", "sha-" + "b" * 40]), tag=st.sampled_from(["", "v1.1.0"]))
@settings(max_examples=6, deadline=None)
def test_the_commands_the_program_registers_split_back_into_arguments(ref, tag):
    """The strings the program really registers with pulumi-command, not only the builders."""
    run = run_stack({**BASE, "ref": ref, "imageTag": tag})
    for command in run.of_type("command:remote:Command"):
        for part in re.split(r" \| | && ", command.inputs["create"]):
            argv = shlex.split(part)
            assert commands.shell(argv) == part, part
            if "--ref" in argv:
                assert argv[argv.index("--ref") + 1] == ref
