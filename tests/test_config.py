"""Config validation: every bad value refused with its key and the expected form."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from engine import settings
from infra import commands, config
from infra.config import ConfigError, parse

ROOT = Path(__file__).resolve().parent.parent
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAfakekey\n-----END OPENSSH PRIVATE KEY-----\n"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake me@laptop"


def ok_lookup() -> str:
    return "52.10.20.30"


def valid(**raw):
    return parse(raw, stack="t", lookup_public_ip=ok_lookup, secret_keys={"sshPrivateKey"})


def problems(**raw) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        valid(**raw)
    return dict(caught.value.problems)


def test_defaults_make_a_working_config():
    demo = valid()
    assert demo.ref == "main" and demo.image_tag == "latest"
    assert demo.instance_type == "t3.medium" and demo.volume_size == 30
    assert demo.public_cidrs == ("0.0.0.0/0",)
    assert demo.ssh_cidrs == ("52.10.20.30/32",)
    assert demo.generates_key and demo.engine_settings["health_timeout"] == 600
    assert demo.repo_url == "https://github.com/SiriusScan/Sirius.git"


@pytest.mark.parametrize(
    "ref", ["main branch", "main;rm -rf /", "$(reboot)", "`id`", "a/../b", "..", "-upload-pack=x", "a\nb", "", "x" * 201]
)
def test_bad_refs_are_refused(ref):
    found = problems(ref=ref)
    assert list(found) == ["ref"]
    assert "expected a branch, tag, pr-N or commit" in found["ref"]


@pytest.mark.parametrize("tag", ["-latest", ".x", "a b", "x" * 129, "v1;id", "tag$(id)", "a/b"])
def test_bad_image_tags_are_refused(tag):
    assert "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}" in problems(imageTag=tag)["imageTag"]


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("volumeSize", "thirty", "not a whole number"),
        ("volumeSize", "19", "out of range"),
        ("volumeSize", 19, "out of range"),
        ("healthTimeout", "10", "out of range"),
        ("publicCidrs", '["10.0.0.0/33"]', "not a valid CIDR"),
        ("publicCidrs", "10.0.0.1/24", "not a valid CIDR"),
        ("publicCidrs", '["10.0.0.0"]', "no prefix length"),
        ("publicCidrs", "[]", "at least one CIDR"),
        ("publicCidrs", "[nope", "not a JSON list"),
        ("sshCidrs", "300.1.1.1/32", "not a valid CIDR"),
        ("instanceType", "t3 medium", "expected family.size"),
        ("instanceType", "t4g.medium", "arm64"),
        ("allowOpenSsh", "yes", "true or false"),
        ("repoUrl", "git@github.com:SiriusScan/Sirius.git", "https://host/owner/repo.git"),
        ("repoUrl", "https://github.com/x/$(id).git", "https://host/owner/repo.git"),
        ("ami", "ami-XYZ", "AMI id"),
        ("vpcId", "vpc 1", "VPC id"),
        ("sshPublicKey", "not a key", "OpenSSH public key"),
        ("nightlyReset", "23:00", "HH:59"),  # the workflow runs at minute 59 only
        ("nightlyReset", "24:59", "HH:59"),
        ("nightlyReset", "daily", "or off"),
        ("nightlyReset", "", "HH:59"),
        ("scanTargets", "0.0.0.0/0", "whole internet"),
        ("scanTargets", "203.0.113.1/28", "not a valid CIDR"),
        ("scanTargets", "203.0.113.7", "no prefix length"),
        ("scanTargets", "2001:db8::/32", "IPv4 only"),
        ("scanTargets", "169.254.169.254/32", "metadata service"),
    ],
)
def test_bad_values_name_key_and_form(key, value, says):
    found = problems(**{key: value})
    assert key in found
    assert says in found[key]


def test_all_problems_are_reported_at_once():
    found = problems(ref="a b", imageTag="-x", volumeSize="thirty", publicCidrs="1.2.3.4")
    assert set(found) == {"ref", "imageTag", "volumeSize", "publicCidrs"}


def test_open_ssh_needs_explicit_consent():
    assert "allowOpenSsh" in problems(sshCidrs="0.0.0.0/0")["sshCidrs"]
    assert "allowOpenSsh" in problems(sshCidrs='["::/0"]')["sshCidrs"]
    assert valid(sshCidrs="0.0.0.0/0", allowOpenSsh="true").ssh_cidrs == ("0.0.0.0/0",)


def test_cidr_lists_accept_json_and_commas_and_dedupe():
    assert valid(publicCidrs='["10.0.0.0/8", "2001:db8::/32"]').public_cidrs == ("10.0.0.0/8", "2001:db8::/32")
    assert valid(sshCidrs="198.51.100.1/32, 198.51.100.1/32").ssh_cidrs == ("198.51.100.1/32",)


def test_auto_ssh_lookup_failure_says_to_set_the_key():
    def broken() -> str:
        raise TimeoutError("timed out")

    with pytest.raises(ConfigError) as caught:
        parse({}, stack="t", lookup_public_ip=broken)
    message = dict(caught.value.problems)["sshCidrs"]
    assert "timed out" in message and "pulumi config set sshCidrs" in message


def test_lookup_not_called_when_other_values_are_bad():
    calls = []
    with pytest.raises(ConfigError):
        parse({"ref": "a b"}, stack="t", lookup_public_ip=lambda: calls.append(1) or "52.1.1.1")
    assert calls == []


def test_key_pair_combinations():
    assert "sshPrivateKey" in problems(sshPublicKey=PUBLIC_KEY)
    assert "sshPrivateKey" in problems(keyName="mine")
    assert "keyName" in problems(keyName="mine", sshPublicKey=PUBLIC_KEY, sshPrivateKey=PRIVATE_KEY)
    demo = valid(keyName="mine", sshPrivateKey=PRIVATE_KEY)
    assert demo.key_name == "mine" and not demo.generates_key


def test_plain_text_private_key_is_refused_and_never_echoed():
    with pytest.raises(ConfigError) as caught:
        parse({"keyName": "mine", "sshPrivateKey": PRIVATE_KEY}, stack="t", lookup_public_ip=ok_lookup)
    assert "--secret" in dict(caught.value.problems)["sshPrivateKey"]
    with pytest.raises(ConfigError) as caught:
        valid(keyName="mine", sshPrivateKey="AAAAfakekey-not-a-block")
    assert "AAAAfakekey" not in str(caught.value)


def keygen(tmp_path, name: str, *args: str) -> str:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-C", "", "-f", str(path), *args], check=True, timeout=30)
    return path.read_text()


def test_private_keys_ssh_accepts_are_accepted(tmp_path):
    for name, args in (("openssh", ["-t", "ed25519", "-N", ""]), ("pkcs8", ["-t", "ecdsa", "-m", "PKCS8", "-N", ""]),
                       ("sec1", ["-t", "ecdsa", "-m", "PEM", "-N", ""])):
        key = keygen(tmp_path, name, *args)
        assert valid(keyName="mine", sshPrivateKey=key).ssh_private_key == key.strip(), name


def test_passphrase_protected_keys_are_refused_up_front(tmp_path):
    for name, args in (("openssh", ["-t", "ed25519"]), ("pkcs8", ["-t", "ecdsa", "-m", "PKCS8"]),
                       ("sec1", ["-t", "ecdsa", "-m", "PEM"])):
        key = keygen(tmp_path, name, *args, "-N", "correct horse")
        found = problems(keyName="mine", sshPrivateKey=key)
        assert list(found) == ["sshPrivateKey"] and "passphrase" in found["sshPrivateKey"], name
        assert "ssh-keygen -p" in found["sshPrivateKey"] and key.splitlines()[1] not in found["sshPrivateKey"]


def test_private_key_is_not_in_repr():
    demo = valid(keyName="mine", sshPrivateKey=PRIVATE_KEY)
    assert "AAAAfakekey" not in repr(demo)


def test_scan_targets_default_to_none_and_take_cidrs_comma_separated():
    assert valid().engine_settings["scan_targets"] == ()
    assert valid(scanTargets=" 203.0.113.0/28, 198.51.100.7/32 ").engine_settings["scan_targets"] == ("203.0.113.0/28", "198.51.100.7/32")


def test_error_message_lists_keys_with_namespace():
    with pytest.raises(ConfigError) as caught:
        valid(volumeSize="thirty")
    assert "sirius-demo:volumeSize" in str(caught.value)


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_declared_key_has_a_rule():
    """The docs table of the keys is made from Pulumi.yaml (tests/test_settings_table.py)."""
    schema = config.load_schema()
    for key in schema:
        config.rule_of(key)  # its own rule, or the engine's check and form (KeyError: neither)
    assert set(schema) - set(config._RULES) <= set(settings.BY_KEY)


def cli_accepts(type_: str, text: str) -> bool:
    """What the Pulumi CLI lets through for `pulumi config set KEY TEXT` (no --path, no --json)
    when Pulumi.yaml declares KEY with `type_`: a plain value is never an array or object."""
    if type_ == "string":
        return True
    if type_ == "integer":
        return re.fullmatch(r"-?[0-9]+", text) is not None
    if type_ == "boolean":
        return text in ("true", "false")
    return False


def test_every_documented_config_value_gets_past_the_cli_type_check():
    """`pulumi config set` examples, and the values quoted in the example error, are of the
    declared type: otherwise the CLI refuses them before the program says anything."""
    schema = config.load_schema()
    texts = [path.read_text() for path in DOCS] + [(ROOT / "infra" / "config.py").read_text()]
    examples = [m for text in texts for m in re.findall(r"pulumi config set (?:--secret )?(?:sirius-demo:)?(\w+) ([^\s`]+)", text)]
    examples += [m for text in texts for m in re.findall(r"^  sirius-demo:(\w+): '?([^' ]+)'? ", text, re.M)]
    checked = [(key, value) for key, value in examples if key in schema and not value.startswith(("\"$", "<", "..."))]
    assert {"publicCidrs", "sshCidrs", "volumeSize", "scanTargets"} <= {key for key, _ in checked}
    for key, value in checked:
        assert cli_accepts(schema[key].type, value), f"`pulumi config set {key} {value}` fails the CLI's type check"
        if schema[key].type == "string" and (key.endswith("Cidrs") or key == "scanTargets"):
            valid(**{key: value})  # and then the program takes it


# --- DNS and HTTPS ---------------------------------------------------------------------------


def test_no_domain_by_default_and_production_certificates():
    demo = valid()
    assert (demo.domain, demo.https, demo.hosted_zone_id, demo.engine_settings["acme_email"], demo.acme_ca) == (
        "", False, None, "", "production")


def test_domain_is_taken_lower_cased_without_the_root_dot():
    demo = valid(domain="Demo.Example.COM.", hostedZoneId="Z0123456789ABCDEFGHIJ", acmeEmail="ops@example.com",
                 acmeCa="staging")
    assert (demo.domain, demo.https, demo.hosted_zone_id) == ("demo.example.com", True, "Z0123456789ABCDEFGHIJ")
    assert (demo.engine_settings["acme_email"], demo.acme_ca) == ("ops@example.com", "staging")


@pytest.mark.parametrize(
    ("stack", "domain"),
    [("pr-42", "pr-42.demos.example.com"),
     ("branch-feature-scan-ui-0123456789", "branch-feature-scan-ui-0123456789.demos.example.com")],
)
def test_domain_suffix_names_the_demo_after_its_stack(stack, domain):
    demo = parse({"domainSuffix": "demos.example.com"}, stack=stack, lookup_public_ip=ok_lookup)
    assert demo.domain == domain and demo.https


def test_a_stack_name_that_is_no_dns_label_is_cleaned_and_hashed():
    demo = parse({"domainSuffix": "demos.example.com"}, stack="Alice_Test", lookup_public_ip=ok_lookup)
    label, _, suffix = demo.domain.partition(".")
    assert suffix == "demos.example.com" and re.fullmatch(r"alice-test-[0-9a-f]{10}", label)


@pytest.mark.parametrize(
    ("raw", "key", "says"),
    [
        ({"domain": "localhost"}, "domain", "at least two labels"),
        ({"domain": "demo_1.example.com"}, "domain", "e.g. demo.example.com"),
        ({"domain": "203.0.113.7"}, "domain", "a DNS name"),
        ({"domain": "https://demo.example.com"}, "domain", "a DNS name"),
        ({"domain": "-demo.example.com"}, "domain", "a DNS name"),
        ({"domainSuffix": "example"}, "domainSuffix", "at least two labels"),
        ({"domainSuffix": "demos.example.com;id"}, "domainSuffix", "a DNS name"),
        ({"domain": "demo.example.com", "domainSuffix": "demos.example.com"}, "domainSuffix", "together with domain"),
        ({"domain": "demo.example.com", "hostedZoneId": "z0123"}, "hostedZoneId", "e.g. Z0123456789ABCDEFGHIJ"),
        ({"domain": "demo.example.com", "hostedZoneId": "/hostedzone/Z0123"}, "hostedZoneId", "hosted zone id"),
        ({"hostedZoneId": "Z0123456789ABCDEFGHIJ"}, "hostedZoneId", "without domain or domainSuffix"),
        ({"acmeEmail": "ops"}, "acmeEmail", "an email address"),
        ({"acmeEmail": "ops@example..com"}, "acmeEmail", "an email address"),
        ({"acmeCa": "prod"}, "acmeCa", "production, staging or an https:// ACME directory URL"),
        ({"acmeCa": "http://ca.example.com/directory"}, "acmeCa", "an https:// ACME directory URL"),
        ({"acmeCa": ""}, "acmeCa", "production, staging"),
    ],
)
def test_bad_dns_and_https_settings_name_key_and_form(raw, key, says):
    found = problems(**raw)
    assert list(found) == [key] and says in found[key]


def test_a_suffix_too_long_for_the_stack_name_is_refused_naming_the_name():
    suffix = ".".join(["a" * 61] * 4)  # 247 characters: a valid name on its own
    assert valid(domainSuffix=suffix).domain == "t." + suffix
    with pytest.raises(ConfigError) as caught:
        parse({"domainSuffix": suffix}, stack="pr-123456789", lookup_public_ip=ok_lookup)
    [(key, message)] = caught.value.problems
    assert key == "domainSuffix" and "'pr-123456789.aaa" in message and "at most 253 characters" in message


def test_an_acme_directory_url_is_a_certificate_authority():
    assert valid(domain="demo.example.com", acmeCa="https://ca.internal:14000/dir").acme_ca == "https://ca.internal:14000/dir"


# --- the nightly reset (docs/reset.md) -----------------------------------------------------------


@pytest.mark.parametrize(("value", "taken"), [("23:59", "23:59"), ("04:59", "04:59"), (" off ", "off"), ("OFF", "off")])
def test_nightly_reset_is_a_time_at_minute_59_or_off(value, taken):
    assert valid().nightly_reset == "23:59"  # the old demo's time, unless a stack says otherwise
    assert valid(nightlyReset=value).nightly_reset == taken


def test_branch_stacks_are_not_reset_nightly():
    template = yaml.safe_load((ROOT / "Pulumi.branch.yaml").read_text())["config"]
    assert valid(nightlyReset=template["sirius-demo:nightlyReset"]).nightly_reset == "off"


# --- the engine's settings that the stack config sets ------------------------------------------


def test_every_key_the_engine_claims_is_declared_with_the_engines_default():
    """The table's Pulumi.yaml keys name declared keys, whose defaults are the engine's (imageTag's
    empty default derives the tag from ref, `latest` for main)."""
    schema = config.load_schema()
    assert set(settings.BY_KEY) <= set(schema), set(settings.BY_KEY) - set(schema)
    for key, option in settings.BY_KEY.items():
        parsed = config.rule_of(key)(schema[key].default)
        assert parsed == option.default or (key, parsed) == ("imageTag", None), key
    assert valid().engine_settings["image_tag"] == settings.default_of("image_tag")


def test_the_stack_config_reaches_the_engine_through_the_table():
    parsed = valid(ref="pr-7", healthTimeout="900", rollback="false", scanTargets="203.0.113.0/28",
                   domain="Demo.Example.com", acmeCa="staging")
    assert set(parsed.engine_settings) == {o.name for o in settings.BY_KEY.values()} | {"git_ref"}
    s = commands.settings_for(parsed, "203.0.113.9", commit="e" * 40)
    assert (s.ref, s.git_ref, s.image_tag) == ("pr-7", parsed.git_ref, "pr-7-amd64")
    assert (s.health_timeout, s.rollback, s.scan_targets, s.domain, s.acme_ca, s.commit) == (
        900, False, ("203.0.113.0/28",), "demo.example.com", "staging", "e" * 40)
    assert commands.settings_for(parsed, "203.0.113.9", image_tags={"sirius-ui": "pr-7-amd64",
                                                                    "sirius-api": "latest"}).image_tags == {
        "sirius-api": "latest"}  # a tag that is every image's is not repeated


def test_a_key_the_engine_claims_is_checked_with_its_check_and_form(monkeypatch):
    """A new stack-configurable engine setting: declared in Pulumi.yaml and in the engine's table,
    nothing else; refused naming the key and the engine's form, else carried to the host."""
    option = dataclasses.replace(next(o for o in settings.OPTIONS if o.name == "pull_attempts"), key="pullAttempts")
    monkeypatch.setitem(settings.BY_KEY, "pullAttempts", option)
    schema = {**config.load_schema(), "pullAttempts": config.Setting("pullAttempts", "integer", 6, "Tries per pull.")}
    with pytest.raises(ConfigError) as caught:
        parse({"sshCidrs": "198.51.100.7/32", "pullAttempts": "0"}, stack="t", schema=schema)
    assert caught.value.keys == ["pullAttempts"]
    assert "sirius-demo:pullAttempts: '0' is not valid; expected a whole number from 1 to 10^8" in str(caught.value)
    with pytest.raises(ConfigError, match="pullAttempts: 'many' is not a number; expected a whole number"):
        parse({"sshCidrs": "198.51.100.7/32", "pullAttempts": "many"}, stack="t", schema=schema)
    parsed = parse({"sshCidrs": "198.51.100.7/32", "pullAttempts": "3"}, stack="t", schema=schema)
    argv = commands.deploy_argv(commands.settings_for(parsed, "203.0.113.9"))
    assert argv[argv.index("--pull-attempts") + 1] == "3"


def test_a_generic_string_key_shows_the_engines_form():
    with pytest.raises(ConfigError) as caught:
        valid(acmeEmail="ops")
    assert f"sirius-demo:acmeEmail: 'ops' is not valid; expected {settings.BY_KEY['acmeEmail'].form}" in str(caught.value)
    assert valid(domain="demo.example.com", acmeEmail=" ops@example.com ").engine_settings["acme_email"] == "ops@example.com"
