"""The scanner's firewall on a real Engine: a deployed stand-in sirius-engine reaches a
listed target and nothing else on a second network standing in for the internet, over
TCP and raw ICMP; the API stand-in keeps its outbound access; DNS through Docker's
embedded resolver still answers; after a simulated reboot (rules gone, daemon
restarted, `engine firewall` as the boot unit runs it) the fence holds again.

The test Engine runs with --iptables=false (no DOCKER-USER): this test creates what
Docker would, scoped to its own bridges, under names of its own (a parent chain that
FORWARD jumps to for packets from br-sirius, given to the engine with
--firewall-parent; accepts for its two bridges so the result never depends on the
FORWARD policy; forwarding on those two bridges only), and removes exactly that after.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from engine import rules
from infra import commands
from testbed.standins import TAG_V1

from .site import Site

PARENT = f"SDT-USER-{os.getpid() % 100000}"  # stands in for DOCKER-USER
INTERNET = f"sdt-internet-{os.getpid() % 100000}"
INTERNET_BRIDGE = f"sdt-in{os.getpid() % 100000}"
INTERNET_SUBNET = "198.51.100.0/24"  # TEST-NET-2: nothing real lives there
LISTED = "198.51.100.10"
UNLISTED = "198.51.100.20"
PORT = 8080


def iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["iptables", "-w", "30", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"iptables {' '.join(args)}: {result.stderr.strip()}")
    return result


def chain_exists(name: str) -> bool:
    return iptables("-S", name, check=False).returncode == 0


# What this test adds to FORWARD: Docker's jump to its user chain, then Docker's accepts.
FORWARD_RULES = [
    ["-i", rules.SIRIUS_BRIDGE, "-j", PARENT],
    ["-i", rules.SIRIUS_BRIDGE, "-o", INTERNET_BRIDGE, "-j", "ACCEPT"],
    ["-i", INTERNET_BRIDGE, "-o", rules.SIRIUS_BRIDGE, "-j", "ACCEPT"],
]


def set_forwarding(device: str, value: str) -> None:
    path = f"/proc/sys/net/ipv4/conf/{device}/forwarding"
    if os.path.exists(path):
        with open(path, "w") as f:
            f.write(value)


@pytest.fixture
def docker_like_forward(clean_project):
    """The chains Docker would create, scoped to this test; removed after, exactly."""
    if chain_exists(rules.FIREWALL_CHAIN):
        pytest.fail(f"iptables chain {rules.FIREWALL_CHAIN} exists before the test: another run's? not touching it")
    policy = iptables("-S", "FORWARD").stdout.splitlines()[0]
    iptables("-N", PARENT)
    for position, rule in enumerate(FORWARD_RULES, start=1):
        iptables("-I", "FORWARD", str(position), *rule)
    try:
        yield
    finally:
        for rule in FORWARD_RULES:
            iptables("-D", "FORWARD", *rule, check=False)
        for chain in (PARENT, rules.FIREWALL_CHAIN):
            if chain_exists(chain):
                iptables("-F", chain)
        for chain in (PARENT, rules.FIREWALL_CHAIN):
            if chain_exists(chain):
                iptables("-X", chain)
        for device in (rules.SIRIUS_BRIDGE, INTERNET_BRIDGE):
            set_forwarding(device, "0")
        assert iptables("-S", "FORWARD").stdout.splitlines()[0] == policy  # the policy never changes


@pytest.fixture
def internet(docker_like_forward, clean_project, standins):
    """A second network with two small HTTP servers: one listed in scanTargets, one not."""
    engine = clean_project
    engine.run("network", "create", "--driver", "bridge", "--subnet", INTERNET_SUBNET,
               "-o", f"com.docker.network.bridge.name={INTERNET_BRIDGE}", INTERNET)
    image = standins.image("sirius-valkey", TAG_V1)  # any stand-in: busybox httpd serves its /etc
    names = []
    try:
        for address in (LISTED, UNLISTED):
            name = f"sdt-server-{address.rsplit('.', 1)[1]}-{os.getpid() % 100000}"
            engine.run("run", "-d", "--restart", "unless-stopped", "--name", name, "--network", INTERNET,
                       "--ip", address, "--entrypoint", "/bin/busybox", image,
                       "httpd", "-f", "-p", str(PORT), "-h", "/etc/sirius-standin")
            names.append(name)
        set_forwarding(INTERNET_BRIDGE, "1")
        yield engine
    finally:
        if names:
            engine.run("rm", "-f", *names, check=False)
        engine.run("network", "rm", INTERNET, check=False)


def exec_in(engine, service: str, *argv: str, root: bool = False, timeout: float = 30) -> subprocess.CompletedProcess:
    user = ["-u", "0"] if root else []
    return engine.run("exec", *user, service, *argv, check=False, timeout=timeout)


def reaches(engine, service: str, address: str) -> bool:
    """An HTTP answer from the server at `address` within 3 s."""
    # busybox 1.35's wget has no -T (it crashes on it): `timeout` ends a connect that gets no answer.
    got = exec_in(engine, service, "timeout", "3", "wget", "-q", "-O", "-", f"http://{address}:{PORT}/service")
    return got.returncode == 0 and "sirius-valkey" in got.stdout


def pings(engine, service: str, address: str) -> bool:
    """A raw-socket ICMP echo (root with NET_RAW, as nmap's host discovery sends them)."""
    return exec_in(engine, service, "ping", "-c", "1", "-W", "2", address, root=True).returncode == 0


def diagnostics(engine) -> str:
    """What a failed reach needs explained: counters, routes, forwarding switches."""
    parts = [iptables("-L", "FORWARD", "-v", "-n", check=False).stdout,
             iptables("-L", rules.FIREWALL_CHAIN, "-v", "-n", check=False).stdout,
             exec_in(engine, "sirius-engine", "ip", "route").stdout,
             engine.run("ps", "-a", "--format", "{{.Names}} {{.Status}}", check=False).stdout]
    for device in (rules.SIRIUS_BRIDGE, INTERNET_BRIDGE):
        path = f"/proc/sys/net/ipv4/conf/{device}/forwarding"
        parts.append(f"{path}: {open(path).read().strip() if os.path.exists(path) else 'missing'}")
    return "\n".join(parts)


def assert_fenced(engine) -> None:
    assert reaches(engine, "sirius-engine", LISTED), "the listed target does not answer:\n" + diagnostics(engine)
    assert pings(engine, "sirius-engine", LISTED), diagnostics(engine)
    assert not reaches(engine, "sirius-engine", UNLISTED), "the scanner reached an address it must not"
    assert not pings(engine, "sirius-engine", UNLISTED), "a raw ICMP echo left for an address it must not"


def test_the_scanner_reaches_its_targets_and_nothing_else(tmp_path, internet, registry, sirius_repo):
    engine = internet
    site = Site(tmp_path, engine, registry, sirius_repo)
    deploy = site.deploy(TAG_V1, firewall=True, firewall_parent=PARENT, scan_targets=(f"{LISTED}/32",))
    assert deploy.code == 0, deploy.stderr[-3000:]
    entry = deploy.report["firewall"]
    assert entry["status"] == "applied" and entry["error"] is None, entry
    assert (entry["parent"], entry["chain"], entry["targets"]) == (PARENT, rules.FIREWALL_CHAIN, [f"{LISTED}/32"])
    assert entry["scanner"] == [rules.SCANNER_ADDRESS] and entry["bootUnit"] is None  # not Docker's chain: no unit
    listed = iptables("-S", rules.FIREWALL_CHAIN).stdout.splitlines()
    assert len([line for line in listed if line.startswith("-A ")]) == entry["rules"]
    assert iptables("-S", PARENT).stdout.splitlines()[1:] == [f"-A {PARENT} -j {rules.FIREWALL_CHAIN}"]

    engine_ip = json.loads(engine.run("inspect", "sirius-engine").stdout)[0]["NetworkSettings"]["Networks"]["sirius"]
    assert engine_ip["IPAddress"] == rules.SCANNER_ADDRESS
    set_forwarding(rules.SIRIUS_BRIDGE, "1")  # the test Engine runs --ip-forward=false

    assert_fenced(engine)
    # Other containers keep their own way out (NVD, registries): the API stand-in reaches both.
    assert reaches(engine, "sirius-api", UNLISTED) and reaches(engine, "sirius-api", LISTED)
    # Its own stack, by name through Docker's embedded resolver.
    assert exec_in(engine, "sirius-engine", "nslookup", "sirius-api", "127.0.0.11").returncode == 0
    assert exec_in(engine, "sirius-engine", "timeout", "3", "wget", "-q", "-O", "-",
                   "http://sirius-api:9001/health").returncode == 0

    # Deploying again gives the same rules, one jump.
    again = site.deploy(TAG_V1, firewall=True, firewall_parent=PARENT, scan_targets=(f"{LISTED}/32",))
    assert again.code == 0 and again.report["firewall"]["rules"] == entry["rules"]
    assert iptables("-S", rules.FIREWALL_CHAIN).stdout.splitlines() == listed
    assert iptables("-S", PARENT).stdout.splitlines()[1:] == [f"-A {PARENT} -j {rules.FIREWALL_CHAIN}"]

    # A reboot: the kernel forgets every rule and Docker restarts the containers by itself.
    iptables("-D", "FORWARD", *FORWARD_RULES[0])
    for chain in (PARENT, rules.FIREWALL_CHAIN):
        iptables("-F", chain)
    for chain in (PARENT, rules.FIREWALL_CHAIN):
        iptables("-X", chain)
    engine.stop_daemon()
    boot = subprocess.run(commands.engine_argv("firewall", str(site.zipapp)) + ["--state-dir", str(site.state)],
                          capture_output=True, text=True, timeout=120)  # what the unit runs, before Docker
    assert boot.returncode == 0, boot.stderr
    iptables("-I", "FORWARD", "1", *FORWARD_RULES[0])  # what Docker does at its start
    engine.start_daemon()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (site.containers().get("sirius-engine", {}).get("status") == "running"
                                               and site.containers().get("sirius-api", {}).get("health") == "healthy"):
        time.sleep(1)
    restarted = json.loads(engine.run("inspect", "sirius-engine").stdout)[0]["NetworkSettings"]["Networks"]["sirius"]
    assert restarted["IPAddress"] == rules.SCANNER_ADDRESS  # the pinned address survives Docker's restart
    set_forwarding(rules.SIRIUS_BRIDGE, "1")
    assert_fenced(engine)
    assert reaches(engine, "sirius-api", UNLISTED)
