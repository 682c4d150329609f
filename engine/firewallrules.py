"""The scanner's fence as rules: what sirius-engine may reach, as iptables arguments. Pure
but for reading the host's resolvers and resolving what the engine fetches by itself.

engine/firewall.py says why and in which order; engine/iptables.py puts the rules in place.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from engine import rules

RESOLV_CONF = "/etc/resolv.conf"
# Docker's choice when /etc/resolv.conf names only systemd-resolved's stub (Ubuntu).
RESOLVED_CONF = "/run/systemd/resolve/resolv.conf"
# Docker's fallback when the host names no usable nameserver.
DOCKER_DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")
_BRIDGE = re.compile(r"[A-Za-z0-9_.-]{1,15}")


@dataclass(frozen=True)
class Fence:
    """What the scanner may reach, by address."""

    scanners: tuple[str, ...]  # the engine's addresses (pinned, plus the current one if it differs)
    networks: tuple[tuple[str, str], ...]  # (bridge device, subnet) of the stack's network(s)
    targets: tuple[str, ...] = ()  # scanTargets CIDRs
    resolvers: tuple[str, ...] = ()
    fetches: tuple[tuple[str, int, tuple[str, ...]], ...] = ()  # (host name, port, its addresses)

    def __post_init__(self) -> None:
        # Every value becomes an iptables-restore token: addresses parsed, names checked.
        for address in (*self.scanners, *self.resolvers, *(a for _, _, addrs in self.fetches for a in addrs)):
            ipaddress.IPv4Address(address)
        for bridge, subnet in self.networks:
            if not _BRIDGE.fullmatch(bridge):
                raise ValueError(f"bridge device name {bridge!r}")
            ipaddress.IPv4Network(subnet)
        for cidr in self.targets:
            ipaddress.IPv4Network(cidr)
        for _, port, _ in self.fetches:
            if not 1 <= int(port) <= 65535:
                raise ValueError(f"port {port!r}")


def pinned(targets: tuple[str, ...], resolvers: tuple[str, ...],
           fetches: tuple[tuple[str, int, tuple[str, ...]], ...]) -> Fence:
    """The fence for the network and address the override pins."""
    return Fence((rules.SCANNER_ADDRESS,), ((rules.SIRIUS_BRIDGE, rules.SIRIUS_SUBNET),), targets, resolvers, fetches)


def chain_rules(fence: Fence) -> list[list[str]]:
    """The chain's rules, in order, as iptables arguments after `-A <chain>`."""
    out = [["-i", bridge, "!", "-s", subnet, "-j", "DROP"] for bridge, subnet in fence.networks]
    for scanner in fence.scanners:
        src = ["-s", f"{scanner}/32"]
        out += [[*src, "-d", subnet, "-j", "RETURN"] for _, subnet in fence.networks]
        for resolver in fence.resolvers:
            out += [[*src, "-d", f"{resolver}/32", "-p", proto, "--dport", "53", "-j", "RETURN"] for proto in ("udp", "tcp")]
        for _, port, addresses in fence.fetches:
            out += [[*src, "-d", f"{a}/32", "-p", "tcp", "--dport", str(port), "-j", "RETURN"] for a in addresses]
        out += [[*src, "-d", cidr, "-j", "RETURN"] for cidr in fence.targets]
        out.append([*src, "-j", "DROP"])
    return out


def restore_input(chain: str, rule_list: list[list[str]]) -> str:
    """iptables-restore text that flushes and refills `chain` alone (with --noflush)."""
    lines = ["*filter", f":{chain} - [0:0]", *(" ".join(["-A", chain, *r]) for r in rule_list), "COMMIT"]
    return "\n".join(lines) + "\n"


def nameservers(resolv_conf: str = RESOLV_CONF, resolved_conf: str = RESOLVED_CONF) -> tuple[tuple[str, ...], str | None]:
    """The upstream DNS servers Docker's embedded resolver forwards to from the container's
    namespace (so through FORWARD), as Docker picks them; and a note when none was found.

    Loopback servers are asked from the host's namespace and need no rule."""
    found = _read_nameservers(resolv_conf)
    if found and all(ipaddress.ip_address(a).is_loopback for a in found if _is_ip(a)):
        found = _read_nameservers(resolved_conf) or found  # systemd-resolved's stub: Docker reads its upstreams
    usable = tuple(dict.fromkeys(a for a in found if is_ipv4(a) and not ipaddress.IPv4Address(a).is_loopback))
    if usable or any(_is_ip(a) and ipaddress.ip_address(a).is_loopback for a in found):
        return usable, None
    return DOCKER_DEFAULT_DNS, f"no nameserver in {resolv_conf}: Docker forwards to {', '.join(DOCKER_DEFAULT_DNS)}"


def _read_nameservers(path: str) -> list[str]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return []
    return [parts[1] for parts in (line.split() for line in lines) if len(parts) >= 2 and parts[0] == "nameserver"]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def is_ipv4(text: str) -> bool:
    return _is_ip(text) and ipaddress.ip_address(text).version == 4


def resolve_fetches(fetches=rules.SCANNER_FETCHES, getaddrinfo=socket.getaddrinfo):
    """(host, port, IPv4 addresses) of what the engine fetches by itself, and notes for names
    that do not resolve now (their rule is left out: the engine's lookups fail until the next
    deploy or boot; the scanner then keeps its own default score)."""
    resolved, notes = [], []
    for host, port in fetches:
        try:
            infos = getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
            addresses = tuple(sorted({info[4][0] for info in infos}, key=ipaddress.IPv4Address))
        except (OSError, UnicodeError) as err:
            notes.append(f"{host} did not resolve ({err}); the scanner cannot reach it until the next deploy")
            continue
        resolved.append((host, port, addresses))
    return tuple(resolved), notes
