"""The scanner's firewall: which packets the rules let through, and how they are applied.

The rules are judged by what they do to packets (a small interpreter of the iptables
matches they use, first match wins), not by their text; applying is run against a fake
iptables that keeps chains the way the kernel does."""

from __future__ import annotations

import ipaddress

import pytest

from engine import deploy, firewall, firewallboot, firewallrules, iptables, override, rules, settings
from engine.docker import Result

ENGINE = rules.SCANNER_ADDRESS
API = "172.30.213.2"
BRIDGE = rules.SIRIUS_BRIDGE
RESOLVER = "172.31.0.2"
NVD = ("services.nvd.nist.gov", 443, ("129.6.13.50", "129.6.13.51"))
TARGET = "203.0.113.0/28"


def fence(**kw) -> firewallrules.Fence:
    return firewallrules.pinned(kw.get("targets", (TARGET,)), kw.get("resolvers", (RESOLVER,)), kw.get("fetches", (NVD,)))


def verdict(rule_list, src, dst, proto="tcp", dport=None, iface=BRIDGE) -> str:
    """DROP or RETURN (back to Docker's rules) for one packet entering FORWARD from `iface`."""
    for r in rule_list:
        args, matched, negate = list(r), True, False
        target = args[args.index("-j") + 1]
        i = 0
        while i < args.index("-j"):
            a = args[i]
            if a == "!":
                negate, i = True, i + 1
                continue
            value = args[i + 1]
            if a == "-s":
                hit = ipaddress.ip_address(src) in ipaddress.ip_network(value)
            elif a == "-d":
                hit = ipaddress.ip_address(dst) in ipaddress.ip_network(value)
            elif a == "-i":
                hit = iface == value
            elif a == "-p":
                hit = proto == value
            elif a == "--dport":
                hit = dport == int(value)
            else:
                raise AssertionError(f"unknown match {a}")
            matched = matched and (hit != negate)
            negate, i = False, i + 2
        if matched:
            return target
    return "RETURN"  # end of chain


def test_the_engine_reaches_its_stack_its_resolver_nvd_and_the_targets_only():
    r = firewallrules.chain_rules(fence())
    assert verdict(r, ENGINE, API, dport=9001) == "RETURN"  # the stack's own services
    assert verdict(r, ENGINE, "172.30.213.9", "udp", 5672) == "RETURN"
    assert verdict(r, ENGINE, RESOLVER, "udp", 53) == "RETURN"  # DNS, as Docker's resolver forwards it
    assert verdict(r, ENGINE, RESOLVER, "tcp", 53) == "RETURN"
    assert verdict(r, ENGINE, "129.6.13.51", "tcp", 443) == "RETURN"  # NVD, what the scanner fetches itself
    assert verdict(r, ENGINE, "203.0.113.9", "tcp", 22) == "RETURN"  # scanTargets: any protocol
    assert verdict(r, ENGINE, "203.0.113.9", "icmp") == "RETURN"


@pytest.mark.parametrize(("dst", "proto", "dport"), [
    ("8.8.8.8", "tcp", 443), ("8.8.8.8", "icmp", None), ("203.0.113.16", "tcp", 80),  # just past the target
    (RESOLVER, "tcp", 22), ("129.6.13.50", "tcp", 80), ("129.6.13.50", "icmp", None),  # allowed hosts, other ports
    ("169.254.169.254", "tcp", 80),  # the metadata service and its credentials
    ("10.0.0.5", "udp", 161), ("172.31.5.5", "tcp", 22),  # the VPC around the host
])
def test_everything_else_from_the_engine_is_dropped_raw_or_not(dst, proto, dport):
    assert verdict(firewallrules.chain_rules(fence()), ENGINE, dst, proto, dport) == "DROP"


def test_other_containers_keep_their_own_outbound_access():
    r = firewallrules.chain_rules(fence())
    for dst in ("8.8.8.8", "129.6.13.50", "140.82.112.3"):  # anywhere: NVD, a registry
        assert verdict(r, API, dst, "tcp", 443) == "RETURN"


def test_a_forged_source_leaves_nothing_from_the_sirius_network():
    """NET_RAW can write any source address; only the sirius subnet's may leave its bridge."""
    r = firewallrules.chain_rules(fence())
    assert verdict(r, "8.8.4.4", "198.51.100.1", "tcp", 80) == "DROP"
    assert verdict(r, "8.8.4.4", "198.51.100.1", "tcp", 80, iface="eth0") == "RETURN"  # not from the stack


def test_no_targets_keeps_the_engine_inside_its_stack():
    r = firewallrules.chain_rules(fence(targets=()))
    assert verdict(r, ENGINE, "203.0.113.9", "tcp", 22) == "DROP"
    assert verdict(r, ENGINE, API, "tcp", 9001) == "RETURN"


def test_a_second_engine_address_is_fenced_the_same_way():
    f = fence()
    moved = firewallrules.Fence((*f.scanners, "172.18.0.7"), (*f.networks, ("br-0123456789ab", "172.18.0.0/16")),
                           f.targets, f.resolvers, f.fetches)
    r = firewallrules.chain_rules(moved)
    assert verdict(r, "172.18.0.7", "8.8.8.8", iface="br-0123456789ab") == "DROP"
    assert verdict(r, "172.18.0.7", "172.18.0.3", iface="br-0123456789ab") == "RETURN"
    assert verdict(r, "172.18.0.7", "203.0.113.1", iface="br-0123456789ab") == "RETURN"


@pytest.mark.parametrize("bad", [
    dict(scanners=("172.30.213.250 -j ACCEPT",)), dict(networks=(("br x", "172.30.213.0/24"),)),
    dict(targets=("0.0.0.0/0 -j ACCEPT",)), dict(resolvers=("::1",)), dict(fetches=(("h", 0, ()),)),
])
def test_every_token_is_checked_before_it_reaches_iptables(bad):
    values = dict(scanners=(ENGINE,), networks=((BRIDGE, rules.SIRIUS_SUBNET),))
    with pytest.raises(ValueError):
        firewallrules.Fence(**{**values, **bad})


def test_restore_input_replaces_the_chain_alone_in_one_transaction():
    text = firewallrules.restore_input("SIRIUS-SCANNER", firewallrules.chain_rules(fence()))
    lines = text.splitlines()
    assert lines[:2] == ["*filter", ":SIRIUS-SCANNER - [0:0]"] and lines[-1] == "COMMIT"
    assert all(line.startswith("-A SIRIUS-SCANNER ") for line in lines[2:-1])
    assert text == firewallrules.restore_input("SIRIUS-SCANNER", firewallrules.chain_rules(fence()))


# --- where DNS goes ------------------------------------------------------------------------


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_resolvers_are_the_upstreams_docker_forwards_to(tmp_path):
    stub = write(tmp_path, "resolv.conf", "nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    upstream = write(tmp_path, "resolved.conf", "nameserver 172.31.0.2\nnameserver fd00:ec2::253\nsearch ec2.internal\n")
    assert firewallrules.nameservers(stub, upstream) == (("172.31.0.2",), None)
    direct = write(tmp_path, "direct.conf", "nameserver 10.0.0.2\nnameserver 10.0.0.2\n")
    assert firewallrules.nameservers(direct, upstream) == (("10.0.0.2",), None)


def test_loopback_resolvers_need_no_rule_and_none_at_all_means_dockers_defaults(tmp_path):
    local = write(tmp_path, "local.conf", "nameserver 127.0.0.1\n")
    assert firewallrules.nameservers(local, str(tmp_path / "missing")) == ((), None)
    empty = write(tmp_path, "empty.conf", "search example.com\n")
    found, note = firewallrules.nameservers(empty, str(tmp_path / "missing"))
    assert found == firewallrules.DOCKER_DEFAULT_DNS and "8.8.8.8" in note


def test_fetches_resolve_to_ipv4_addresses_and_a_failure_is_a_note():
    def getaddrinfo(host, port, family, kind):
        if host == "gone.example":
            raise OSError("Name or service not known")
        return [(family, kind, 6, "", ("129.6.13.51", port)), (family, kind, 6, "", ("129.6.13.50", port))]

    resolved, notes = firewallrules.resolve_fetches((("services.nvd.nist.gov", 443), ("gone.example", 443)), getaddrinfo)
    assert resolved == (("services.nvd.nist.gov", 443, ("129.6.13.50", "129.6.13.51")),)
    assert len(notes) == 1 and "gone.example" in notes[0]


def test_upstreams_own_fetches_are_nvd_only():
    """Read from upstream (rules.SCANNER_FETCHES): a new one is a decision, not a drift."""
    assert rules.SCANNER_FETCHES == (("services.nvd.nist.gov", 443),)


# --- applying, against a fake iptables ---------------------------------------------------


class FakeIptables:
    """Chains as the kernel keeps them; answers the argument lists iptables.apply runs."""

    def __init__(self, chains: dict[str, list[str]]):
        self.chains = {name: list(body) for name, body in chains.items()}
        self.calls: list[list[str]] = []

    def __call__(self, argv, *, input=None, timeout=None, **_):
        self.calls.append(argv)
        if argv[0] == "iptables-restore":
            assert argv[1:] == ["-w", "30", "--noflush"]
            for line in input.splitlines():
                if line.startswith(":"):
                    self.chains[line[1:].split()[0]] = []
                elif line.startswith("-A "):
                    self.chains[line.split()[1]].append(line[3 + len(line.split()[1]) + 1:])
            return Result(0, "", "")
        assert argv[:3] == ["iptables", "-w", "30"]
        op, chain, rest = argv[3], argv[4], argv[5:]
        if chain not in self.chains and op != "-N":
            return Result(1, "", f"iptables: No chain/target/match by that name ({chain}).")
        if op == "-S":
            return Result(0, "\n".join([f"-N {chain}", *(f"-A {chain} {r}" for r in self.chains[chain])]) + "\n", "")
        if op == "-N":
            self.chains[chain] = []
        elif op == "-I":
            self.chains[chain].insert(int(rest[0]) - 1, " ".join(rest[1:]))
        elif op == "-D":
            self.chains[chain].remove(" ".join(rest))
        return Result(0, "", "")


@pytest.fixture
def fake(monkeypatch):
    ipt = FakeIptables({"FORWARD": ["-j DOCKER-USER", "-j DOCKER-FORWARD"], "DOCKER-USER": ["-j RETURN"]})
    monkeypatch.setattr(iptables, "run", ipt)
    return ipt


def test_applying_twice_gives_the_same_rules_and_one_jump(fake):
    rule_list = firewallrules.chain_rules(fence())
    iptables.apply(rule_list)
    first = {k: list(v) for k, v in fake.chains.items()}
    iptables.apply(rule_list)
    assert fake.chains == first
    assert fake.chains["DOCKER-USER"] == ["-j SIRIUS-SCANNER", "-j RETURN"]
    assert fake.chains["SIRIUS-SCANNER"] == [" ".join(r) for r in rule_list]


def test_new_rules_replace_the_old_ones_and_extra_jumps_go(fake):
    fake.chains["DOCKER-USER"] = ["-j SIRIUS-SCANNER", "-j SIRIUS-SCANNER", "-j RETURN"]
    fake.chains["SIRIUS-SCANNER"] = ["-s 172.30.213.250/32 -d 0.0.0.0/0 -j RETURN"]
    iptables.apply(firewallrules.chain_rules(fence(targets=())))
    assert fake.chains["DOCKER-USER"] == ["-j SIRIUS-SCANNER", "-j RETURN"]
    assert "-s 172.30.213.250/32 -d 0.0.0.0/0 -j RETURN" not in fake.chains["SIRIUS-SCANNER"]


def test_a_deploy_refuses_a_docker_without_its_chain_or_its_jump(fake):
    del fake.chains["DOCKER-USER"]
    with pytest.raises(firewall.FirewallError, match="DOCKER-USER does not exist.*--iptables=false"):
        iptables.apply(firewallrules.chain_rules(fence()))
    fake.chains["DOCKER-USER"] = []
    fake.chains["FORWARD"] = ["-j DOCKER-FORWARD"]
    with pytest.raises(firewall.FirewallError, match="FORWARD chain does not jump to DOCKER-USER"):
        iptables.apply(firewallrules.chain_rules(fence()))
    assert "SIRIUS-SCANNER" not in fake.chains  # nothing half-done


def test_at_boot_docker_user_is_made_ready_for_docker(fake):
    """Before docker.service: no DOCKER-USER yet; Docker keeps the one it finds and adds its jump."""
    del fake.chains["DOCKER-USER"]
    fake.chains["FORWARD"] = []
    iptables.apply(firewallrules.chain_rules(fence()), boot=True)
    assert fake.chains["DOCKER-USER"] == ["-j SIRIUS-SCANNER"]


def test_the_boot_command_puts_the_saved_rules_back(fake, tmp_path, capsys):
    rule_list = firewallrules.chain_rules(fence())
    firewallboot.save(str(tmp_path), "DOCKER-USER", "SIRIUS-SCANNER", rule_list)
    assert firewallboot.main(str(tmp_path)) == 0
    assert fake.chains["SIRIUS-SCANNER"] == [" ".join(r) for r in rule_list]
    assert firewallboot.main(str(tmp_path / "none")) == 0 and "nothing to apply" in capsys.readouterr().err


def test_a_tampered_rules_file_is_not_applied(tmp_path):
    (tmp_path / firewallboot.RULES_FILE).write_text('{"rules": [["-s", "1.2.3.4 -j ACCEPT"]]}')
    assert firewallboot.load(str(tmp_path)) is None


def test_the_boot_unit_runs_the_firewall_command_before_docker():
    text = firewallboot.unit_text("/var/lib/sirius-demo", ["/usr/bin/python3", "/opt/sirius-demo/engine.pyz"])
    assert "Before=docker.service" in text and "WantedBy=docker.service" in text
    assert "ExecStart=/usr/bin/python3 /opt/sirius-demo/engine.pyz firewall --state-dir /var/lib/sirius-demo" in text
    assert "Type=oneshot" in text and "RemainAfterExit=yes" in text


# --- the override pins what the rules name --------------------------------------------------


def test_the_override_pins_the_engine_address_and_the_network():
    services = {"sirius-engine": {}, "sirius-api": {}}
    text = override.render(services, {s: f"r/{s}@sha256:1" for s in services}, fast_health=False,
                           start_period=60)
    engine_part = text.split("  sirius-engine:")[1].split("\nnetworks:")[0]
    assert f'networks: {{"default": {{"ipv4_address": "{rules.SCANNER_ADDRESS}"}}}}' in engine_part
    assert "ipv4_address" not in text.split("  sirius-engine:")[0]
    network = text.split("\nnetworks:\n")[1]
    assert f'"com.docker.network.bridge.name": "{rules.SIRIUS_BRIDGE}"' in network
    assert f'"subnet": "{rules.SIRIUS_SUBNET}"' in network and f'"ip_range": "{rules.SIRIUS_DYNAMIC_RANGE}"' in network


def test_the_pinned_address_is_in_the_subnet_and_outside_the_dynamic_range():
    subnet, dynamic = ipaddress.ip_network(rules.SIRIUS_SUBNET), ipaddress.ip_network(rules.SIRIUS_DYNAMIC_RANGE)
    address = ipaddress.ip_address(rules.SCANNER_ADDRESS)
    assert address in subnet and address not in dynamic and dynamic.subnet_of(subnet)
    assert not subnet.overlaps(ipaddress.ip_network("172.31.0.0/16"))  # the default VPC
    assert len(rules.SIRIUS_BRIDGE) <= 15


# --- flags and the deploy ----------------------------------------------------------------------


def test_scan_target_flags_are_validated_by_the_engine():
    s = settings.from_args(["--scan-targets", "203.0.113.0/28, 198.51.100.7/32,203.0.113.0/28"])
    assert s.scan_targets == ("203.0.113.0/28", "198.51.100.7/32") and s.firewall
    assert settings.from_args([]).scan_targets == () and settings.from_args([]).firewall_parent == "DOCKER-USER"
    assert not settings.from_args(["--no-firewall"]).firewall
    for argv, says in ((["--scan-targets", "0.0.0.0/0"], "whole internet"),
                       (["--scan-targets", "169.254.169.254/32"], "metadata"),
                       (["--scan-targets", "2001:db8::/32"], "IPv6"),
                       (["--firewall-parent", "x;y"], "chain name")):
        with pytest.raises(settings.SettingsError, match=says):
            settings.from_args(argv)


def test_a_firewall_that_cannot_be_applied_stops_the_deploy_before_the_switch(tmp_path, monkeypatch):
    d = deploy.Deploy(settings.from_args(["--state-dir", str(tmp_path)]))

    def refuse(self):
        raise firewall.FirewallError("the iptables chain DOCKER-USER does not exist")

    monkeypatch.setattr(firewall.Scanner, "plan", lambda self: setattr(self, "fence", fence()))
    monkeypatch.setattr(firewall.Scanner, "apply", refuse)
    with pytest.raises(deploy.DeployError, match="scanner firewall: the iptables chain DOCKER-USER"):
        d.fence()
    assert d.report.firewall["status"] == "failed" and not d.switched


def test_no_firewall_is_reported_as_off(tmp_path):
    d = deploy.Deploy(settings.from_args(["--state-dir", str(tmp_path), "--no-firewall"]))
    d.fence()
    assert d.report.firewall["status"] == "off" and d.fencing.scanner is None


def test_the_boot_unit_names_the_zipapp_the_engine_runs_from(tmp_path):
    import subprocess
    import sys

    from infra import bootstrap

    zipapp = tmp_path / "engine.pyz"
    zipapp.write_bytes(bootstrap.engine_archive())
    code = "import sys; sys.path.insert(0, sys.argv[1]); from engine import firewallboot; print(firewallboot.engine_command())"
    out = subprocess.run([sys.executable, "-c", code, str(zipapp)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == repr(["/usr/bin/python3", str(zipapp)])


def test_an_engine_running_elsewhere_is_fenced_where_it_runs(fake, monkeypatch, tmp_path):
    """A rollback to a deploy made before the fence runs the engine at a dynamic address."""
    engine = {"Config": {"Labels": {"com.docker.compose.service": "sirius-engine"}},
              "NetworkSettings": {"Networks": {"sirius": {"IPAddress": "172.18.0.7", "NetworkID": "n1"}}}}
    monkeypatch.setattr(firewall, "project_containers", lambda project: [engine])
    monkeypatch.setattr(firewall, "inspect_network", lambda nid: ("br-0123456789ab", "172.18.0.0/16"))
    scanner = firewall.Scanner((TARGET,), str(tmp_path), fence=fence())
    entry = scanner.after_up("sirius")
    assert entry["scanner"] == [ENGINE, "172.18.0.7"] and "not at the pinned" in entry["notes"][-1]
    applied = [line.split() for line in fake.chains["SIRIUS-SCANNER"]]
    assert verdict(applied, "172.18.0.7", "8.8.8.8", iface="br-0123456789ab") == "DROP"
    assert verdict(applied, "172.18.0.7", "203.0.113.2", iface="br-0123456789ab") == "RETURN"
    engine["NetworkSettings"]["Networks"]["sirius"]["IPAddress"] = ENGINE
    assert firewall.Scanner((TARGET,), str(tmp_path), fence=fence()).after_up("sirius") is None  # pinned: nothing to add
