"""The kernel's FORWARD policy and the test bed's containers.

A Docker Engine started with iptables enabled (the default; what EC2 hosts run) sets the
FORWARD policy to DROP and leaves it so after it stops. The test bed's dockerd runs with
``--iptables=false``; with ``bridge-nf-call-iptables=1`` traffic between two containers
on one bridge still passes FORWARD, so under DROP it times out (DNS answers, host to
container works: the failure looks like a broken stand-in). See ../shared facts.

The test bed copes instead of depending on the machine: its engine allocates every
network from its own address pool (``POOL``), and while it runs one rule
``-s POOL -d POOL -j ACCEPT``, tagged with a comment naming the engine's bridge, sits at
the top of FORWARD, added at start and removed at stop. The policy itself is never
changed. When the policy is ACCEPT nothing is added; when it is not ACCEPT and the rule
cannot be added, starting fails with what is wrong and how to fix it. Both front ends
count: the default `iptables` (nft on Debian) and, when its tables are loaded,
`iptables-legacy`, since the kernel runs both chains.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence

log = logging.getLogger("sirius.host")

# Networks of the test bed's engine (its default bridge and every compose network), as
# /24s out of one /16 that Docker's default pools (172.17-31/16, 192.168/16) do not use.
POOL = "10.213.0.0/16"
POOL_SIZE = 24
COMMENT_PREFIX = "sirius-demo-testbed:"

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess]


class ForwardPolicyError(RuntimeError):
    """FORWARD drops the test bed's traffic and the harness could not let it through."""


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30)


def policy_of(rules: str) -> str | None:
    """The policy in `iptables -S FORWARD` output (`-P FORWARD DROP` -> DROP), or None."""
    for line in rules.splitlines():
        parts = line.split()
        if parts[:2] == ["-P", "FORWARD"] and len(parts) == 3:
            return parts[2]
    return None


def rule(bridge: str, pool: str = POOL) -> list[str]:
    """The accept rule's match and target, as iptables -I/-C/-D take them after the chain."""
    return ["-s", pool, "-d", pool, "-m", "comment", "--comment", COMMENT_PREFIX + bridge, "-j", "ACCEPT"]


def stale_rules(rules: str, bridge_exists: Callable[[str], bool]) -> list[list[str]]:
    """Rules of earlier test beds whose bridge is gone (a killed run): `-D` argument lists."""
    found = []
    for line in rules.splitlines():
        parts = shlex.split(line)
        if parts[:2] != ["-A", "FORWARD"] or "--comment" not in parts:
            continue
        comment = parts[parts.index("--comment") + 1]
        if comment.startswith(COMMENT_PREFIX) and not bridge_exists(comment[len(COMMENT_PREFIX):]):
            found.append(["-D", *parts[1:]])
    return found


def iptables_binaries(legacy_tables: str = "/proc/net/ip_tables_names") -> list[str]:
    """The iptables front ends whose FORWARD chain the kernel evaluates: the default one, and
    iptables-legacy when legacy tables are loaded beside nft ones (a DROP in either drops).
    Legacy is not asked otherwise: listing it would load its tables."""
    found = [path for path in (shutil.which("iptables"),) if path]
    legacy = shutil.which("iptables-legacy")
    try:
        loaded = "filter" in open(legacy_tables).read().split()
    except OSError:
        loaded = False
    if legacy and loaded and all(os.path.realpath(legacy) != os.path.realpath(path) for path in found):
        found.append(legacy)
    return found


class ForwardAccept:
    """Let the engine's containers reach each other whatever FORWARD's policy is."""

    def __init__(self, bridge: str, *, pool: str = POOL, run: Runner = _run, iptables: Sequence[str] | None = None,
                 bridge_exists: Callable[[str], bool] = lambda name: os.path.exists(f"/sys/class/net/{name}")):
        self.bridge, self.pool, self.run = bridge, pool, run
        self.binaries = list(iptables) if iptables is not None else iptables_binaries()
        self.bridge_exists = bridge_exists
        self.policies: dict[str, str | None] = {}  # binary -> FORWARD policy seen at open
        self._added: list[str] = []

    @property
    def added(self) -> bool:
        return bool(self._added)

    @property
    def policy(self) -> str | None:
        """None when not checked; ACCEPT when every front end accepts; else the first other policy."""
        if not self.policies:
            return None
        return next((p or "unreadable" for p in self.policies.values() if p != "ACCEPT"), "ACCEPT")

    def open(self) -> str:
        """Check the policy; add the rule where it is not ACCEPT. What was found, in words."""
        if not self.binaries:
            return "no iptables on this machine: FORWARD not checked"
        try:
            for binary in self.binaries:
                self._open(binary)
        except ForwardPolicyError:
            self.close()
            raise
        if not self._added:
            return "FORWARD policy ACCEPT: nothing to add"
        message = (f"FORWARD policy {self.policy} ({', '.join(self._added)}): accepting {self.pool} <-> {self.pool} "
                   "while the test bed runs")
        log.info(message)
        return message

    def _open(self, iptables: str) -> None:
        listed = self.run([iptables, "-S", "FORWARD"])
        if listed.returncode != 0:
            raise ForwardPolicyError(
                f"cannot read the FORWARD chain (`{iptables} -S FORWARD`: {listed.stderr.strip()}); the test "
                "bed's containers need FORWARD to pass their traffic: run as root, or set `iptables -P FORWARD ACCEPT`")
        for stale in stale_rules(listed.stdout, self.bridge_exists):
            self.run([iptables, *stale])
        policy = self.policies[iptables] = policy_of(listed.stdout)
        if policy == "ACCEPT":
            return
        spec = rule(self.bridge, self.pool)
        added = self.run([iptables, "-I", "FORWARD", "1", *spec])
        if added.returncode != 0:
            raise ForwardPolicyError(
                f"the kernel's FORWARD policy is {policy or 'unreadable'} (an iptables-enabled Docker Engine "
                "leaves it so) and adding the test bed's accept rule failed "
                f"(`{shlex.join([iptables, '-I', 'FORWARD', '1', *spec])}`: {added.stderr.strip()}): "
                f"containers could not reach each other. Fix: `{os.path.basename(iptables)} -P FORWARD ACCEPT` (as root)")
        self._added.append(iptables)

    def close(self) -> None:
        """Remove the rules this test bed added (idempotent)."""
        for iptables in self._added:
            removed = self.run([iptables, "-D", "FORWARD", *rule(self.bridge, self.pool)])
            if removed.returncode != 0:
                log.warning("could not remove the FORWARD accept rule of %s (%s): %s", self.bridge, iptables,
                            removed.stderr.strip())
        self._added = []

    def daemon_args(self) -> list[str]:
        """dockerd flags that keep every network of the engine inside the accepted pool."""
        return ["--default-address-pool", f"base={self.pool},size={POOL_SIZE}"]
