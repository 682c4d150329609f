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

The rules are built in engine/firewallrules.py, applied by engine/iptables.py, saved and
put back at boot by engine/firewallboot.py; this module is what the deploy calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from engine import firewallboot, plan, rules
from engine.docker import log, project_containers, run
from engine.firewallrules import Fence, chain_rules, is_ipv4, nameservers, pinned, resolve_fetches
from engine.iptables import FirewallError, apply


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
        firewallboot.save(self.state_dir, self.parent, self.chain, rule_list)
        unit = firewallboot.install_unit(self.state_dir) if self.parent == rules.FIREWALL_PARENT else None
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
    subnet = next((s for s in subnets if s and is_ipv4(s.split("/")[0])), None)
    return (bridge, subnet) if subnet else None


def stop_scanner(project: str) -> bool:
    """Stop sirius-engine (it stays stopped: `unless-stopped`); True when it is not running."""
    engines = [c for c in project_containers(project) if plan.service_of(c) == rules.SCANNER_SERVICE]
    return all(run(["docker", "stop", c["Id"]], timeout=120).ok for c in engines)


def off_report() -> dict:
    return {"status": "off", "chain": None, "parent": None, "rules": 0, "scanner": [], "targets": [],
            "resolvers": [], "fetches": {}, "bootUnit": None,
            "notes": ["--no-firewall: sirius-engine may reach any address"], "error": None}
