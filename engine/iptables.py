"""Putting a chain in place with iptables: flushed and refilled in one iptables-restore
transaction, jumped to once from its parent chain (Docker's DOCKER-USER)."""

from __future__ import annotations

from engine import rules
from engine.docker import run
from engine.firewallrules import restore_input


class FirewallError(RuntimeError):
    """The rules could not be put in place; says what to do."""


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
