"""The test bed and the kernel's FORWARD policy (testbed/forward.py), against a fake iptables.

The host tests need containers to reach each other; an iptables-enabled Docker Engine run
elsewhere on the machine leaves FORWARD at DROP. The harness must cope (an accept rule for
its own pool while it runs, gone after) or stop with the fix, never change the policy.
"""

from __future__ import annotations

import shlex
import subprocess

import pytest

from testbed import forward


class FakeIptables:
    """`iptables -S/-I/-D FORWARD` over an in-memory chain."""

    def __init__(self, policy: str = "DROP", *, may_write: bool = True, readable: bool = True):
        self.policy, self.rules, self.may_write, self.readable = policy, [], may_write, readable
        self.calls: list[list[str]] = []

    def __call__(self, argv):
        argv = list(argv)
        self.calls.append(argv)
        op, chain, *rest = argv[1:]
        assert chain == "FORWARD"
        if op == "-S":
            if not self.readable:
                return subprocess.CompletedProcess(argv, 4, "", "iptables: Permission denied (you must be root).")
            lines = [f"-P FORWARD {self.policy}"] + [shlex.join(["-A", "FORWARD", *r]) for r in self.rules]
            return subprocess.CompletedProcess(argv, 0, "\n".join(lines) + "\n", "")
        if not self.may_write:
            return subprocess.CompletedProcess(argv, 4, "", "iptables: Permission denied (you must be root).")
        if op == "-I":
            self.rules.insert(int(rest[0]) - 1, rest[1:])
        elif op == "-D":
            if rest not in self.rules:
                return subprocess.CompletedProcess(argv, 1, "", "iptables: Bad rule (does a matching rule exist?).")
            self.rules.remove(rest)
        return subprocess.CompletedProcess(argv, 0, "", "")


def accept(fake, bridges=("sdb-ours",), **kw) -> forward.ForwardAccept:
    return forward.ForwardAccept("sdb-ours", run=fake, iptables=["/usr/sbin/iptables"],
                                 bridge_exists=lambda name: name in bridges, **kw)


def test_under_drop_the_pool_is_accepted_while_the_test_bed_runs_and_the_policy_stays():
    fake = FakeIptables("DROP")
    bed = accept(fake)
    assert "FORWARD policy DROP" in bed.open()
    assert fake.rules == [forward.rule("sdb-ours")] and fake.policy == "DROP"
    assert fake.rules[0][:4] == ["-s", forward.POOL, "-d", forward.POOL] and fake.rules[0][-2:] == ["-j", "ACCEPT"]
    bed.close()
    bed.close()  # idempotent
    assert fake.rules == [] and fake.policy == "DROP"
    assert not any(call[1] == "-P" for call in fake.calls)


def test_under_accept_nothing_is_added():
    fake = FakeIptables("ACCEPT")
    bed = accept(fake)
    assert "nothing to add" in bed.open()
    bed.close()
    assert fake.rules == [] and [call[1] for call in fake.calls] == ["-S"]


def test_the_rule_goes_first_so_no_earlier_drop_rule_decides():
    fake = FakeIptables("DROP")
    fake.rules = [["-j", "DOCKER-USER"], ["-j", "DROP"]]
    accept(fake).open()
    assert fake.rules[0] == forward.rule("sdb-ours")


def test_when_the_rule_cannot_be_added_start_fails_naming_the_fix():
    bed = accept(FakeIptables("DROP", may_write=False))
    with pytest.raises(forward.ForwardPolicyError) as err:
        bed.open()
    assert "FORWARD policy is DROP" in str(err.value) and "iptables -P FORWARD ACCEPT" in str(err.value)
    assert "Permission denied" in str(err.value)
    with pytest.raises(forward.ForwardPolicyError, match="cannot read the FORWARD chain"):
        accept(FakeIptables("DROP", readable=False)).open()


def test_rules_of_a_killed_test_bed_are_removed_and_a_running_ones_kept():
    fake = FakeIptables("DROP")
    fake.rules = [forward.rule("sdb-gone"), forward.rule("sdb-other"), ["-j", "ACCEPT"]]
    accept(fake, bridges=("sdb-ours", "sdb-other")).open()
    assert fake.rules == [forward.rule("sdb-ours"), forward.rule("sdb-other"), ["-j", "ACCEPT"]]


def test_without_iptables_nothing_is_checked_and_says_so():
    bed = forward.ForwardAccept("sdb-ours", run=FakeIptables(), iptables=[])
    assert "not checked" in bed.open() and bed.policy is None and not bed.added


def test_a_drop_in_the_legacy_tables_counts_too():
    chains = {"iptables": FakeIptables("ACCEPT"), "iptables-legacy": FakeIptables("DROP")}
    bed = forward.ForwardAccept("sdb-ours", run=lambda argv: chains[argv[0]](argv),
                                iptables=["iptables", "iptables-legacy"], bridge_exists=lambda name: True)
    assert "iptables-legacy" in bed.open() and bed.policy == "DROP"
    assert chains["iptables"].rules == [] and chains["iptables-legacy"].rules == [forward.rule("sdb-ours")]
    bed.close()
    assert chains["iptables-legacy"].rules == []


def test_a_failure_on_the_second_front_end_takes_back_the_first_ones_rule():
    chains = {"iptables": FakeIptables("DROP"), "iptables-legacy": FakeIptables("DROP", may_write=False)}
    bed = forward.ForwardAccept("sdb-ours", run=lambda argv: chains[argv[0]](argv),
                                iptables=["iptables", "iptables-legacy"], bridge_exists=lambda name: True)
    with pytest.raises(forward.ForwardPolicyError, match="iptables-legacy -P FORWARD ACCEPT"):
        bed.open()
    assert chains["iptables"].rules == [] and not bed.added


def test_legacy_is_asked_only_when_its_tables_are_loaded(tmp_path, monkeypatch):
    paths = {"iptables": "/usr/sbin/iptables", "iptables-legacy": "/usr/sbin/iptables-legacy"}
    monkeypatch.setattr(forward.shutil, "which", paths.get)
    monkeypatch.setattr(forward.os.path, "realpath", lambda path: path)
    names = tmp_path / "ip_tables_names"
    assert forward.iptables_binaries(str(names)) == ["/usr/sbin/iptables"]  # no legacy tables
    names.write_text("filter\n")
    assert forward.iptables_binaries(str(names)) == ["/usr/sbin/iptables", "/usr/sbin/iptables-legacy"]


def test_the_engine_allocates_every_network_inside_the_accepted_pool():
    args = accept(FakeIptables()).daemon_args()
    assert args == ["--default-address-pool", f"base={forward.POOL},size={forward.POOL_SIZE}"]


@pytest.mark.parametrize(("listing", "policy"), [("-P FORWARD DROP\n-A FORWARD -j ACCEPT\n", "DROP"),
                                                  ("-P FORWARD ACCEPT\n", "ACCEPT"), ("", None),
                                                  ("-P INPUT DROP\n", None)])
def test_policy_of(listing, policy):
    assert forward.policy_of(listing) == policy
