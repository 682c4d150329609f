"""What one deploy is asked to do: the engine's flags, validated before anything runs.

The Pulumi program builds these flags (infra/commands.py) from a validated stack
config; the engine checks them again with the same rules (engine/rules.py), because
it is also run by hand and by the rehearsal. A bad value stops it before anything
is pulled or stopped, with the flag and the form it expects.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
from dataclasses import MISSING, dataclass, field, fields

from engine import PROJECT_DIR, STATE_DIR, rules

REPO_URL = "https://github.com/SiriusScan/Sirius.git"
REMEMBERED = "deploy-settings.json"  # in the state dir: the last deploy's settings, for `engine reset`
_PATH = re.compile(r"/[A-Za-z0-9._/-]*")
_BIND = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}")


class SettingsError(ValueError):
    """A flag whose value is not of the form the engine expects."""


@dataclass(frozen=True)
class Settings:
    repo_url: str
    ref: str
    git_ref: str
    image_tag: str
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

    def tag_of(self, image: str) -> str:
        return self.image_tags.get(image, self.image_tag)

    def ref_of(self, image: str) -> str:
        return f"{self.registry}/{image}:{self.tag_of(image)}"

    def pull_ref_of(self, image: str) -> str:
        """What to pull: the pinned digest when the preflight saw one, else the tag."""
        digest = self.image_digests.get(image)
        return f"{self.registry}/{image}@{digest}" if digest else self.ref_of(image)


def _check(flag: str, ok: bool, form: str, value: object) -> None:
    if not ok:
        raise SettingsError(f"{flag} {str(value)[:80]!r}: expected {form}")


def _is_path(path: str) -> bool:
    return bool(_PATH.fullmatch(path)) and ".." not in path


def validate(s: Settings) -> Settings:
    problem = rules.ref_problem(s.ref) or rules.release_problem(s.ref)
    _check("--ref", problem is None, f"a Sirius ref ({problem})", s.ref)
    _check("--git-ref", rules.ref_problem(s.git_ref) is None, rules.REF_FORM, s.git_ref)
    _check("--tag", bool(rules.IMAGE_TAG_PATTERN.fullmatch(s.image_tag)), "a Docker tag, e.g. v1.1.0", s.image_tag)
    for image, tag in s.image_tags.items():
        ok = rules.IMAGE_NAME_PATTERN.fullmatch(image) and rules.IMAGE_TAG_PATTERN.fullmatch(tag)
        _check("--image-tag", bool(ok), "IMAGE=TAG, e.g. sirius-ui=pr-7-amd64", f"{image}={tag}")
    for image, digest in s.image_digests.items():
        ok = rules.IMAGE_NAME_PATTERN.fullmatch(image) and rules.is_digest(digest)
        _check("--image-digest", bool(ok), rules.DIGEST_FORM, f"{image}={digest}")
    _check("--commit", s.commit == "" or rules.is_commit(s.commit), rules.COMMIT_FORM, s.commit)
    _check("--registry", bool(rules.REGISTRY_PATTERN.fullmatch(s.registry)), "host/namespace, e.g. ghcr.io/siriusscan", s.registry)
    _check("--public-host", rules.is_public_host(s.public_host), "a host name or IP address", s.public_host)
    _check("--bind-address", s.bind_address == "" or bool(_BIND.fullmatch(s.bind_address)), "an IPv4 address", s.bind_address)
    _check("--repo", rules.is_repo_url(s.repo_url), "an https:// or file:/// URL", s.repo_url)
    for flag, path in (("--dir", s.project_dir), ("--state-dir", s.state_dir)):
        _check(flag, _is_path(path), "an absolute path", path)
    for flag, number, low in (("--health-timeout", s.health_timeout, 1), ("--build-timeout", s.build_timeout, 1),
                              ("--pull-attempts", s.pull_attempts, 1), ("--min-free-gb", s.min_free_gb, 0)):
        _check(flag, low <= number <= 10**8, f"a whole number from {low} to 10^8", number)
    _check("--pull-delay", 0 <= s.pull_delay <= 600, "seconds from 0 to 600", s.pull_delay)
    _check("--domain", s.domain == "" or rules.is_domain(s.domain), rules.DOMAIN_FORM, s.domain)
    _check("--acme-email", s.acme_email == "" or rules.is_email(s.acme_email), rules.EMAIL_FORM, s.acme_email)
    _check("--acme-ca", rules.acme_directory(s.acme_ca) is not None, rules.ACME_CA_FORM, s.acme_ca)
    _check("--acme-ca-root", s.acme_ca_root == "" or _is_path(s.acme_ca_root), "an absolute path", s.acme_ca_root)
    _check("--proxy-image", rules.is_image_ref(s.proxy_image), rules.PROXY_IMAGE_FORM, s.proxy_image)
    for flag, port in (("--proxy-http-port", s.proxy_http_port), ("--proxy-https-port", s.proxy_https_port)):
        _check(flag, 1 <= port <= 65535, "a TCP port from 1 to 65535", port)
    _check("--proxy-https-port", s.proxy_https_port != s.proxy_http_port, "a port other than --proxy-http-port", s.proxy_https_port)
    _check("--cert-timeout", 1 <= s.cert_timeout <= 3600, "seconds from 1 to 3600", s.cert_timeout)
    try:
        ok = rules.scan_targets(",".join(s.scan_targets)) == s.scan_targets
    except ValueError:
        ok = False
    _check("--scan-targets", ok, rules.SCAN_TARGETS_FORM, ",".join(s.scan_targets))
    _check("--firewall-parent", bool(rules.CHAIN_NAME_PATTERN.fullmatch(s.firewall_parent))
           and s.firewall_parent != rules.FIREWALL_CHAIN, "an iptables chain name, e.g. DOCKER-USER", s.firewall_parent)
    return s


def parser() -> argparse.ArgumentParser:
    """The flags, with the Settings defaults (one copy of each)."""
    d = {f.name: f.default for f in fields(Settings) if f.default is not MISSING}
    p = argparse.ArgumentParser(prog="engine deploy", allow_abbrev=False)
    p.add_argument("--repo", dest="repo_url", default=REPO_URL)
    p.add_argument("--ref", default="main")
    p.add_argument("--git-ref", help="what to fetch (default: --ref)")
    p.add_argument("--tag", dest="image_tag", default="latest")
    p.add_argument("--image-tag", dest="image_tags", action="append", default=[], metavar="IMAGE=TAG")
    p.add_argument("--image-digest", dest="image_digests", action="append", default=[], metavar="IMAGE=DIGEST")
    p.add_argument("--commit", default="", help="the commit of --git-ref to deploy (default: what it points at)")
    for flag, kind in (("--registry", str), ("--public-host", str), ("--bind-address", str),
                       ("--health-timeout", int), ("--build-timeout", int), ("--state-dir", str),
                       ("--pull-attempts", int), ("--pull-delay", float), ("--min-free-gb", int),
                       ("--install-seconds", float)):
        name = flag[2:].replace("-", "_")
        p.add_argument(flag, type=kind, default=d[name])
    p.add_argument("--dir", dest="project_dir", default=d["project_dir"])
    for flag in ("--rollback", "--demo-data", "--firewall"):
        p.add_argument(flag, action=argparse.BooleanOptionalAction, default=d[flag[2:].replace("-", "_")])
    for flag in ("--domain", "--acme-email", "--acme-ca", "--acme-ca-root", "--proxy-image", "--firewall-parent"):
        p.add_argument(flag, default=d[flag[2:].replace("-", "_")])
    for flag in ("--proxy-http-port", "--proxy-https-port", "--cert-timeout"):
        p.add_argument(flag, type=int, default=d[flag[2:].replace("-", "_")])
    p.add_argument("--scan-targets", default="", metavar="CIDR,...")
    return p


def _pairs(items: list[str], flag: str, form: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        image, sep, value = item.partition("=")
        _check(flag, bool(sep), form, item)
        pairs[image] = value
    return pairs


def from_args(argv: list[str]) -> Settings:
    """Parse and validate; argparse exits 2 on unknown flags, SettingsError on bad values."""
    a = parser().parse_args(argv)
    try:
        targets = rules.scan_targets(a.scan_targets)
    except ValueError as err:
        raise SettingsError(f"--scan-targets: {err}") from None
    pairs = _pairs(a.image_tags, "--image-tag", "IMAGE=TAG, e.g. sirius-ui=pr-7-amd64")
    digests = _pairs(a.image_digests, "--image-digest", rules.DIGEST_FORM)
    return validate(Settings(
        repo_url=a.repo_url, ref=a.ref, git_ref=a.git_ref or a.ref, image_tag=a.image_tag, image_tags=pairs,
        image_digests=digests, commit=a.commit,
        registry=a.registry, public_host=a.public_host, bind_address=a.bind_address,
        health_timeout=a.health_timeout, build_timeout=a.build_timeout, project_dir=a.project_dir,
        state_dir=a.state_dir, pull_attempts=a.pull_attempts, pull_delay=a.pull_delay,
        min_free_gb=a.min_free_gb, install_seconds=a.install_seconds, rollback=a.rollback,
        demo_data=a.demo_data, domain=a.domain, acme_email=a.acme_email, acme_ca=a.acme_ca,
        acme_ca_root=a.acme_ca_root, proxy_image=a.proxy_image, proxy_http_port=a.proxy_http_port,
        proxy_https_port=a.proxy_https_port, cert_timeout=a.cert_timeout, scan_targets=targets,
        firewall=a.firewall, firewall_parent=a.firewall_parent,
    ))


def remember(s: Settings) -> None:
    """Keep the settings a deploy was asked for (no secret among them), replaced whole."""
    path = os.path.join(s.state_dir, REMEMBERED)
    with open(path + ".tmp", "w") as f:
        json.dump({**dataclasses.asdict(s), "install_seconds": 0.0}, f, sort_keys=True)
    os.replace(path + ".tmp", path)


def remembered(state_dir: str, **overrides) -> Settings:
    """The last deploy's settings (with `overrides`), validated again: what a reset deploys."""
    path = os.path.join(state_dir, REMEMBERED)
    try:
        saved = json.load(open(path))
    except FileNotFoundError:
        raise SettingsError(f"no deploy has run with state dir {state_dir} ({path} is missing); "
                            "deploy first (pulumi up), then reset") from None
    except ValueError as err:
        raise SettingsError(f"{path} is not readable JSON ({err}); deploy again to rewrite it") from None
    known = {f.name for f in fields(Settings)}
    if not isinstance(saved, dict) or not {f.name for f in fields(Settings) if f.default is MISSING} <= set(saved):
        raise SettingsError(f"{path} does not hold a deploy's settings; deploy again to rewrite it")
    # Keys of another engine version are dropped: the next deploy writes this one's.
    # JSON keeps tuples (scan_targets) as lists.
    values = {**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in known}, **overrides}
    try:
        return validate(Settings(**values))
    except (TypeError, ValueError) as err:
        if isinstance(err, SettingsError):
            raise
        raise SettingsError(f"{path} holds a value of the wrong kind ({err}); deploy again to rewrite it") from None
