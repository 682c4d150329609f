"""Stack configuration: the schema from Pulumi.yaml, value rules, one error for all.

The schema (keys, types, defaults, descriptions) is declared once, in Pulumi.yaml;
this module adds the rules a type cannot express and turns raw stack config into a
frozen `DemoConfig`. A key that the engine's table (engine/settings.OPTIONS) claims and
that has no stricter rule here is checked with the engine's own check and form, and
reaches the host through `DemoConfig.engine_settings`. Every problem is collected, so a user fixes them in one go, and
the program stops with one `pulumi.RunError` before any resource is registered.
"""

from __future__ import annotations

import base64
import configparser
import difflib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine import instancetypes, rules, settings
from infra import sshagent

PROJECT = "sirius-demo"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "Pulumi.yaml"
AUTO = "auto"
OPEN_WORLD = frozenset({"0.0.0.0/0", "::/0"})
MIN_VOLUME_GIB = 20
MAX_VOLUME_GIB = 16384
MIN_HEALTH_TIMEOUT = 60
MAX_HEALTH_TIMEOUT = 1500
MIN_BUILD_TIMEOUT = 300
# Capped so that the longest `pulumi up` (infra/remote.longest_up_seconds) fits a GitHub job (6 h).
MAX_BUILD_TIMEOUT = 4500

# Keys of other namespaces that this program reads (the default AWS provider's), and the
# names people put in this project's namespace by mistake for them.
AWS_REGION = "aws:region"
_ELSEWHERE = {"region": AWS_REGION, "awsRegion": AWS_REGION, "profile": "aws:profile"}
# An AWS region (us-west-2, ap-southeast-1, us-gov-west-1), and an availability zone of one.
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
_ZONE = re.compile(r"([a-z]{2}(?:-[a-z]+)+-\d{1,2})[a-z]")
_AWS_ID = {
    "ami": re.compile(r"ami-[0-9a-f]{8,17}"),
    "vpcId": re.compile(r"vpc-[0-9a-f]{8,17}"),
    "subnetId": re.compile(r"subnet-[0-9a-f]{8,17}"),
}
_PUBLIC_KEY = re.compile(
    r"(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) [A-Za-z0-9+/]+={0,3}(?: [ -~]{0,200})?"
)
# OpenSSH, PKCS#1 (RSA), SEC1 (EC) and PKCS#8 blocks, with or without PEM headers.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:OPENSSH |RSA |EC |ENCRYPTED )?)PRIVATE KEY-----\n((?:[A-Za-z-]+: [ -~]+\n)*)\n?"
    r"([A-Za-z0-9+/=\n]+)-----END \1PRIVATE KEY-----\n?"
)
_OPENSSH_MAGIC = b"openssh-key-v1\x00"
# Route 53 hosted zone ids: Z and upper-case letters and digits (Z0123456789ABCDEFGHIJ).
_HOSTED_ZONE_ID = re.compile(r"Z[A-Z0-9]{1,32}")
_KEY_NAME = re.compile(r"[ -~]{1,255}")


@dataclass(frozen=True)
class Setting:
    key: str
    type: str
    default: Any
    description: str


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Setting]:
    """The `config:` block of Pulumi.yaml, by key."""
    declared = yaml.safe_load(path.read_text())["config"]
    return {
        key: Setting(key, spec["type"], spec.get("default"), spec.get("description", ""))
        for key, spec in declared.items()
    }


class ConfigError(ValueError):
    """Every invalid setting, each with what is wrong and the form expected."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = [f"  {_label(key)}: {message}" for key, message in problems]
        super().__init__(
            "invalid stack configuration; fix these with `pulumi config set` and run again:\n"
            + "\n".join(lines)
        )

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.problems]


@dataclass(frozen=True)
class DemoConfig:
    stack: str
    ref: str
    git_ref: str
    image_tag: str
    image_tag_explicit: bool
    images_published: bool
    instance_type: str
    volume_size: int
    public_cidrs: tuple[str, ...]
    ssh_cidrs: tuple[str, ...]
    allow_open_ssh: bool
    ssh_public_key: str | None
    key_name: str | None
    repo_url: str
    ami: str | None
    vpc_id: str | None
    subnet_id: str | None
    expires_at: str | None = None
    image_registry: str = "ghcr.io/siriusscan"
    preflight: bool = True
    allow_build_fallback: bool = False
    domain: str = ""  # "" = no DNS record, no HTTPS: plain HTTP on the raw ports
    hosted_zone_id: str | None = None  # None = looked up from the domain's parent
    acme_ca: str = "production"
    nightly_reset: str = "23:59"  # HH:59 (UTC) or off: when .github/workflows/reset.yml resets the demo
    # The engine settings the stack config sets, by Settings field: every Pulumi.yaml key that
    # engine/settings.OPTIONS claims (commands.settings_for reads it; the fields above are what
    # the Pulumi program itself reads).
    engine_settings: Mapping[str, Any] = field(default_factory=dict)
    # Kept out of repr so a stray print or log of the config never shows it.
    ssh_private_key: str | None = field(default=None, repr=False)

    @property
    def generates_key(self) -> bool:
        return self.ssh_private_key is None

    @property
    def https(self) -> bool:
        return bool(self.domain)


def _label(key: str) -> str:
    """How a problem names what to fix: this project's key, another namespace's key, or an
    environment variable (upper case)."""
    if ":" in key:
        return key
    if key.isupper():
        return f"{key} (environment)"
    return f"{PROJECT}:{key}"


def _show(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


# --- one rule per kind of value; each returns the parsed value or raises ValueError ---


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _integer(low: int, high: int, unit: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"\d{1,6}", value))
        ):
            raise ValueError(f"{_show(str(value))} is not a whole number; expected {unit}, {low} to {high}")
        number = int(value)
        if not low <= number <= high:
            raise ValueError(f"{number} is out of range; expected {unit}, {low} to {high}")
        return number

    return parse


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{_show(str(value))} is not a boolean; expected true or false")


def _git_ref(value: Any) -> str:
    ref = _string(value)
    problem = rules.ref_problem(ref)
    if problem:
        raise ValueError(f"{problem}; {rules.REF_FORM}")
    problem = rules.stale_ref_problem(ref)
    if problem:
        raise ValueError(problem)
    return ref


def _image_tag(value: Any) -> str | None:
    tag = _string(value)
    if not tag:
        return None
    if not rules.IMAGE_TAG_PATTERN.fullmatch(tag):
        raise ValueError(
            f"{_show(tag)} is not a Docker tag; expected [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}, e.g. v1.1.0 or pr-42-amd64"
        )
    return tag


def _instance_type(value: Any) -> str:
    """By the shared rule (engine.rules, which the policy pack applies too): its table offline;
    `parse` asks AWS about a type the table does not know when it can."""
    name = _string(value)
    problem = instancetypes.instance_type_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def _cidr(text: str) -> str:
    form = "expected a CIDR such as 203.0.113.7/32 or 2001:db8::/64"
    if "/" not in text:
        raise ValueError(f"{_show(text)} has no prefix length; {form}")
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as err:
        raise ValueError(f"{_show(text)} is not a valid CIDR ({err}); {form}") from None


def _cidr_list(value: Any, *, allow_auto: bool) -> tuple[str, ...]:
    """A JSON list, a comma-separated string or a single CIDR (the CLI hands arrays over as JSON)."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError:
                raise ValueError(f"{_show(value)} is not a JSON list; expected [\"203.0.113.7/32\", ...]") from None
        else:
            value = [part.strip() for part in stripped.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("expected a list of CIDRs")
    if allow_auto and value == [AUTO]:
        return (AUTO,)
    if not value:
        raise ValueError("is empty; expected at least one CIDR" + (" or auto" if allow_auto else ""))
    return tuple(dict.fromkeys(_cidr(item) for item in value))


def _optional(pattern: re.Pattern[str], form: str) -> Callable[[Any], str | None]:
    def parse(value: Any) -> str | None:
        text = _string(value).strip() if isinstance(value, str) else _string(value)
        if not text:
            return None
        if not pattern.fullmatch(text):
            raise ValueError(f"{_show(text)} is not valid; expected {form}")
        return text

    return parse


def _required(pattern: re.Pattern[str], form: str, max_length: int = 200) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _string(value)
        if len(text) > max_length:
            raise ValueError(f"is longer than {max_length} characters; expected {form}")
        if not pattern.fullmatch(text):
            raise ValueError(f"{_show(text)} is not valid; expected {form}")
        return text

    return parse


def _private_key(value: Any) -> str | None:
    """A private key that SSH (pulumi-command) can use as it is: never echoed, never encrypted."""
    text = _string(value)
    if not text.strip():
        return None
    form = ("an OpenSSH, PEM or PKCS#8 private key block without a passphrase, "
            "set with `pulumi config set --secret sshPrivateKey < key`")
    match = _PRIVATE_KEY.fullmatch(text.strip() + "\n")
    if not match:
        raise ValueError(f"is not valid; expected {form}")
    kind, headers, body = match.groups()
    # An OpenSSH blob that cannot be read at all is left for SSH to judge; one that names a cipher is encrypted.
    if kind == "ENCRYPTED " or "ENCRYPTED" in headers or (kind == "OPENSSH " and _openssh_cipher(body) not in (None, b"none")):
        raise ValueError(
            "is protected by a passphrase, which the remote commands cannot enter; expected a key without one: "
            "`ssh-keygen -p -N '' -f COPY_OF_KEY`, then set that copy"
        )
    if headers:
        raise ValueError(f"has PEM headers; expected {form}")
    return text.strip()


def _openssh_cipher(body: str) -> bytes | None:
    """The cipher name of an openssh-key-v1 blob (b"none" when unencrypted), None if unreadable."""
    try:
        blob = base64.b64decode("".join(body.split()), validate=True)
    except ValueError:
        return None
    if not blob.startswith(_OPENSSH_MAGIC) or len(blob) < len(_OPENSSH_MAGIC) + 4:
        return None
    start = len(_OPENSSH_MAGIC) + 4
    length = int.from_bytes(blob[len(_OPENSSH_MAGIC):start], "big")
    return blob[start:start + length]


MAX_REPO_URL = 200
MAX_REGISTRY = 100


def _repo_url(value: Any) -> str:
    url = _string(value)
    if len(url) > MAX_REPO_URL:
        raise ValueError(f"is longer than {MAX_REPO_URL} characters; expected https://host/owner/repo.git or file:///path")
    if rules.is_repo_url(url):
        return url
    raise ValueError(
        f"{_show(url)} is not a supported repository URL; expected https://host/owner/repo.git or file:///path "
        "(letters, digits, '.', '_', '~', '-', '/')"
    )


def _checked(is_valid: Callable[[str], bool], form: str, *,
             normalise: Callable[[str], str] = str.strip) -> Callable[[Any], str]:
    """A string setting checked with one of engine.rules' predicates ("" allowed)."""
    def parse(value: Any) -> str:
        text = normalise(_string(value))
        if text and not is_valid(text):
            raise ValueError(f"{_show(text)} is not valid; expected {form}")
        return text

    return parse


def nightly_reset(value: Any) -> str:
    """`off`, or the UTC time HH:59 at which the reset workflow resets this stack's demo."""
    text = _string(value).strip().lower()
    if not rules.is_nightly_reset(text):
        raise ValueError(f"{_show(text)} is not valid; expected {rules.NIGHTLY_RESET_FORM}")
    return text


# DNS ignores case and the root's trailing dot.
_dns_name = _checked(rules.is_domain, rules.DOMAIN_FORM, normalise=lambda v: v.strip().lower().removesuffix("."))


_RULES: dict[str, Callable[[Any], Any]] = {
    "ref": _git_ref,
    "imageTag": _image_tag,
    "instanceType": _instance_type,
    "volumeSize": _integer(MIN_VOLUME_GIB, MAX_VOLUME_GIB, "GiB"),
    "publicCidrs": lambda v: _cidr_list(v, allow_auto=False),
    "sshCidrs": lambda v: _cidr_list(v, allow_auto=True),
    "allowOpenSsh": _boolean,
    "sshPublicKey": _optional(_PUBLIC_KEY, "an OpenSSH public key line, e.g. 'ssh-ed25519 AAAA... me@laptop'"),
    "keyName": _optional(_KEY_NAME, "the name of an existing EC2 key pair (printable ASCII, up to 255)"),
    "sshPrivateKey": _private_key,
    "repoUrl": _repo_url,
    "ami": _optional(_AWS_ID["ami"], "an AMI id, e.g. ami-0123456789abcdef0"),
    "vpcId": _optional(_AWS_ID["vpcId"], "a VPC id, e.g. vpc-0123456789abcdef0"),
    "subnetId": _optional(_AWS_ID["subnetId"], "a subnet id, e.g. subnet-0123456789abcdef0"),
    "healthTimeout": _integer(MIN_HEALTH_TIMEOUT, MAX_HEALTH_TIMEOUT, "seconds"),
    "buildTimeout": _integer(MIN_BUILD_TIMEOUT, MAX_BUILD_TIMEOUT, "seconds"),
    "imageRegistry": _required(rules.REGISTRY_PATTERN, "a registry host and namespace, e.g. ghcr.io/siriusscan", MAX_REGISTRY),
    "preflight": _boolean,
    "allowBuildFallback": _boolean,
    "expiresAt": _optional(rules.UTC_TIME_PATTERN, rules.UTC_TIME_FORM),
    "domain": _dns_name,
    "domainSuffix": _dns_name,
    "hostedZoneId": _optional(_HOSTED_ZONE_ID, "a Route 53 hosted zone id, e.g. Z0123456789ABCDEFGHIJ"),
    "nightlyReset": nightly_reset,
}
SECRET_KEYS = frozenset({"sshPrivateKey"})


def _engine_rule(option: settings.Option) -> Callable[[Any], Any]:
    """A key the engine's table claims, with no stricter rule above: the engine's own check and form."""
    def parse(value: Any) -> Any:
        if option.kind is bool:
            return _boolean(value)
        if option.kind in (int, float):
            kinds = (int, str) if option.kind is int else (int, float, str)  # 2.5 is no whole number
            try:
                if isinstance(value, bool) or not isinstance(value, kinds):
                    raise ValueError
                value = option.kind(value)
            except ValueError:
                raise ValueError(f"{_show(str(value))} is not a number; expected {option.form}") from None
        elif option.kind is tuple:
            value = option.parse(_string(value))  # its ValueError names the form
        else:
            value = _string(value).strip()
        problem = option.problem(value)
        if problem:
            raise ValueError(f"{_show(option.text(value))} is not valid; {problem}")
        return value

    return parse


def rule_of(key: str) -> Callable[[Any], Any]:
    """The rule of a declared key: its own above, else the engine's (KeyError: neither has one)."""
    return _RULES[key] if key in _RULES else _engine_rule(settings.BY_KEY[key])


def parse(
    raw: Mapping[str, Any],
    *,
    stack: str,
    secret_keys: frozenset[str] | set[str] = frozenset(),
    lookup_public_ip: Callable[[], str] | None = None,
    schema: Mapping[str, Setting] | None = None,
    provider_config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    describe_instance_type: Callable[[str], instancetypes.InstanceSpec | None] | None = None,
) -> DemoConfig:
    """Validate raw stack config (unset keys missing or None) into a DemoConfig.

    Every problem is collected: unknown keys, each value, and the checks across keys over
    every value that parsed. `provider_config` holds the other namespaces' keys (aws:region);
    `environ`, when given, is checked for a dead SSH agent and, with no aws:region, for a
    region from the AWS environment. `describe_instance_type` gives AWS's data on an instance
    type the shared table does not know (only with preflight on). `lookup_public_ip` resolves
    `sshCidrs: auto`; it runs only when every other value is valid, and its failure is
    reported against sshCidrs.
    """
    schema = schema if schema is not None else load_schema()
    problems: list[tuple[str, str]] = [(key, _unknown_key(key, schema)) for key in sorted(set(raw) - set(schema))]
    values: dict[str, Any] = {}
    for key, setting in schema.items():
        value = raw.get(key)
        if value is None:
            value = setting.default
        try:
            values[key] = rule_of(key)(value)
        except ValueError as err:
            problems.append((key, str(err)))

    for key in SECRET_KEYS:
        if raw.get(key) and key not in secret_keys:
            problems.append((key, "is stored in plain text; expected a secret: `pulumi config set --secret " + key + " ...`"))

    if values.get("instanceType") and values.get("preflight") and describe_instance_type is not None:
        problem = _aws_instance_type_problem(values["instanceType"], describe_instance_type)
        if problem:
            problems.append(("instanceType", problem))
            del values["instanceType"]
    problems += _cross_checks(values)
    if "domain" in values and "domainSuffix" in values and not any(key == "domainSuffix" for key, _ in problems):
        values["domain"], problem = _stack_domain(values, stack)
        problems += problem
    if provider_config is not None:
        problems += _provider_problems(provider_config, environ or {})
    if environ is not None:
        problem = sshagent.problem(environ.get(sshagent.VARIABLE))
        if problem:
            problems.append((sshagent.VARIABLE, problem))
    if not problems and values["sshCidrs"] == (AUTO,):
        if lookup_public_ip is None:
            problems.append(("sshCidrs", "is auto but no public IP lookup is available; set CIDRs explicitly"))
        else:
            try:
                values["sshCidrs"] = (f"{lookup_public_ip()}/32",)
            except Exception as err:  # noqa: BLE001 - any failure becomes a config problem
                problems.append(
                    (
                        "sshCidrs",
                        f"is auto, but looking up this machine's public IPv4 failed ({err}); "
                        "set it explicitly, e.g. `pulumi config set sshCidrs 203.0.113.7/32`",
                    )
                )
    if problems:
        raise ConfigError(problems)

    plan = rules.plan_ref(values["ref"], values["imageTag"])
    return DemoConfig(
        stack=stack,
        ref=plan.ref,
        git_ref=plan.git_ref,
        image_tag=plan.image_tag,
        image_tag_explicit=values["imageTag"] is not None,
        images_published=plan.published,
        instance_type=values["instanceType"],
        volume_size=values["volumeSize"],
        public_cidrs=values["publicCidrs"],
        ssh_cidrs=values["sshCidrs"],
        allow_open_ssh=values["allowOpenSsh"],
        ssh_public_key=values["sshPublicKey"],
        key_name=values["keyName"],
        ssh_private_key=values["sshPrivateKey"],
        repo_url=values["repoUrl"],
        ami=values["ami"],
        vpc_id=values["vpcId"],
        subnet_id=values["subnetId"],
        expires_at=values["expiresAt"],
        image_registry=values["imageRegistry"],
        preflight=values["preflight"],
        allow_build_fallback=values["allowBuildFallback"],
        domain=values["domain"],
        hosted_zone_id=values["hostedZoneId"],
        acme_ca=values["acmeCa"],
        nightly_reset=values["nightlyReset"],
        engine_settings={**{option.name: values[key] for key, option in settings.BY_KEY.items() if key in values},
                         "ref": plan.ref, "git_ref": plan.git_ref, "image_tag": plan.image_tag},
    )


def _stack_domain(values: Mapping[str, Any], stack: str) -> tuple[str, list[tuple[str, str]]]:
    """The demo's DNS name: `domain`, else `<stack as a DNS label>.<domainSuffix>`, else ""."""
    if not values["domainSuffix"]:
        return values["domain"], []
    name = f"{rules.dns_label(stack)}.{values['domainSuffix']}"
    if not rules.is_domain(name):
        return "", [("domainSuffix", f"gives {_show(name)} for stack {stack!r}, which is not a valid DNS name "
                                     "(at most 253 characters); expected a shorter suffix")]
    return name, []


def _cross_checks(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Checks across keys, each over the keys it needs that parsed (so one run lists them all)."""
    def have(*keys: str) -> bool:
        return all(key in values for key in keys)

    problems = []
    open_ssh = OPEN_WORLD.intersection(values["sshCidrs"]) if have("sshCidrs", "allowOpenSsh") else set()
    if open_ssh and not values["allowOpenSsh"]:
        problems.append(
            (
                "sshCidrs",
                f"opens SSH to the whole internet ({', '.join(sorted(open_ssh))}); expected your own CIDRs or auto, "
                "or set allowOpenSsh: true if you really mean it",
            )
        )
    if have("sshPublicKey", "keyName", "sshPrivateKey"):
        if values["sshPublicKey"] and values["keyName"]:
            problems.append(("keyName", "is set together with sshPublicKey; expected one of them, not both"))
        if (values["sshPublicKey"] or values["keyName"]) and not values["sshPrivateKey"]:
            which = "sshPublicKey" if values["sshPublicKey"] else "keyName"
            problems.append(
                ("sshPrivateKey", f"is missing; {which} needs its private key: `pulumi config set --secret sshPrivateKey < key`")
            )
        if values["sshPrivateKey"] and not (values["sshPublicKey"] or values["keyName"]):
            problems.append(("sshPrivateKey", "is set without sshPublicKey or keyName; expected one of them with it"))
    if have("domain", "domainSuffix") and values["domain"] and values["domainSuffix"]:
        problems.append(("domainSuffix", "is set together with domain; expected one of them: domain names this "
                                         "stack's demo, domainSuffix names it after the stack"))
    if have("hostedZoneId") and values["hostedZoneId"] and not (values.get("domain") or values.get("domainSuffix")):
        problems.append(("hostedZoneId", "is set without domain or domainSuffix; expected one of them with it"))
    if have("subnetId", "vpcId") and values["subnetId"] and not values["vpcId"]:
        problems.append(("vpcId", "is empty while subnetId is set; expected the VPC id of that subnet"))
    return problems


def _unknown_key(key: str, schema: Mapping[str, Setting]) -> str:
    """Why `key` (in this project's namespace) is refused, with the declared name it most likely meant."""
    message = "is not a setting of this project (Pulumi.yaml declares the settings)"
    if key in _ELSEWHERE:
        return (f"{message}; the {key} is {_ELSEWHERE[key]}: `pulumi config rm {PROJECT}:{key}`, then "
                f"`pulumi config set {_ELSEWHERE[key]} VALUE`")
    by_lower = {name.lower(): name for name in schema}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        meant = by_lower[close[0]]
        return f"{message}; did you mean {meant}? `pulumi config rm {key}`, then `pulumi config set {meant} VALUE`"
    return f"{message}; remove it with `pulumi config rm {key}`; the settings are: {', '.join(schema)}"


def _aws_instance_type_problem(name: str, describe: Callable[[str], instancetypes.InstanceSpec | None]) -> str | None:
    """The shared rule over AWS's own data for a type the table does not know."""
    if name in instancetypes.KNOWN_INSTANCE_TYPES:
        return None
    try:
        spec = describe(name)
    except Exception as err:  # noqa: BLE001 - an unknown type, no credentials, no network
        return (f"{name!r}: AWS's instance type data could not be read ({str(err).strip()[:200]}); "
                f"expected {instancetypes.INSTANCE_TYPE_FORM}, or preflight: false to skip the check offline")
    return instancetypes.instance_type_problem(name, spec)


def _provider_problems(provider: Mapping[str, Any], environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """The AWS provider's keys this program depends on: the region, and names close to it."""
    problems = []
    for key in sorted(provider):
        namespace, _, name = key.partition(":")
        if namespace == "aws" and key != AWS_REGION and difflib.SequenceMatcher(None, name.lower(), "region").ratio() >= 0.8:
            problems.append((key, f"is not a setting of the AWS provider; did you mean {AWS_REGION}? "
                                  f"`pulumi config rm {key}`, then `pulumi config set {AWS_REGION} VALUE`"))
    region = provider.get(AWS_REGION)
    if region is None:
        if not _environment_region(provider, environ):
            problems.append((AWS_REGION, "is not set, and neither AWS_REGION, AWS_DEFAULT_REGION nor the AWS profile "
                                         f"names one; expected a region: `pulumi config set {AWS_REGION} us-west-2`"))
    elif not isinstance(region, str) or not _REGION.fullmatch(region):
        zone = _ZONE.fullmatch(region) if isinstance(region, str) else None
        what = f"is an availability zone of {zone.group(1)}" if zone else "is not an AWS region"
        problems.append((AWS_REGION, f"{_show(str(region))} {what}; expected a region such as us-west-2: "
                                     f"`pulumi config set {AWS_REGION} us-west-2`"))
    return problems


def _environment_region(provider: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """The region the AWS provider falls back to without aws:region: the environment, then the profile."""
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(variable):
            return environ[variable]
    profile = provider.get("aws:profile") or environ.get("AWS_PROFILE") or "default"
    path = environ.get("AWS_CONFIG_FILE") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".aws", "config")
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return None
    section = "default" if profile == "default" else f"profile {profile}"
    return parser.get(section, "region", fallback=None)


def all_config() -> dict[str, Any]:
    """Every config key the running program was given (namespace:key), set or defaulted."""
    from pulumi.runtime import config as runtime_config

    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def read_stack_config() -> tuple[dict[str, Any], set[str], dict[str, Any]]:
    """This project's raw values (declared or not), which are secret, and the other namespaces'."""
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = {}
    secret: set[str] = set()
    others: dict[str, Any] = {}
    for full_key in all_config():
        value = runtime_config.get_config(full_key)
        namespace, _, key = full_key.partition(":")
        if value is None:
            continue
        if namespace != PROJECT:
            others[full_key] = value
            continue
        raw[key] = value
        if runtime_config.is_config_secret(full_key):
            secret.add(key)
    return raw, secret, others


def describe_instance_type(name: str) -> instancetypes.InstanceSpec | None:
    """AWS's data on an instance type (an invoke: only with preflight on, like the tag preflight)."""
    import pulumi_aws as aws

    found = aws.ec2.get_instance_type(instance_type=name)
    if found.memory_size is None or found.default_vcpus is None:
        return None
    return instancetypes.InstanceSpec(int(found.default_vcpus), int(found.memory_size),
                              "x86_64" in (found.supported_architectures or []))


def load(stack: str, lookup_public_ip: Callable[[], str]) -> DemoConfig:
    """Read and validate this stack's config; stop the program with one RunError if invalid."""
    import pulumi

    from infra import publicip

    raw, secret, others = read_stack_config()
    try:
        parsed = parse(raw, stack=stack, secret_keys=secret, lookup_public_ip=lookup_public_ip,
                       provider_config=others, environ=os.environ, describe_instance_type=describe_instance_type)
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from None
    if str(raw.get("sshCidrs", AUTO)).strip() == AUTO:
        note = publicip.proxy_note()
        if note:
            pulumi.log.warn(note)
    return parsed
