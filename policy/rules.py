"""The guardrails of the sirius-demo policy pack, as plain functions.

Every rule takes ``(resource_type, props, config)`` and returns a list of violation
messages (empty: compliant). ``props`` are a resource's inputs as plain data (dicts,
lists, strings, numbers); ``config`` is the policy's configuration (missing keys take
the defaults in ``DEFAULTS``). No Pulumi import is needed to call them: the pack in
``__main__.py`` wires them into ``pulumi_policy`` policies, and the tests call them
directly on crafted props and on what the program registers under the SDK mocks.

Values unknown during ``pulumi preview`` (the engine's sentinel strings, or
``pulumi.output.Unknown`` under the mocks) are skipped, never guessed at: a rule
never fails on what it cannot see, and ``pulumi up`` checks the same resource again
with the real values before it is created. Messages never quote a secret they found.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import ipaddress
import re
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The one copy of the instance-type rule, shared with the program's config check. The pack
# lives in this repository; __main__.py puts the repository root on the path for it.
from engine import instancetypes

INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
VOLUME = "aws:ebs/volume:Volume"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
EIP = "aws:ec2/eip:Eip"
EIP_ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"

#: AWS resources that take tags, whether or not a program set any.
TAGGABLE_TYPES = frozenset({
    INSTANCE,
    EIP,
    SECURITY_GROUP,
    "aws:ec2/keyPair:KeyPair",
    INGRESS_RULE,
    EGRESS_RULE,
    VOLUME,
    LAUNCH_TEMPLATE,
    "aws:ec2/networkInterface:NetworkInterface",
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/spotInstanceRequest:SpotInstanceRequest",
    "aws:ebs/snapshot:Snapshot",
})

DEFAULTS: dict[str, Any] = {
    "allowedInstanceTypes": ["t3.medium", "t3.large"],
    # HTTP and HTTPS (the host's proxy, with a domain), else the UI and the API: policy config
    # defaults are literal JSON schema data, so tests/test_policy.py checks them against engine.rules.
    "publicPorts": [80, 443, 3000, 9001],
    "requiredTags": ["Project", "Stack"],
    "maxVolumeGib": 30,
}

SSH_PORT = 22

# The engine's markers for values not known yet (pulumi/sdk/go/common/resource/plugin/rpc.go).
UNKNOWN_SENTINELS = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # bool
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
})
_SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


def is_unknown(value: Any) -> bool:
    if isinstance(value, str):
        return value in UNKNOWN_SENTINELS
    return type(value).__name__ == "Unknown" and type(value).__module__.startswith("pulumi")


def plain(value: Any) -> Any:
    """Plain data from props: unwraps secret markers ({sig: secret, value: v}), pulumi_policy's
    Secret and its unknown-checking proxies (whose item access raises on an unknown value),
    keeping unknown markers as they are for the rules to skip."""
    kind = type(value).__name__
    if kind in ("_DictProxy", "_ListProxy", "_DictSecretsProxy", "_ListSecretsProxy"):
        try:
            value = value["__target"]
        except (KeyError, IndexError, TypeError):
            pass
    elif kind == "Secret" and hasattr(value, "value"):
        return plain(value.value)
    if isinstance(value, Mapping):
        if value.get(_SECRET_SIG[0]) == _SECRET_SIG[1]:
            return plain(value.get("value"))
        return {k: plain(value[k]) for k in value}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def settings(config: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = dict(DEFAULTS)
    merged.update({k: v for k, v in (config or {}).items() if v is not None})
    return merged


def _get(props: Mapping[str, Any] | None, *path: Any) -> Any:
    """props[path...], None when missing or not a container; may return an unknown marker."""
    value: Any = props
    for key in path:
        if is_unknown(value):
            return value
        if isinstance(key, int):
            if not isinstance(value, list) or key >= len(value):
                return None
            value = value[key]
        else:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
    return value


def _list(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    return []


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or is_unknown(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --- IMDSv2 -------------------------------------------------------------------


def imdsv2_required(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """Instances and launch templates require IMDSv2 session tokens (or have IMDS off)."""
    if resource_type not in (INSTANCE, LAUNCH_TEMPLATE):
        return []
    options = _get(props, "metadataOptions")
    if is_unknown(options):
        return []
    endpoint = _get(options, "httpEndpoint")
    tokens = _get(options, "httpTokens")
    if is_unknown(endpoint) or is_unknown(tokens):
        return []
    if endpoint == "disabled":
        return []  # no metadata service at all
    if tokens == "required":
        return []
    shown = "not set (AWS defaults to optional)" if tokens is None else repr(tokens)
    return [f"metadataOptions.httpTokens is {shown}; IMDSv2 must be required: set httpTokens to \"required\""]


# --- encryption at rest ---------------------------------------------------------


def volumes_encrypted(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """Root and attached EBS volumes are encrypted."""
    problems: list[str] = []

    def check(where: str, encrypted: Any) -> None:
        if is_unknown(encrypted) or _truthy(encrypted):
            return
        state = "not set" if encrypted is None else repr(encrypted)
        problems.append(f"{where}.encrypted is {state}; EBS volumes must be encrypted")

    if resource_type == INSTANCE:
        root = _get(props, "rootBlockDevice")
        if not is_unknown(root):
            check("rootBlockDevice", _get(root, "encrypted"))
        devices = _get(props, "ebsBlockDevices")
        if not is_unknown(devices):
            for index, device in enumerate(_list(devices)):
                if is_unknown(device):
                    continue
                name = _get(device, "deviceName")
                label = f"ebsBlockDevices[{index}]" + (f" ({name})" if isinstance(name, str) else "")
                check(label, _get(device, "encrypted"))
    elif resource_type == VOLUME:
        check("volume", _get(props, "encrypted"))
    elif resource_type == LAUNCH_TEMPLATE:
        mappings = _get(props, "blockDeviceMappings")
        if not is_unknown(mappings):
            for index, mapping in enumerate(_list(mappings)):
                ebs = _get(mapping, "ebs")
                if ebs is None or is_unknown(ebs):
                    continue
                check(f"blockDeviceMappings[{index}].ebs", _get(ebs, "encrypted"))
    return problems


# --- ingress ----------------------------------------------------------------------

_PROTOCOLS = {"6": "tcp", "tcp": "tcp", "17": "udp", "udp": "udp", "-1": "all", "all": "all",
              "1": "icmp", "icmp": "icmp", "58": "icmpv6", "icmpv6": "icmpv6"}


def _is_world(cidr: Any) -> bool:
    if not isinstance(cidr, str) or is_unknown(cidr):
        return False
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def _port_problem(protocol: Any, from_port: Any, to_port: Any, public_ports: Iterable[int]) -> str | None:
    """What is wrong with opening (protocol, ports) to the internet, or None."""
    if is_unknown(protocol) or is_unknown(from_port) or is_unknown(to_port):
        return None
    proto = _PROTOCOLS.get(str(protocol).lower().removesuffix(".0"), str(protocol))
    allowed = sorted({int(p) for p in public_ports})
    allowed_text = ", ".join(str(p) for p in allowed) or "none"
    if proto == "all":
        return f"all protocols and ports are open, SSH (22) included; only ports {allowed_text} may be public"
    if proto not in ("tcp", "udp"):
        return f"protocol {proto} is open; only ports {allowed_text} may be public"
    low, high = _number(from_port), _number(to_port)
    if low is None and high is None:
        low, high = 0, 65535
    elif low is None or high is None:
        low = high = low if low is not None else high
    low, high = int(low), int(high)
    if low > high:
        low, high = high, low
    ports = f"{proto} {low}" if low == high else f"{proto} {low}-{high}"
    if low <= SSH_PORT <= high:
        return f"{ports} includes SSH (22), which must never be open to the internet"
    if high - low + 1 > len(allowed) or any(port not in allowed for port in range(low, high + 1)):
        return f"{ports} is open; only ports {allowed_text} may be public"
    return None


def _entries(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Any, Any, Any, list[Any]]]:
    """(label, protocol, fromPort, toPort, cidrs) of each ingress this resource declares."""
    if resource_type == INGRESS_RULE:
        cidrs = [_get(props, "cidrIpv4"), _get(props, "cidrIpv6")]
        return [("ingress", _get(props, "ipProtocol"), _get(props, "fromPort"), _get(props, "toPort"), cidrs)]
    if resource_type == SECURITY_GROUP_RULE:
        kind = _get(props, "type")
        if kind != "ingress":
            return []
        return [("ingress", _get(props, "protocol"), _get(props, "fromPort"), _get(props, "toPort"),
                 _list(_get(props, "cidrBlocks")) + _list(_get(props, "ipv6CidrBlocks")))]
    if resource_type == SECURITY_GROUP:
        rules = _get(props, "ingress")
        if is_unknown(rules):
            return []
        return [
            (f"ingress[{index}]", _get(rule, "protocol"), _get(rule, "fromPort"), _get(rule, "toPort"),
             _list(_get(rule, "cidrBlocks")) + _list(_get(rule, "ipv6CidrBlocks")))
            for index, rule in enumerate(_list(rules))
            if not is_unknown(rule)
        ]
    return []


def no_open_ingress(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """From 0.0.0.0/0 or ::/0 only the public ports are reachable: HTTP and HTTPS (80, 443) and
    the UI (3000) and the API (9001); SSH never."""
    public_ports = settings(config)["publicPorts"]
    problems: list[str] = []
    for label, protocol, from_port, to_port, cidrs in _entries(resource_type, props):
        for cidr in cidrs:
            if not _is_world(cidr):
                continue
            problem = _port_problem(protocol, from_port, to_port, public_ports)
            if problem:
                problems.append(f"{label} from {cidr}: {problem}")
    return problems


# --- instance types ---------------------------------------------------------------


def allowed_instance_type(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """Instance types come from an allowed list (policy config allowedInstanceTypes)."""
    if resource_type not in (INSTANCE, LAUNCH_TEMPLATE):
        return []
    instance_type = _get(props, "instanceType")
    if instance_type is None or is_unknown(instance_type):
        return []  # a launch template may leave it to the instance
    allowed = list(settings(config)["allowedInstanceTypes"])
    if instance_type in allowed:
        return []
    return [f"instance type {instance_type!r} is not allowed; allowed: {', '.join(allowed)}"]


def instance_type_runs_sirius(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """Instance types are amd64 with at least 2 vCPU and 4 GiB (engine.instancetypes.instance_type_problem,
    the rule the program's config applies to instanceType)."""
    if resource_type not in (INSTANCE, LAUNCH_TEMPLATE):
        return []
    instance_type = _get(props, "instanceType")
    if instance_type is None or is_unknown(instance_type):
        return []
    problem = instancetypes.instance_type_problem(instance_type)
    return [f"instanceType: {problem}"] if problem else []


# --- secrets in user data ---------------------------------------------------------

_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a private key block", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")),
    ("an AWS access key id", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")),
    ("an AWS secret access key", re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*[\"']?[A-Za-z0-9/+=]{40}")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})")),
)
_PASSWORD = re.compile(r"(?i)[A-Za-z0-9_.-]*(?:password|passwd)=([\"']?)([^\s;&|]*)")
_URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@")
# Any length: the last line of a wrapped block is often short ("...AAAA==").
_BASE64_LINE = re.compile(r"[A-Za-z0-9+/]{2,}={0,2}")
_MAX_DECODED = 4 * 1024 * 1024


def _literal(value: str) -> bool:
    """A value written out, rather than a $-reference or nothing."""
    value = value.strip("\"'")
    return bool(value) and not value.startswith("$")


def secret_findings(text: str) -> list[str]:
    """What looks like a secret in `text`, as 'what (line N)'; never the value itself."""
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in _SECRET_PATTERNS:
            if pattern.search(line):
                found.append(f"{what} (line {number})")
        for match in _PASSWORD.finditer(line):
            if _literal(match.group(1) + match.group(2)):
                found.append(f"a literal password assignment (line {number})")
                break
        for match in _URL_CREDENTIALS.finditer(line):
            if _literal(match.group(1)):
                found.append(f"a password in a URL (line {number})")
                break
    return found


def _inflate(data: bytes) -> bytes | None:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            out = gz.read(_MAX_DECODED + 1)
    except (OSError, EOFError):
        return None
    return out if len(out) <= _MAX_DECODED else None


def _texts(data: bytes, where: str, depth: int = 0) -> list[tuple[str, str]]:
    """(where, text) of data, of a gzip/tar/zip inside it, and of base64 blocks embedded in it."""
    inflated = _inflate(data)
    if inflated is None:
        return []
    members: list[tuple[str, bytes]] = []
    if inflated[:4] == b"PK\x03\x04":  # a zip (the engine's zipapp)
        try:
            with zipfile.ZipFile(io.BytesIO(inflated)) as archive:
                members = [(f"{where}, archive member {info.filename}", archive.read(info))
                           for info in archive.infolist() if info.file_size <= _MAX_DECODED]
        except (zipfile.BadZipFile, OSError, EOFError):
            members = []
    elif len(inflated) >= 512:
        try:
            with tarfile.open(fileobj=io.BytesIO(inflated), mode="r:") as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.size <= _MAX_DECODED:
                        handle = tar.extractfile(member)
                        if handle is not None:
                            members.append((f"{where}, archive member {member.name}", handle.read()))
        except (tarfile.TarError, OSError, EOFError):
            members = []
    if members:
        out: list[tuple[str, str]] = []
        for name, content in members:
            out += _texts(content, name, depth + 1)
        return out
    text = inflated.decode("utf-8", "replace")
    out = [(where, text)]
    if depth < 3:
        for block in _base64_blocks(text):
            try:
                decoded = base64.b64decode(block, validate=True)
            except (binascii.Error, ValueError):
                continue
            if decoded[:2] == b"\x1f\x8b" or decoded[:4] == b"PK\x03\x04" or _printable(decoded):
                out += _texts(decoded, f"{where}, embedded base64", depth + 1)
    return out


def _printable(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\n\r\t" for c in text)


def _base64_blocks(text: str) -> list[str]:
    """Runs of consecutive base64-looking lines (a heredoc'd archive, a key...)."""
    blocks, current = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if _BASE64_LINE.fullmatch(stripped):
            current.append(stripped)
        else:
            if current:
                blocks.append("".join(current))
            current = []
    if current:
        blocks.append("".join(current))
    return [b for b in blocks if len(b) >= 64 and len(b) % 4 == 0]


def user_data_findings(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, text) pairs of every user data text this resource carries, decoded."""
    texts: list[tuple[str, str]] = []
    if resource_type in (INSTANCE, "aws:ec2/spotInstanceRequest:SpotInstanceRequest"):
        user_data = _get(props, "userData")
        if isinstance(user_data, str) and not is_unknown(user_data):
            texts += _texts(user_data.encode(), "userData")
        encoded = _get(props, "userDataBase64")
    elif resource_type == LAUNCH_TEMPLATE:
        encoded = _get(props, "userData")  # base64 in launch templates
    else:
        return []
    if isinstance(encoded, str) and not is_unknown(encoded):
        try:
            decoded = base64.b64decode(encoded, validate=False)
        except (binascii.Error, ValueError):
            decoded = None
        if decoded is not None:
            label = "userData (base64)" if resource_type == LAUNCH_TEMPLATE else "userDataBase64"
            texts += _texts(decoded, label)
    return texts


def no_secrets_in_user_data(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """User data (readable by anyone with ec2:DescribeInstanceAttribute, and from the
    instance) holds no private key, access key or literal password."""
    problems = []
    for where, text in user_data_findings(resource_type, props):
        for finding in secret_findings(text):
            problems.append(f"{where} contains {finding}; generate secrets on the host or pass them as Pulumi secrets")
    return problems


# --- tags ---------------------------------------------------------------------------


def required_tags(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """Every taggable resource carries the Project and Stack tags (policy config requiredTags)."""
    if not isinstance(props, Mapping):
        return []
    if resource_type not in TAGGABLE_TYPES and "tags" not in props:
        return []
    tags = props.get("tags")
    if is_unknown(tags):
        return []
    tags = tags if isinstance(tags, Mapping) else {}
    missing = []
    for key in settings(config)["requiredTags"]:
        value = tags.get(key)
        if is_unknown(value):
            continue
        if not isinstance(value, str) or not value.strip():
            missing.append(key)
    if not missing:
        return []
    return [f"missing tag{'s' if len(missing) > 1 else ''} {', '.join(missing)}; every taggable resource needs "
            + ", ".join(settings(config)["requiredTags"])]


# --- advisories ---------------------------------------------------------------------


def volume_size(resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[str]:
    """Advisory: volumes over maxVolumeGib (30) cost more than the demo needs."""
    limit = _number(settings(config)["maxVolumeGib"]) or 30
    sizes: list[tuple[str, Any]] = []
    if resource_type == INSTANCE:
        sizes.append(("rootBlockDevice.volumeSize", _get(props, "rootBlockDevice", "volumeSize")))
        for index, device in enumerate(_list(_get(props, "ebsBlockDevices"))):
            sizes.append((f"ebsBlockDevices[{index}].volumeSize", _get(device, "volumeSize")))
    elif resource_type == VOLUME:
        sizes.append(("size", _get(props, "size")))
    elif resource_type == LAUNCH_TEMPLATE:
        for index, mapping in enumerate(_list(_get(props, "blockDeviceMappings"))):
            sizes.append((f"blockDeviceMappings[{index}].ebs.volumeSize", _get(mapping, "ebs", "volumeSize")))
    problems = []
    for where, size in sizes:
        number = _number(size)
        if number is not None and number > limit:
            problems.append(f"{where} is {number:g} GiB, over the {limit:g} GiB the demo needs")
    return problems


@dataclass(frozen=True)
class StackResource:
    type: str
    urn: str
    props: Mapping[str, Any]


def public_ip_has_elastic_ip(resources: Sequence[StackResource], config: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """Advisory (stack): an instance with associatePublicIpAddress gets a new address at
    every stop/start unless the stack gives it an Elastic IP. Returns (message, urn)."""
    has_eip = any(
        r.type == EIP_ASSOCIATION
        or (r.type == EIP and any(_get(r.props, key) not in (None, "") for key in ("instance", "networkInterface")))
        for r in resources
    )
    if has_eip:
        return []
    return [
        (("associatePublicIpAddress is true but the stack has no Elastic IP for it "
          "(aws:ec2/eipAssociation:EipAssociation); its address changes on every stop/start"), r.urn)
        for r in resources
        if r.type == INSTANCE and _truthy(_get(r.props, "associatePublicIpAddress"))
    ]


# --- the pack, as data --------------------------------------------------------------

ResourceRule = Callable[[str, Mapping[str, Any], Mapping[str, Any] | None], list[str]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: ResourceRule
    mandatory: bool = True
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # JSON schema properties


RESOURCE_RULES: tuple[Rule, ...] = (
    Rule("imdsv2-required", "EC2 instances and launch templates must require IMDSv2 (httpTokens: required).",
         imdsv2_required),
    Rule("ebs-encrypted", "Root and attached EBS volumes must be encrypted.", volumes_encrypted),
    Rule("no-public-ingress-except-ui-api",
         "Ingress from 0.0.0.0/0 or ::/0 is allowed only to the public ports (80, 443, 3000, 9001), never to SSH (22).",
         no_open_ingress,
         config={"publicPorts": {"type": "array", "items": {"type": "integer"},
                                 "default": DEFAULTS["publicPorts"]}}),
    Rule("allowed-instance-types", "EC2 instance types must come from the allowed list.", allowed_instance_type,
         config={"allowedInstanceTypes": {"type": "array", "items": {"type": "string"},
                                          "default": DEFAULTS["allowedInstanceTypes"]}}),
    Rule("instance-type-runs-sirius",
         "EC2 instance types must be amd64 with at least 2 vCPU and 4 GiB of memory (what Sirius needs).",
         instance_type_runs_sirius),
    Rule("no-secrets-in-user-data",
         "User data must not contain a private key, an AWS access key or a literal password.",
         no_secrets_in_user_data),
    Rule("required-tags", "Every taggable resource must carry the Project and Stack tags.", required_tags,
         config={"requiredTags": {"type": "array", "items": {"type": "string"},
                                  "default": DEFAULTS["requiredTags"]}}),
    Rule("volume-size", "Volumes over 30 GiB cost more than the demo needs.", volume_size, mandatory=False,
         config={"maxVolumeGib": {"type": "integer", "default": DEFAULTS["maxVolumeGib"]}}),
)

STACK_RULE_NAME = "public-ip-has-elastic-ip"
STACK_RULE_DESCRIPTION = "An instance with a public IP should keep it with an Elastic IP."


def check_all(resource_type: str, props: Mapping[str, Any],
              config: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, list[str]]:
    """Every resource rule over one resource: {rule name: messages} for rules that found something.
    `config` is per rule name, like the pack's policy config."""
    found = {}
    for rule in RESOURCE_RULES:
        messages = rule.check(resource_type, plain(props), (config or {}).get(rule.name))
        if messages:
            found[rule.name] = messages
    return found
