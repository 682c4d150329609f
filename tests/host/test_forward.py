"""The test bed's FORWARD accept rule on the real kernel and iptables, in network namespaces
of its own: a bridge with two hosts, FORWARD set to DROP there, as an iptables-enabled
Docker Engine leaves it (shared facts). The machine's own policy is never touched.
Needs root, `ip`, iptables and busybox (ping); no Docker."""

from __future__ import annotations

import os
import subprocess

import pytest

from testbed import forward

HOSTS = {"b": "10.213.7.2", "c": "10.213.7.3"}  # inside forward.POOL, like the engine's networks


def sh(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30)


@pytest.fixture
def bridge():
    """Namespace `<tag>a` holds bridge br0; `<tag>b` and `<tag>c` hang off it. Yields a runner
    for commands in `a` (where the bridge's FORWARD chain is) and a ping from b to c."""
    tag = f"sdfwd{os.getpid()}"
    names = {key: tag + key for key in "abc"}
    try:
        for name in names.values():
            assert sh("ip", "netns", "add", name).returncode == 0
        a = names["a"]
        for argv in (["link", "add", "br0", "type", "bridge"], ["link", "set", "br0", "up"]):
            assert sh("ip", "-n", a, *argv).returncode == 0
        for key, address in HOSTS.items():
            peer = names[key]
            for argv in (["ip", "-n", a, "link", "add", f"v{key}", "type", "veth", "peer", "name", "eth0", "netns", peer],
                         ["ip", "-n", a, "link", "set", f"v{key}", "master", "br0"], ["ip", "-n", a, "link", "set", f"v{key}", "up"],
                         ["ip", "-n", peer, "link", "set", "eth0", "up"],
                         ["ip", "-n", peer, "addr", "add", f"{address}/24", "dev", "eth0"]):
                assert sh(*argv).returncode == 0, argv

        def in_a(argv):
            return sh("ip", "netns", "exec", a, *argv)

        def reaches() -> bool:
            return sh("ip", "netns", "exec", names["b"], "busybox", "ping", "-c", "1", "-W", "1", HOSTS["c"]).returncode == 0

        yield in_a, reaches
    finally:
        for name in names.values():
            sh("ip", "netns", "delete", name)


def test_under_drop_the_accept_rule_lets_the_bridge_pass_and_leaves_with_the_test_bed(bridge):
    in_a, reaches = bridge
    assert reaches()
    assert in_a(["iptables", "-P", "FORWARD", "DROP"]).returncode == 0
    assert not reaches()  # the failure the shared facts describe
    bed = forward.ForwardAccept("sdb-ours", run=in_a, iptables=["iptables"], bridge_exists=lambda name: name == "sdb-ours")
    assert "FORWARD policy DROP" in bed.open()
    assert reaches()
    bed.close()
    assert not reaches()
    listing = in_a(["iptables", "-S", "FORWARD"]).stdout
    assert forward.policy_of(listing) == "DROP" and "sirius-demo-testbed" not in listing  # policy left as found


def test_a_rule_left_by_a_killed_test_bed_is_cleared_with_real_iptables(bridge):
    in_a, _ = bridge
    in_a(["iptables", "-P", "FORWARD", "DROP"])
    in_a(["iptables", "-A", "FORWARD", *forward.rule("sdb-gone")])
    bed = forward.ForwardAccept("sdb-ours", run=in_a, iptables=["iptables"], bridge_exists=lambda name: name == "sdb-ours")
    bed.open()
    assert in_a(["iptables", "-C", "FORWARD", *forward.rule("sdb-gone")]).returncode != 0
    assert in_a(["iptables", "-C", "FORWARD", *forward.rule("sdb-ours")]).returncode == 0
    bed.close()
    assert in_a(["iptables", "-C", "FORWARD", *forward.rule("sdb-ours")]).returncode != 0
