"""The scanner's rules across reboots: saved by the deploy, put back by a systemd unit
ordered before docker.service (`engine firewall`), before Docker restarts the containers."""

from __future__ import annotations

import json
import os
import sys

from engine import rules
from engine.docker import run
from engine.iptables import FirewallError, apply

RULES_FILE = "firewall.json"
UNIT_NAME = "sirius-scanner-firewall.service"
UNIT_DIR = "/etc/systemd/system"


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


def engine_command() -> list[str]:
    """How systemd runs this engine: the zipapp it was started from, else the checkout."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    container = os.path.dirname(package_dir)
    if os.path.isfile(container):  # .../engine.pyz/engine/firewallboot.py
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
