"""The scanner's fence: host firewall rules that keep sirius-engine off the internet.

sirius-engine runs nmap with NET_RAW on an AWS address; a visitor with the shared login
could aim it at anyone, and the abuse reports would go to the owner's AWS account. Its
traffic is routed by the host, so the host's FORWARD chain sees every packet, raw or not.
The rules live in a chain of their own (FIREWALL_CHAIN), flushed and refilled in one
iptables-restore transaction, with one jump from Docker's DOCKER-USER chain, which
Docker runs before its own rules and never flushes:

    -i <sirius bridge> ! -s <sirius subnet> -j DROP   forged sources (NET_RAW) leave nothing
    -s <engine> -d <sirius subnet> -j RETURN          the stack's own services
    -s <engine> -d <resolver> -p udp/tcp --dport 53   Docker's resolver asks upstream from
                                                      the container's namespace
    -s <engine> -d <fetch address> -p tcp --dport N   what upstream's engine fetches itself
    -s <engine> -d <scan target> -j RETURN            the `scanTargets` setting
    -s <engine> -j DROP                               everything else

RETURN hands the packet back to Docker's own rules; every other container is untouched.
The engine is known by the address the override pins (rules.SCANNER_ADDRESS), so the
rules hold before its container exists and after a reboot. The deploy saves them
(<state-dir>/firewall.json); a systemd unit ordered before docker.service puts them
back at boot, before Docker restarts the containers (`engine firewall`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import sys
from dataclasses import dataclass, field

from engine import plan, rules
from engine.docker import log, project_containers, run

RULES_FILE = "firewall.json"
UNIT_NAME = "sirius-scanner-firewall.service"
UNIT_DIR = "/etc/systemd/system"
RESOLV_CONF = "/etc/resolv.conf"
# Docker's choice when /etc/resolv.conf names only systemd-resolved's stub (Ubuntu).
RESOLVED_CONF = "/run/systemd/resolve/resolv.conf"
# Docker's fallback when the host names no usable nameserver.
DOCKER_DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")
_BRIDGE = re.compile(r"[A-Za-z0-9_.-]{1,15}")


class FirewallError(RuntimeError):
    """The rules could not be put in place; says what to do."""


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
    usable = tuple(dict.fromkeys(a for a in found if _is_ipv4(a) and not ipaddress.IPv4Address(a).is_loopback))
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


def _is_ipv4(text: str) -> bool:
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


# --- applying -------------------------------------------------------------------------


def apply(rule_list: list[list[str]], *, parent: str = rules.FIREWALL_PARENT, chain: str = rules.FIREWALL_CHAIN,
          boot: bool = False) -> None:
    """Make `chain` hold exactly `rule_list`, jumped to once from `parent`.

    On a deploy the parent must exist and FORWARD must jump to it (Docker runs with its
    iptables rules), else nothing would ever see the rules. At boot, before Docker,
    the parent is created: Docker keeps an existing DOCKER-USER and adds its jump."""
    for name in (parent, chain):
        if not rules.CHAIN_NAME_PATTERN.fullmatch(name):
            raise FirewallError(f"chain name {name!r}: expected {rules.CHAIN_NAME_PATTERN.pattern}")
    ipt = ["iptables", "-w", "30"]
    if not run([*ipt, "-S", parent], timeout=60).ok:
        if not boot:
            raise FirewallError(f"the iptables chain {parent} does not exist: Docker runs without its iptables rules "
                                "(--iptables=false?) or iptables is missing, so nothing would hold the scanner's rules; "
                                "start Docker with its default iptables setting")
        _must(run([*ipt, "-N", parent], timeout=60), f"cannot create chain {parent}")
    if not boot:
        forward = run([*ipt, "-S", "FORWARD"], timeout=60)
        _must(forward, "cannot list the FORWARD chain")
        if not any(line.split()[-2:] == ["-j", parent] for line in forward.out.splitlines()):
            raise FirewallError(f"the FORWARD chain does not jump to {parent}, so the scanner's rules would never be "
                                "consulted; restart Docker (it puts the jump back)")
    _must(run(["iptables-restore", "-w", "30", "--noflush"], input=restore_input(chain, rule_list), timeout=60),
          f"iptables-restore of chain {chain} failed")
    jump = f"-A {parent} -j {chain}"
    listed = run([*ipt, "-S", parent], timeout=60)
    _must(listed, f"cannot list chain {parent}")
    jumps = [line for line in listed.out.splitlines() if line.strip() == jump]
    if not jumps:
        _must(run([*ipt, "-I", parent, "1", "-j", chain], timeout=60), f"cannot add the jump from {parent} to {chain}")
    for _ in jumps[1:]:
        _must(run([*ipt, "-D", parent, "-j", chain], timeout=60), f"cannot remove a second jump to {chain}")
    now = run([*ipt, "-S", chain], timeout=60)
    _must(now, f"cannot list chain {chain}")
    if len([line for line in now.out.splitlines() if line.startswith("-A ")]) != len(rule_list):
        raise FirewallError(f"chain {chain} does not hold the {len(rule_list)} rules just written")


def _must(result, what: str) -> None:
    if not result.ok:
        raise FirewallError(f"{what}: {result.last_line()}")


def save(state_dir: str, parent: str, chain: str, rule_list: list[list[str]]) -> None:
    path = os.path.join(state_dir, RULES_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump({"parent": parent, "chain": chain, "rules": rule_list}, f)
    os.replace(path + ".tmp", path)


def load(state_dir: str) -> dict | None:
    try:
        saved = json.load(open(os.path.join(state_dir, RULES_FILE)))
    except (OSError, ValueError):
        return None
    ok = (isinstance(saved, dict) and isinstance(saved.get("rules"), list)
          and all(isinstance(r, list) and all(isinstance(t, str) and t and " " not in t and "\n" not in t for t in r)
                  for r in saved["rules"]))
    return saved if ok else None


# --- the boot unit ----------------------------------------------------------------------


def engine_command() -> list[str]:
    """How systemd runs this engine: the zipapp it was started from, else the checkout."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    container = os.path.dirname(package_dir)
    if os.path.isfile(container):  # .../engine.pyz/engine/firewall.py
        return ["/usr/bin/python3", container]
    return ["/usr/bin/python3", "-m", "engine"]


def unit_text(state_dir: str, command: list[str], workdir: str | None = None) -> str:
    """Runs before docker.service, which restarts the containers at boot: the rules are in
    place before sirius-engine sends its first packet."""
    lines = [
        "[Unit]",
        "Description=Sirius demo: the scanner's firewall (sirius-engine reaches only its stack and scanTargets)",
        "Before=docker.service",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        f"ExecStart={' '.join([*command, 'firewall', '--state-dir', state_dir])}",
    ]
    if workdir:
        lines.append(f"WorkingDirectory={workdir}")
    lines += ["", "[Install]", "WantedBy=docker.service", ""]
    return "\n".join(lines)


def install_unit(state_dir: str, unit_dir: str = UNIT_DIR) -> str | None:
    """Write and enable the boot unit (systemd hosts only); its path, or None."""
    if not os.path.isdir("/run/systemd/system"):
        return None
    command = engine_command()
    workdir = None if command[1] != "-m" else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = unit_text(state_dir, command, workdir)
    path = os.path.join(unit_dir, UNIT_NAME)
    if not os.path.exists(path) or open(path).read() != text:
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        run(["systemctl", "daemon-reload"], timeout=120)
    if not run(["systemctl", "enable", UNIT_NAME], timeout=120).ok:
        raise FirewallError(f"systemctl enable {UNIT_NAME} failed: the rules would not come back after a reboot")
    return path


# --- what the deploy calls ------------------------------------------------------------


@dataclass
class Scanner:
    """One deploy's fence: planned before the switch, checked again after every `up`."""

    targets: tuple[str, ...]
    state_dir: str
    parent: str = rules.FIREWALL_PARENT
    chain: str = rules.FIREWALL_CHAIN
    fence: Fence | None = None
    notes: list[str] = field(default_factory=list)

    def plan(self) -> None:
        resolvers, note = nameservers()
        fetches, notes = resolve_fetches()
        self.notes = [n for n in (note, *notes) if n]
        self.fence = pinned(self.targets, resolvers, fetches)

    def apply(self) -> dict:
        """Apply, save for the boot unit, install it (with Docker's own chain): the report entry."""
        rule_list = chain_rules(self.fence)
        apply(rule_list, parent=self.parent, chain=self.chain)
        save(self.state_dir, self.parent, self.chain, rule_list)
        unit = install_unit(self.state_dir) if self.parent == rules.FIREWALL_PARENT else None
        log(f"firewall: {len(rule_list)} rules in {self.chain} (from {self.parent}); sirius-engine reaches its stack"
            + (f" and {', '.join(self.targets)}" if self.targets else " only"))
        return self.report(len(rule_list), unit)

    def after_up(self, project: str) -> dict | None:
        """The engine as it runs: an address other than the pinned one (a rollback to a deploy
        made before the fence) is fenced too, with a note; None when nothing changed."""
        engine = next((c for c in project_containers(project) if plan.service_of(c) == rules.SCANNER_SERVICE), None)
        networks = ((engine or {}).get("NetworkSettings") or {}).get("Networks") or {}
        extra_scanners, extra_networks = [], []
        for net in networks.values():
            address = net.get("IPAddress") or ""
            if not address or address in self.fence.scanners:
                continue
            found = inspect_network(net.get("NetworkID") or "")
            if found is None:
                raise FirewallError(f"cannot read the network of {rules.SCANNER_SERVICE} at {address}")
            extra_scanners.append(address)
            extra_networks.append(found)
        if not extra_scanners:
            return None
        self.notes.append(f"{rules.SCANNER_SERVICE} runs at {', '.join(extra_scanners)}, not at the pinned "
                          f"{rules.SCANNER_ADDRESS}; fenced there too until the next deploy (a reboot may move it)")
        f = self.fence
        self.fence = Fence((*f.scanners, *extra_scanners), tuple(dict.fromkeys((*f.networks, *extra_networks))),
                           f.targets, f.resolvers, f.fetches)
        return self.apply()

    def report(self, count: int, unit: str | None) -> dict:
        f = self.fence
        return {"status": "applied", "chain": self.chain, "parent": self.parent, "rules": count,
                "scanner": list(f.scanners), "targets": list(f.targets), "resolvers": list(f.resolvers),
                "fetches": {f"{host}:{port}": list(addrs) for host, port, addrs in f.fetches},
                "bootUnit": unit, "notes": list(self.notes), "error": None}


def inspect_network(network_id: str) -> tuple[str, str] | None:
    """(bridge device, IPv4 subnet) of a Docker bridge network."""
    if not network_id:
        return None
    found = run(["docker", "network", "inspect", network_id], timeout=60)
    try:
        net = json.loads(found.out)[0]
    except (ValueError, IndexError, KeyError):
        return None
    bridge = (net.get("Options") or {}).get("com.docker.network.bridge.name") or f"br-{net['Id'][:12]}"
    subnets = [c.get("Subnet", "") for c in ((net.get("IPAM") or {}).get("Config") or [])]
    subnet = next((s for s in subnets if s and _is_ipv4(s.split("/")[0])), None)
    return (bridge, subnet) if subnet else None


def stop_scanner(project: str) -> bool:
    """Stop sirius-engine (it stays stopped: `unless-stopped`); True when it is not running."""
    engines = [c for c in project_containers(project) if plan.service_of(c) == rules.SCANNER_SERVICE]
    return all(run(["docker", "stop", c["Id"]], timeout=120).ok for c in engines)


def off_report() -> dict:
    return {"status": "off", "chain": None, "parent": None, "rules": 0, "scanner": [], "targets": [],
            "resolvers": [], "fetches": {}, "bootUnit": None,
            "notes": ["--no-firewall: sirius-engine may reach any address"], "error": None}


def main(state_dir: str) -> int:
    """`engine firewall`: put the last deploy's rules back (the boot unit runs this)."""
    saved = load(os.path.abspath(state_dir))
    if saved is None:
        print(f"engine firewall: no saved rules in {state_dir}/{RULES_FILE}; nothing to apply", file=sys.stderr)
        return 0
    try:
        apply(saved["rules"], parent=saved.get("parent", rules.FIREWALL_PARENT),
              chain=saved.get("chain", rules.FIREWALL_CHAIN), boot=True)
    except FirewallError as err:
        print(f"engine firewall: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"status": "applied", "chain": saved.get("chain"), "rules": len(saved["rules"])}), flush=True)
    return 0
