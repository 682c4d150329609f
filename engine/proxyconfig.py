"""What the proxy runs with: its Caddyfile, its compose service, the "being updated" answer.

Caddy (network_mode host) listens on rules.UI_PORT and rules.API_PORT (and, with a
domain, on 80/443 with automatic HTTPS, the API under rules.API_PATH) and forwards to
127.0.0.1:rules.BACKEND_PORTS. When a service refuses (being replaced, started or
rolled back), Caddy answers "the demo is being updated": HTTP 503 with Retry-After,
HTML for the UI and JSON for the API, marked with UPDATING_HEADER so a gate or a probe
can tell it from the services' own 503 (engine.proxy.is_updating_page). The admin API
stays off: on the host network any local process could reconfigure Caddy.

Pure: engine/proxy.py writes the file and runs the container; every value written here
was validated by engine/settings.py. See docs/proxy.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from engine import rules
from engine.settings import Settings

VOLUME = "caddy_data"
# Named by content: the override a rollback restores mounts the Caddyfile it ran with.
CADDYFILE = "Caddyfile-{digest}"
CADDYFILE_MOUNT = "/etc/caddy/Caddyfile"
CA_ROOT_MOUNT = "/etc/caddy/acme-ca-root.pem"
DATA_DIR = "/data"  # the official image's XDG_DATA_HOME: certificates and ACME account
# What visitors get while a service is down: 503, this header, and Retry-After (seconds;
# the HTML page reloads itself as often).
UPDATING_HEADER = "Sirius-Demo"
UPDATING_VALUE = "updating"
RETRY_AFTER_SECONDS = 15
UPDATING_MESSAGE = "The demo is being updated, back in a minute."
UPDATING_HTML = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                 f'<meta http-equiv="refresh" content="{RETRY_AFTER_SECONDS}"><title>Sirius demo: updating</title>'
                 f'</head><body style="font-family:sans-serif;text-align:center;margin-top:20vh">'
                 f'<h1>Sirius Scan demo</h1><p>{UPDATING_MESSAGE}</p>'
                 f'<p>This page reloads itself.</p></body></html>')
UPDATING_JSON = json.dumps({"status": UPDATING_VALUE, "message": UPDATING_MESSAGE}, separators=(",", ":"))


@dataclass(frozen=True)
class Ports:
    """Where Caddy listens for visitors and where it finds the services (rules' ports;
    the fast tests run the real caddy on free ones)."""

    ui: int = rules.UI_PORT
    api: int = rules.API_PORT
    ui_backend: int = rules.BACKEND_PORTS["sirius-ui"]
    api_backend: int = rules.BACKEND_PORTS["sirius-api"]


PORTS = Ports()

def _updating(kind: str, indent: str) -> list[str]:
    """The "being updated" answer: Caddy's own errors (502 refused, 504...) become this 503."""
    body, content_type = (UPDATING_JSON, "application/json") if kind == "json" else (UPDATING_HTML, '"text/html; charset=utf-8"')
    return [f"{indent}header Retry-After {RETRY_AFTER_SECONDS}", f"{indent}header Cache-Control no-store",
            f"{indent}header {UPDATING_HEADER} {UPDATING_VALUE}", f"{indent}header Content-Type {content_type}",
            f"{indent}respond `{body}` 503"]


def caddyfile(s: Settings, ports: Ports = PORTS) -> str:
    """The Caddyfile: plain HTTP on the UI's and API's ports; with `s.domain`, also
    automatic HTTPS for it, the API under rules.API_PATH (prefix stripped)."""
    ui, api = f"127.0.0.1:{ports.ui_backend}", f"127.0.0.1:{ports.api_backend}"
    options = ["\tadmin off"]  # host network: an admin API on localhost would let any local process reconfigure it
    if s.domain:
        if s.acme_email:
            options.append(f"\temail {s.acme_email}")
        options.append(f"\tacme_ca {rules.acme_directory(s.acme_ca)}")
        if s.acme_ca_root:
            options.append(f"\tacme_ca_root {CA_ROOT_MOUNT}")
        options += [f"\thttp_port {s.proxy_http_port}", f"\thttps_port {s.proxy_https_port}"]
    if s.bind_address:
        options.append(f"\tdefault_bind {s.bind_address}")
    lines = ["# Written by the sirius-demo engine (engine/proxy.py); rewritten at every deploy.",
             "{", *options, "}", "",
             f"http://:{ports.ui} {{", "\thandle_errors {", *_updating("html", "\t\t"), "\t}",
             f"\treverse_proxy {ui}", "}", "",
             f"http://:{ports.api} {{", "\thandle_errors {", *_updating("json", "\t\t"), "\t}",
             f"\treverse_proxy {api}", "}", ""]
    if s.domain:
        lines += [
            f"{s.domain} {{",
            "\thandle_errors {",
            # handle_path has stripped the prefix by now: the original path tells the API's errors.
            f'\t\t@api expression `{{http.request.orig_uri.path}}.startsWith("{rules.API_PATH}/")`',
            "\t\thandle @api {", *_updating("json", "\t\t\t"), "\t\t}",
            "\t\thandle {", *_updating("html", "\t\t\t"), "\t\t}",
            "\t}",
            f"\tredir {rules.API_PATH} {rules.API_PATH}/",
            f"\thandle_path {rules.API_PATH}/* {{",
            f"\t\treverse_proxy {api}",
            "\t}",
            "\thandle {",
            f"\t\treverse_proxy {ui}",
            "\t}",
            "}", "",
        ]
    return "\n".join(lines)


def service(s: Settings, caddyfile_path: str, caddyfile_text: str, ca_root_text: str = "") -> dict:
    """The compose spec of the proxy. The label carries the digest of what is mounted, so a
    changed Caddyfile or CA root recreates the container (Caddy reads them at start)."""
    digest = hashlib.sha256((caddyfile_text + "\0" + ca_root_text).encode()).hexdigest()
    volumes = [f"{VOLUME}:{DATA_DIR}", f"{caddyfile_path}:{CADDYFILE_MOUNT}:ro"]
    if s.domain and s.acme_ca_root:
        volumes.append(f"{s.acme_ca_root}:{CA_ROOT_MOUNT}:ro")
    return {
        "image": s.proxy_image,
        "pull_policy": "missing",
        "network_mode": "host",
        "restart": "unless-stopped",
        "command": ["caddy", "run", "--config", CADDYFILE_MOUNT, "--adapter", "caddyfile"],
        "environment": {"XDG_DATA_HOME": DATA_DIR, "XDG_CONFIG_HOME": "/config"},
        "volumes": volumes,
        "labels": {"io.sirius-demo.proxy-config": digest},
    }
