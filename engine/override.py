"""The compose override the engine generates on top of upstream's files.

- every service runs the exact image it pulled (by digest), and compose never pulls;
- every published port is bound to 127.0.0.1; the UI's and the API's own ports
  (3000, 9001) move to rules.BACKEND_PORTS, because the proxy (engine/proxy.py, a
  service of the project) answers visitors on 3000 and 9001 and keeps answering, with
  a 503 "being updated" page, while those containers are replaced;
- when the Engine supports it, health checks run every second until first healthy
  (`start_period` + `start_interval`): upstream's 10-30 s intervals and no start period
  otherwise cost ~90 s of pure waiting along rabbitmq -> api -> ui on every start.
  Upstream's interval, timeout and retries stay for steady state;
- the sirius network gets a fixed subnet and bridge name, and sirius-engine a fixed
  address outside the range Docker hands out: the scanner's firewall (engine/firewall.py)
  knows it by that address from its first packet, and after a reboot.
"""

from __future__ import annotations

import json

from engine import rules

START_INTERVAL = "1s"
# Docker Engine 25 (API 1.44) and Compose 2.20.2 know start_interval.
MIN_API = (1, 44)
MIN_COMPOSE = (2, 20, 2)
# `!override` (ports re-bound to 127.0.0.1) needs Compose 2.24.4.
MIN_COMPOSE_OVERRIDE = (2, 24, 4)
MIN_COMPOSE_OVERRIDE_TEXT = "2.24.4"


# Merged into upstream's `networks: default` (name sirius, driver bridge).
PINNED_NETWORK = {
    "driver_opts": {"com.docker.network.bridge.name": rules.SIRIUS_BRIDGE},
    "ipam": {"config": [{"subnet": rules.SIRIUS_SUBNET, "ip_range": rules.SIRIUS_DYNAMIC_RANGE}]},
}


def version_tuple(text: str) -> tuple[int, ...]:
    digits = text.strip().lstrip("v").split("-")[0].split("+")[0]
    try:
        return tuple(int(part) for part in digits.split("."))
    except ValueError:
        return ()


def too_old_for_override(compose_version: str) -> bool:
    version = version_tuple(compose_version)
    return bool(version) and version < MIN_COMPOSE_OVERRIDE


def start_interval_support(api_version: str, compose_version: str) -> str | None:
    """None when the Engine and Compose support start_interval, else why not."""
    api, compose = version_tuple(api_version), version_tuple(compose_version)
    if not api or api < MIN_API:
        return f"Docker Engine API {api_version or '?'} is older than 1.44 (Engine 25)"
    if not compose or compose < MIN_COMPOSE:
        return f"Docker Compose {compose_version or '?'} is older than 2.20.2"
    return None


def _port(service: str, entry: dict) -> str:
    target = entry["target"]
    published = entry.get("published") or ""
    if rules.PUBLIC_SERVICES.get(service) == target:
        published = rules.BACKEND_PORTS[service]  # the proxy owns the public port
    spec = f"{published}:{target}" if published else str(target)
    return f"127.0.0.1:{spec}/{entry.get('protocol') or 'tcp'}"


def render(services: dict, images: dict[str, str], *, fast_health: bool,
           start_period: int, extra_services: dict | None = None, extra_volumes: tuple[str, ...] = ()) -> str:
    """YAML text (JSON scalars; `!override` needs YAML) of the override.

    `extra_services` (name -> compose spec) and `extra_volumes` are services the engine
    adds to the project (the proxy, engine/proxy.py), written as JSON flow maps.
    """
    lines = ["services:"]
    for name in sorted(services):
        spec = services[name]
        lines += [f"  {name}:", f"    image: {json.dumps(images[name])}", "    pull_policy: missing"]
        ports = spec.get("ports") or []
        if ports:
            lines.append(f"    ports: !override {json.dumps([_port(name, p) for p in ports])}")
        check = spec.get("healthcheck") or {}
        if fast_health and check and not check.get("disable"):
            lines += ["    healthcheck:", f"      start_period: {start_period}s",
                      f"      start_interval: {START_INTERVAL}"]
        if name == rules.SCANNER_SERVICE:
            lines.append(f"    networks: {json.dumps({'default': {'ipv4_address': rules.SCANNER_ADDRESS}})}")
    for name in sorted(extra_services or {}):
        lines.append(f"  {name}: {json.dumps(extra_services[name], sort_keys=True)}")
    if extra_volumes:
        lines += ["volumes:", *(f"  {name}: {{}}" for name in extra_volumes)]
    if rules.SCANNER_SERVICE in services:
        lines += ["networks:", f"  default: {json.dumps(PINNED_NETWORK, sort_keys=True)}"]
    return "\n".join(lines) + "\n"
