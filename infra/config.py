"""Stack configuration: the schema from Pulumi.yaml, value rules, one error for all.

The schema (keys, types, defaults, descriptions) is declared once, in Pulumi.yaml;
this module adds the rules a type cannot express and turns raw stack config into a
frozen `DemoConfig`. Every problem is collected, so a user fixes them in one go, and
the program stops with one `pulumi.RunError` before any resource is registered.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ci import stacks
from engine import rules

PROJECT = "sirius-demo"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "Pulumi.yaml"
AUTO = "auto"
OPEN_WORLD = frozenset({"0.0.0.0/0", "::/0"})
MIN_VOLUME_GIB = 20
MAX_VOLUME_GIB = 16384
MIN_HEALTH_TIMEOUT = 60
MAX_HEALTH_TIMEOUT = 3600
MIN_BUILD_TIMEOUT = 300
MAX_BUILD_TIMEOUT = 4 * 3600

_INSTANCE_TYPE = re.compile(r"([a-z]+)(\d+)([a-z-]*)\.([a-z0-9]+)")
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
        lines = [f"  {PROJECT}:{key}: {message}" for key, message in problems]
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
    health_timeout: int
    build_timeout: int = 3600
    expires_at: str | None = None
    image_registry: str = "ghcr.io/siriusscan"
    preflight: bool = True
    allow_build_fallback: bool = False
    rollback: bool = True
    demo_data: bool = True
    domain: str = ""  # "" = no DNS record, no HTTPS: plain HTTP on the raw ports
    hosted_zone_id: str | None = None  # None = looked up from the domain's parent
    acme_email: str = ""
    acme_ca: str = "production"
    scan_targets: tuple[str, ...] = ()  # CIDRs sirius-engine may reach beyond its own stack
    # Kept out of repr so a stray print or log of the config never shows it.
    ssh_private_key: str | None = field(default=None, repr=False)

    @property
    def generates_key(self) -> bool:
        return self.ssh_private_key is None

    @property
    def https(self) -> bool:
        return bool(self.domain)


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
    problem = rules.release_problem(ref)
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
    name = _string(value)
    match = _INSTANCE_TYPE.fullmatch(name)
    if not match:
        raise ValueError(f"{_show(name)} is not an EC2 instance type; expected family.size, e.g. t3.medium")
    if "g" in match.group(3):
        # Graviton families (t4g, m7g, c6gn...) are arm64; the AMI and images are amd64.
        raise ValueError(f"{_show(name)} is an arm64 (Graviton) type; expected an amd64 type, e.g. t3.medium")
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


def _checked(is_valid: Callable[[str], bool], form: str, *, empty_ok: bool = True,
             normalise: Callable[[str], str] = str.strip) -> Callable[[Any], str]:
    """A string setting checked with one of engine.rules' predicates ("" allowed when `empty_ok`)."""
    def parse(value: Any) -> str:
        text = normalise(_string(value))
        if (text or not empty_ok) and not is_valid(text):
            raise ValueError(f"{_show(text)} is not valid; expected {form}")
        return text

    return parse


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
    "rollback": _boolean,
    "demoData": _boolean,
    "expiresAt": _optional(stacks.UTC_TIME_PATTERN, "a UTC time like 2026-12-01T02:00:00Z"),
    "domain": _dns_name,
    "domainSuffix": _dns_name,
    "hostedZoneId": _optional(_HOSTED_ZONE_ID, "a Route 53 hosted zone id, e.g. Z0123456789ABCDEFGHIJ"),
    "acmeEmail": _checked(rules.is_email, rules.EMAIL_FORM),
    "acmeCa": _checked(lambda ca: rules.acme_directory(ca) is not None, rules.ACME_CA_FORM, empty_ok=False),
    "scanTargets": lambda v: rules.scan_targets(_string(v)),
}
SECRET_KEYS = frozenset({"sshPrivateKey"})


def parse(
    raw: Mapping[str, Any],
    *,
    stack: str,
    secret_keys: frozenset[str] | set[str] = frozenset(),
    lookup_public_ip: Callable[[], str] | None = None,
    schema: Mapping[str, Setting] | None = None,
) -> DemoConfig:
    """Validate raw stack config (unset keys missing or None) into a DemoConfig.

    `lookup_public_ip` resolves `sshCidrs: auto`; it runs only when every other
    value is valid, and its failure is reported against sshCidrs.
    """
    schema = schema if schema is not None else load_schema()
    problems: list[tuple[str, str]] = []
    unknown = sorted(set(raw) - set(schema))
    problems += [(key, f"is not a setting of this project; known settings: {', '.join(schema)}") for key in unknown]
    values: dict[str, Any] = {}
    for key, setting in schema.items():
        value = raw.get(key)
        if value is None:
            value = setting.default
        try:
            values[key] = _RULES[key](value)
        except ValueError as err:
            problems.append((key, str(err)))

    for key in SECRET_KEYS:
        if raw.get(key) and key not in secret_keys:
            problems.append((key, "is stored in plain text; expected a secret: `pulumi config set --secret " + key + " ...`"))

    if not problems:
        problems += _cross_checks(values)
    if not problems:
        values["domain"], problem = _stack_domain(values, stack)
        problems += problem
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
        health_timeout=values["healthTimeout"],
        build_timeout=values["buildTimeout"],
        expires_at=values["expiresAt"],
        image_registry=values["imageRegistry"],
        preflight=values["preflight"],
        allow_build_fallback=values["allowBuildFallback"],
        rollback=values["rollback"],
        demo_data=values["demoData"],
        domain=values["domain"],
        hosted_zone_id=values["hostedZoneId"],
        acme_email=values["acmeEmail"],
        acme_ca=values["acmeCa"],
        scan_targets=values["scanTargets"],
    )


def _stack_domain(values: Mapping[str, Any], stack: str) -> tuple[str, list[tuple[str, str]]]:
    """The demo's DNS name: `domain`, else `<stack as a DNS label>.<domainSuffix>`, else ""."""
    if not values["domainSuffix"]:
        return values["domain"], []
    name = f"{stacks.dns_label(stack)}.{values['domainSuffix']}"
    if not rules.is_domain(name):
        return "", [("domainSuffix", f"gives {_show(name)} for stack {stack!r}, which is not a valid DNS name "
                                     "(at most 253 characters); expected a shorter suffix")]
    return name, []


def _cross_checks(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    open_ssh = OPEN_WORLD.intersection(values["sshCidrs"])
    if open_ssh and not values["allowOpenSsh"]:
        problems.append(
            (
                "sshCidrs",
                f"opens SSH to the whole internet ({', '.join(sorted(open_ssh))}); expected your own CIDRs or auto, "
                "or set allowOpenSsh: true if you really mean it",
            )
        )
    if values["sshPublicKey"] and values["keyName"]:
        problems.append(("keyName", "is set together with sshPublicKey; expected one of them, not both"))
    if (values["sshPublicKey"] or values["keyName"]) and not values["sshPrivateKey"]:
        which = "sshPublicKey" if values["sshPublicKey"] else "keyName"
        problems.append(
            ("sshPrivateKey", f"is missing; {which} needs its private key: `pulumi config set --secret sshPrivateKey < key`")
        )
    if values["sshPrivateKey"] and not (values["sshPublicKey"] or values["keyName"]):
        problems.append(("sshPrivateKey", "is set without sshPublicKey or keyName; expected one of them with it"))
    if values["domain"] and values["domainSuffix"]:
        problems.append(("domainSuffix", "is set together with domain; expected one of them: domain names this "
                                         "stack's demo, domainSuffix names it after the stack"))
    if values["hostedZoneId"] and not (values["domain"] or values["domainSuffix"]):
        problems.append(("hostedZoneId", "is set without domain or domainSuffix; expected one of them with it"))
    if values["subnetId"] and not values["vpcId"]:
        problems.append(("vpcId", "is empty while subnetId is set; expected the VPC id of that subnet"))
    return problems


def read_stack_config(schema: Mapping[str, Setting] | None = None) -> tuple[dict[str, Any], set[str]]:
    """Raw values of this project's keys from the running Pulumi program, and which are secret."""
    from pulumi.runtime import config as runtime_config

    schema = schema if schema is not None else load_schema()
    raw: dict[str, Any] = {}
    secret: set[str] = set()
    for key in schema:
        full_key = f"{PROJECT}:{key}"
        value = runtime_config.get_config(full_key)
        if value is not None:
            raw[key] = value
            if runtime_config.is_config_secret(full_key):
                secret.add(key)
    return raw, secret


def load(stack: str, lookup_public_ip: Callable[[], str]) -> DemoConfig:
    """Read and validate this stack's config; stop the program with one RunError if invalid."""
    import pulumi

    from infra import publicip

    raw, secret = read_stack_config()
    try:
        parsed = parse(raw, stack=stack, secret_keys=secret, lookup_public_ip=lookup_public_ip)
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from None
    if str(raw.get("sshCidrs", AUTO)).strip() == AUTO:
        note = publicip.proxy_note()
        if note:
            pulumi.log.warn(note)
    return parsed
