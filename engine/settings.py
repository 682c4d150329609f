"""What one deploy is asked to do: the engine's flags, each declared once, validated before anything runs.

`OPTIONS` declares every setting once: its Settings field, flag, kind, check, the form it
expects, help, and the Pulumi.yaml key when the stack config sets it. The parser, `validate`,
`to_args` (the command line the Pulumi program and the rehearsal send) and the docs table
(tools/settings_table.py) are made from it; the defaults are the Settings defaults. The engine
checks the flags itself because it is also run by hand and by the rehearsal: a bad value stops
it before anything is pulled or stopped, with the flag and the form it expects.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from engine import PROJECT_DIR, STATE_DIR, rules

REPO_URL = "https://github.com/SiriusScan/Sirius.git"
REMEMBERED = "deploy-settings.json"  # in the state dir: the last healthy deploy's settings, for `engine reset`
_PATH = re.compile(r"/[A-Za-z0-9._/-]*")
_BIND = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}")
MAX_NUMBER = 10**8


class SettingsError(ValueError):
    """A flag whose value is not of the form the engine expects."""


@dataclass(frozen=True)
class Settings:
    """Valid once made: every value is checked against OPTIONS when the object is built."""

    repo_url: str = REPO_URL
    ref: str = "main"
    git_ref: str = ""  # what to fetch; "" = the ref
    image_tag: str = "latest"
    image_tags: dict[str, str] = field(default_factory=dict)  # per image, e.g. sirius-ui -> pr-7-amd64
    # What the preflight saw (the canary's inputs): run exactly these, whatever the tag or ref says now.
    image_digests: dict[str, str] = field(default_factory=dict)  # per image, e.g. sirius-ui -> sha256:...
    commit: str = ""  # "" = whatever git_ref points at when fetched
    registry: str = rules.DEFAULT_REGISTRY
    public_host: str = "localhost"
    bind_address: str = ""  # where the proxy listens for the UI and API; "" = every address
    health_timeout: int = 600
    build_timeout: int = 3600
    project_dir: str = PROJECT_DIR
    state_dir: str = STATE_DIR
    pull_attempts: int = 6
    pull_delay: float = 5.0
    min_free_gb: int = 8
    install_seconds: float = 0.0
    rollback: bool = True  # put the last healthy deploy back when this one fails
    demo_data: bool = True  # seed demo hosts through the API once per data volume
    domain: str = ""  # "" = no HTTPS proxy; the UI and API on their raw ports
    acme_email: str = ""
    acme_ca: str = "production"
    acme_ca_root: str = ""  # PEM roots of a private CA: its ACME directory and what it issues
    proxy_image: str = rules.PROXY_IMAGE
    proxy_http_port: int = rules.HTTP_PORT
    proxy_https_port: int = rules.HTTPS_PORT
    cert_timeout: int = 120  # seconds for the certificate, after the stack is healthy
    scan_targets: tuple[str, ...] = ()  # CIDRs sirius-engine may reach beyond its own stack
    firewall: bool = True  # the scanner's firewall (engine/firewall.py); off only on test beds without Docker's iptables
    firewall_parent: str = rules.FIREWALL_PARENT  # the chain that jumps to the scanner's rules

    def __post_init__(self) -> None:
        if not self.git_ref:
            object.__setattr__(self, "git_ref", self.ref)
        validate(self)

    def tag_of(self, image: str) -> str:
        return self.image_tags.get(image, self.image_tag)

    def ref_of(self, image: str) -> str:
        return f"{self.registry}/{image}:{self.tag_of(image)}"

    def pull_ref_of(self, image: str) -> str:
        """What to pull: the pinned digest when the preflight saw one, else the tag."""
        digest = self.image_digests.get(image)
        return f"{self.registry}/{image}@{digest}" if digest else self.ref_of(image)


def default_of(name: str) -> Any:
    f = next(f for f in fields(Settings) if f.name == name)
    return f.default_factory() if f.default is MISSING else f.default


@dataclass(frozen=True)
class Option:
    """One setting: its Settings field, flag, kind (str, int, float, bool; dict = IMAGE=VALUE pairs,
    repeated; tuple = comma separated), check (True, or False/a reason), the form it expects, help,
    and the Pulumi.yaml key when stack config sets it."""

    name: str
    flag: str
    kind: type
    check: Callable[[Any], bool | str]  # on one value; on one (image, value) pair for a dict
    form: str
    help: str
    key: str = ""
    parse: Callable[[str], Any] | None = None  # text to value, for a tuple
    always_sent: bool = False  # to_args writes it at its default too
    only_with: str = ""  # a setting without which this one means nothing: to_args leaves it out then

    @property
    def default(self) -> Any:
        return default_of(self.name)

    def problem(self, value: Any) -> str | None:
        """None when `value` (one pair for a dict) passes, else "expected FORM" (and why)."""
        verdict = self.check(value)
        if verdict and not isinstance(verdict, str):
            return None
        return f"expected {self.form}" + (f" ({verdict})" if isinstance(verdict, str) else "")

    def text(self, value: Any) -> str:
        """The value as the flag carries it."""
        if self.kind is tuple:
            return ",".join(value)
        if isinstance(value, tuple):  # a pair
            return "=".join(value)
        if self.kind is float:
            return str(int(value)) if float(value).is_integer() else repr(float(value))
        return str(value)


def _is_path(path: str) -> bool:
    return bool(_PATH.fullmatch(path)) and ".." not in path


def _number(low: int, high: int = MAX_NUMBER) -> Callable[[Any], bool]:
    return lambda n: low <= n <= high


def _or_empty(check: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda v: v == "" or bool(check(v))


def _pair(value_ok: Callable[[str], Any]) -> Callable[[tuple[str, str]], bool]:
    return lambda pair: bool(rules.IMAGE_NAME_PATTERN.fullmatch(pair[0]) and value_ok(pair[1]))


def _scan_targets_ok(targets: tuple[str, ...]) -> bool:
    try:
        return rules.scan_targets(",".join(targets)) == targets
    except ValueError:
        return False


_TAG_OK = rules.IMAGE_TAG_PATTERN.fullmatch
_WHOLE = "a whole number from {} to 10^8"
_PORT = "a TCP port from 1 to 65535"
_ON_OFF = "the flag (on) or its --no- form (off)"
_ANY = lambda _: True  # noqa: E731 - a bool has no wrong value

# In to_args order: the command line the Pulumi program sends is a deploy trigger, so a new
# option goes after those it sends, and one it sends is never moved.
OPTIONS: tuple[Option, ...] = (
    Option("repo_url", "--repo", str, rules.is_repo_url, "an https:// or file:/// URL",
           "git URL of the Sirius compose project", key="repoUrl", always_sent=True),
    Option("ref", "--ref", str, lambda r: rules.ref_problem(r) or rules.release_problem(r) or True, "a Sirius ref",
           "Sirius branch, tag, pr-N or commit: its compose files are deployed", key="ref", always_sent=True),
    Option("git_ref", "--git-ref", str, lambda r: rules.ref_problem(r) is None, rules.REF_FORM.removeprefix("expected "),
           "what git fetches (empty: --ref)", always_sent=True),
    Option("image_tag", "--tag", str, _TAG_OK, "a Docker tag, e.g. v1.1.0", "image tag of every service",
           key="imageTag", always_sent=True),
    Option("registry", "--registry", str, rules.REGISTRY_PATTERN.fullmatch, "host/namespace, e.g. ghcr.io/siriusscan",
           "registry and namespace of the images", key="imageRegistry", always_sent=True),
    Option("public_host", "--public-host", str, rules.is_public_host, "a host name or IP address",
           "the address the UI's links use", always_sent=True),
    Option("health_timeout", "--health-timeout", int, _number(1), _WHOLE.format(1),
           "seconds the deploy may take to become healthy, not counting builds", key="healthTimeout", always_sent=True),
    Option("project_dir", "--dir", str, _is_path, "an absolute path", "where the compose project is checked out",
           always_sent=True),
    Option("state_dir", "--state-dir", str, _is_path, "an absolute path", "where the engine keeps its records",
           always_sent=True),
    Option("image_tags", "--image-tag", dict, _pair(_TAG_OK), "IMAGE=TAG, e.g. sirius-ui=pr-7-amd64",
           "one image's tag instead of --tag (repeated)"),
    Option("image_digests", "--image-digest", dict, _pair(rules.is_digest), rules.DIGEST_FORM,
           "pull this image by digest (repeated): what the preflight saw"),
    Option("commit", "--commit", str, _or_empty(rules.is_commit), rules.COMMIT_FORM,
           "the commit of --git-ref to deploy (empty: what it points at)"),
    Option("bind_address", "--bind-address", str, _or_empty(_BIND.fullmatch), "an IPv4 address",
           "where the UI and API listen (empty: every address)"),
    Option("rollback", "--rollback", bool, _ANY, _ON_OFF, "put the last healthy deploy back when this one fails",
           key="rollback"),
    Option("demo_data", "--demo-data", bool, _ANY, _ON_OFF, "load the demo company's hosts once per data volume",
           key="demoData"),
    Option("scan_targets", "--scan-targets", tuple, _scan_targets_ok, rules.SCAN_TARGETS_FORM,
           "CIDRs the scanner may reach beyond its own stack", key="scanTargets", parse=rules.scan_targets),
    Option("firewall", "--firewall", bool, _ANY, _ON_OFF, "the scanner's firewall (off: test beds without iptables)"),
    Option("firewall_parent", "--firewall-parent", str,
           lambda c: bool(rules.CHAIN_NAME_PATTERN.fullmatch(c)) and c != rules.FIREWALL_CHAIN,
           "an iptables chain name, e.g. DOCKER-USER", "the chain that jumps to the scanner's rules"),
    Option("domain", "--domain", str, _or_empty(rules.is_domain), rules.DOMAIN_FORM,
           "serve HTTPS for this DNS name through the proxy (empty: plain HTTP)", key="domain"),
    Option("acme_ca", "--acme-ca", str, lambda ca: rules.acme_directory(ca) is not None, rules.ACME_CA_FORM,
           "the certificate authority", key="acmeCa", always_sent=True, only_with="domain"),
    Option("acme_email", "--acme-email", str, _or_empty(rules.is_email), rules.EMAIL_FORM,
           "the ACME account's email", key="acmeEmail", only_with="domain"),
    Option("build_timeout", "--build-timeout", int, _number(1), _WHOLE.format(1),
           "seconds local builds may take in all", key="buildTimeout", always_sent=True),
    Option("pull_attempts", "--pull-attempts", int, _number(1), _WHOLE.format(1), "tries per image pull"),
    Option("pull_delay", "--pull-delay", float, _number(0, 600), "seconds from 0 to 600",
           "seconds before the first pull retry, doubling"),
    Option("min_free_gb", "--min-free-gb", int, _number(0), _WHOLE.format(0), "GiB Docker's disk must have free"),
    Option("install_seconds", "--install-seconds", float, _number(0, MAX_NUMBER), "seconds from 0 to 10^8",
           "seconds the OS setup took, for the report"),
    Option("acme_ca_root", "--acme-ca-root", str, _or_empty(_is_path), "an absolute path",
           "PEM roots of a private CA"),
    Option("proxy_image", "--proxy-image", str, rules.is_image_ref, rules.PROXY_IMAGE_FORM, "the HTTPS proxy's image"),
    Option("proxy_http_port", "--proxy-http-port", int, _number(1, 65535), _PORT, "the proxy's HTTP port"),
    Option("proxy_https_port", "--proxy-https-port", int, _number(1, 65535), _PORT, "the proxy's HTTPS port"),
    Option("cert_timeout", "--cert-timeout", int, _number(1, 3600), "seconds from 1 to 3600",
           "seconds for the certificate, after the stack is healthy"),
)
BY_KEY = {option.key: option for option in OPTIONS if option.key}
_REMEMBERED_NEEDS = {"repo_url", "ref", "git_ref", "image_tag", "image_tags", "image_digests"}


def _fail(flag: str, value: object, problem: str) -> None:
    raise SettingsError(f"{flag} {str(value)[:80]!r}: {problem}")


def validate(s: Settings) -> Settings:
    for option in OPTIONS:
        value = getattr(s, option.name)
        for one in value.items() if option.kind is dict else (value,):
            problem = option.problem(one)
            if problem:
                _fail(option.flag, option.text(one), problem)
    if s.proxy_https_port == s.proxy_http_port:
        _fail("--proxy-https-port", s.proxy_https_port, "expected a port other than --proxy-http-port")
    return s


def parser() -> argparse.ArgumentParser:
    """The flags, with the Settings defaults (one copy of each)."""
    p = argparse.ArgumentParser(prog="engine deploy", allow_abbrev=False)
    for option in OPTIONS:
        shown = option.text(option.default) if option.kind not in (dict, bool) else option.default
        help = f"{option.help} (default: {shown if shown not in ('', {}) else 'none'})".replace("%", "%%")
        if option.kind is bool:
            p.add_argument(option.flag, dest=option.name, action=argparse.BooleanOptionalAction,
                           default=option.default, help=help)
        elif option.kind is dict:
            p.add_argument(option.flag, dest=option.name, action="append", default=[],
                           metavar=option.form.split(",")[0], help=help)
        else:
            p.add_argument(option.flag, dest=option.name, type=option.kind if option.kind in (int, float) else str,
                           default=option.text(option.default), help=help)
    return p


def _pairs(option: Option, items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        image, sep, value = item.partition("=")
        if not sep:
            _fail(option.flag, item, f"expected {option.form}")
        pairs[image] = value
    return pairs


def from_args(argv: list[str]) -> Settings:
    """Parse and validate; argparse exits 2 on unknown flags, SettingsError on bad values."""
    parsed = vars(parser().parse_args(argv))
    values = {}
    for option in OPTIONS:
        value = parsed[option.name]
        if option.kind is dict:
            value = _pairs(option, value)
        elif option.kind is tuple:
            try:
                value = option.parse(value)
            except ValueError as err:
                _fail(option.flag, value, str(err))
        values[option.name] = value
    return Settings(**values)


def to_args(s: Settings) -> list[str]:
    """The flags that make `s` again (from_args(to_args(s)) == s, but for settings that mean
    nothing without another): each one not at its default, and those sent always (the deploy's
    identity, and what the Pulumi program has always sent: it is the deploy's trigger)."""
    args = []
    for option in OPTIONS:
        value = getattr(s, option.name)
        if option.only_with and not getattr(s, option.only_with):
            continue
        if value == option.default and not option.always_sent:
            continue
        if option.kind is bool:
            args.append(option.flag if value else f"--no-{option.flag[2:]}")
        elif option.kind is dict:
            for pair in sorted(value.items()):
                args += [option.flag, option.text(pair)]
        else:
            args += [option.flag, option.text(value)]
    return args


def remember(s: Settings) -> None:
    """Keep the settings a deploy was asked for (no secret among them), replaced whole."""
    path = os.path.join(s.state_dir, REMEMBERED)
    with open(path + ".tmp", "w") as f:
        json.dump({**dataclasses.asdict(s), "install_seconds": 0.0}, f, sort_keys=True)
    os.replace(path + ".tmp", path)


def remembered(state_dir: str, **overrides) -> Settings:
    """The last healthy deploy's settings (with `overrides`), validated again: what a reset deploys."""
    path = os.path.join(state_dir, REMEMBERED)
    try:
        saved = json.load(open(path))
    except FileNotFoundError:
        raise SettingsError(f"no deploy has run with state dir {state_dir} ({path} is missing); "
                            "deploy first (pulumi up), then reset") from None
    except ValueError as err:
        raise SettingsError(f"{path} is not readable JSON ({err}); deploy again to rewrite it") from None
    known = {f.name for f in fields(Settings)}
    if not isinstance(saved, dict) or not _REMEMBERED_NEEDS <= set(saved):
        raise SettingsError(f"{path} does not hold a deploy's settings; deploy again to rewrite it")
    # Keys of another engine version are dropped: the next deploy writes this one's.
    # JSON keeps tuples (scan_targets) as lists.
    values = {**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in known}, **overrides}
    try:
        return Settings(**values)  # validated as it is made (__post_init__)
    except (TypeError, ValueError) as err:
        if isinstance(err, SettingsError):
            raise
        raise SettingsError(f"{path} holds a value of the wrong kind ({err}); deploy again to rewrite it") from None
