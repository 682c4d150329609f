"""The proxy in front of the demo: Caddy, a service of the compose project, always.

Visitors never reach the UI or the API container directly. Caddy (network_mode host)
listens on rules.UI_PORT and rules.API_PORT (and, with a domain, on 80/443 with
automatic HTTPS, the API under rules.API_PATH); the containers publish only on
127.0.0.1:rules.BACKEND_PORTS. While a container is being replaced, started or rolled
back, its port refuses and Caddy answers, instead of an error page, "the demo is being
updated": HTTP 503 with Retry-After, HTML for the UI and JSON for the API, marked with
the header UPDATING_HEADER so a gate or a probe can tell it from the services' own 503.

The proxy is not recreated unless what it reads changes (its Caddyfile, named by its
content, the CA root, the image): a tag change or a rollback leaves it running, as
compose sees nothing to do for it (a reset must leave it too, replacing the other
services, not the whole project). A config change recreates it (about a second of
refused connections): the admin API stays off (host network: any local process could
reconfigure it), Caddy v2 reloads on no signal, and `--watch` is for development and
keeps the old config silently when a new one is bad. See docs/proxy.md.

- `prepare` writes the Caddyfile into the state dir and pulls the pinned image when it
  is missing; it returns the `sirius-proxy` service for engine/override.py to add;
- `ensure` starts it (or recreates it when its config changed) before the services move,
  when it is not running or the override changed;
- `wait_through`, part of the health gate, waits for the UI and the API to answer
  through the proxy, not with the "being updated" page;
- `gate`, with a domain, after the stack is healthy, waits (its own budget,
  --cert-timeout) for https://<domain>/ with a certificate for the domain, the API under
  rules.API_PATH, and http:// redirecting to https://. When the certificate cannot be had,
  the reason is Caddy's, read from its JSON log lines.


What it writes and runs with (the Caddyfile, the compose service, the "being updated"
page) is engine/proxyconfig.py; the HTTPS checks are engine/proxyhttps.py; the reasons
read from Caddy's log are engine/caddylog.py. The pure parts are tested on their own
(tests/engine/test_proxy.py, the Caddyfile also with the real caddy binary).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time

from engine import caddylog, plan, proxyconfig, proxyhttps, rules
from engine.docker import Compose, Result, log, project_containers, run
from engine.proxyconfig import PORTS, Ports
from engine.settings import Settings

SERVICE = "sirius-proxy"
POLL_SECONDS = 1.0
THROUGH_POLL_SECONDS = 0.25
LOG_LINES = 2000


def listen_host(s: Settings) -> str:
    """Where the host itself reaches the proxy: its bind address, else loopback."""
    return rules.local_address(s.bind_address)


def is_updating_page(status: int, headers) -> bool:
    """Whether an answer is the proxy's "being updated" page (not a service's own 503)."""
    return status == 503 and (headers.get(proxyconfig.UPDATING_HEADER) or "") == proxyconfig.UPDATING_VALUE


def is_running(container: dict | None) -> bool:
    state = (container or {}).get("State") or {}
    return state.get("Status") == "running" and not state.get("Restarting")


def through_problem(ui: tuple[int, bool] | str, api: tuple[int, bool] | str) -> str | None:
    """Why visitors are not served through the proxy, from one look at each port:
    (status, is the updating page) or the connection error; None when both are served."""
    problems = []
    for name, port, path, seen in (("the UI", rules.UI_PORT, "/", ui), ("the API", rules.API_PORT, rules.API_HEALTH_PATH, api)):
        if isinstance(seen, str):
            problems.append(f"{name} (:{port}{path}): {seen}")
        elif seen[1]:
            problems.append(f"{name} (:{port}{path}) is behind the 'being updated' page: the proxy cannot reach it")
        elif seen[0] >= 500 or (name == "the API" and seen[0] != 200):
            problems.append(f"{name} (:{port}{path}) answered HTTP {seen[0]} through the proxy")
    return "; ".join(problems) or None


class Proxy:
    def __init__(self, settings: Settings):
        self.s = settings
        self.error = ""  # a problem found before the gate (the image could not be pulled)

    def prepare(self, timeout: float) -> dict:
        """Write the Caddyfile, pull the image if missing; the override's extra arguments.

        Runs before the project switches: when the image cannot be pulled (`error`), the
        deploy stops with the running stack and its proxy untouched."""
        s = self.s
        text = proxyconfig.caddyfile(s)
        path = os.path.join(s.state_dir, proxyconfig.CADDYFILE.format(digest=hashlib.sha256(text.encode()).hexdigest()[:16]))
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.chmod(path + ".tmp", 0o644)
        os.replace(path + ".tmp", path)
        root = ""
        if s.domain and s.acme_ca_root:
            try:
                root = open(s.acme_ca_root).read()
            except OSError as err:
                self.error = f"cannot read --acme-ca-root {s.acme_ca_root}: {err.strerror}"
                return {}
        if not run(["docker", "image", "inspect", s.proxy_image], timeout=60).ok:
            log(f"proxy: pulling {s.proxy_image}")
            pulled = run(["docker", "pull", "--quiet", s.proxy_image], timeout=max(min(timeout, 600), 30))
            if not pulled.ok:
                self.error = f"cannot pull the proxy image {s.proxy_image}: {pulled.last_line()}"
                return {}
        return {"extra_services": {SERVICE: proxyconfig.service(s, path, text, root)}, "extra_volumes": (proxyconfig.VOLUME,)}

    def container(self, project: str) -> dict | None:
        return next((c for c in project_containers(project) if plan.service_of(c) == SERVICE), None)

    def container_id(self, project: str) -> str | None:
        return (self.container(project) or {}).get("Id")

    def ensure(self, compose: Compose) -> Result:
        """Start the proxy, or recreate it when what it reads changed; nothing when it runs
        as configured (compose compares its config): before any service moves, so that
        visitors get the "being updated" page, not a refused connection."""
        result = compose("up", "-d", "--no-deps", SERVICE, timeout=300)
        if not result.ok:
            log(f"proxy: cannot start {SERVICE}: {result.last_line()}")
        return result

    def look_through(self, ports: Ports = PORTS) -> str | None:
        """One look at the UI and the API through the proxy's plain ports; None when served."""
        host = listen_host(self.s)
        seen = []
        for port, path in ((ports.ui, "/"), (ports.api, rules.API_HEALTH_PATH)):
            conn = http.client.HTTPConnection(host, port, timeout=proxyhttps.CHECK_TIMEOUT)
            try:
                conn.request("GET", path, headers={"Connection": "close"})
                answer = conn.getresponse()
                answer.read()
                seen.append((answer.status, is_updating_page(answer.status, answer.headers)))
            except (OSError, http.client.HTTPException) as err:
                seen.append(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
            finally:
                conn.close()
        return through_problem(*seen)

    def wait_through(self, project: str, deadline: float) -> dict:
        """The health gate's last step: the UI and the API answer through the proxy (not
        with the "being updated" page) before `deadline` (time.time()). The report's
        `proxy` entry; `error` says why not, with Caddy's own words when it stopped."""
        started = time.monotonic()
        entry = {"image": self.s.proxy_image, "listens": [rules.UI_PORT, rules.API_PORT], "recreated": None,
                 "throughSeconds": None, "error": None}
        while True:
            problem = self.look_through()
            if problem is None or time.time() >= deadline:
                break
            time.sleep(THROUGH_POLL_SECONDS)
        entry["throughSeconds"] = round(time.monotonic() - started, 1)
        if problem is None:
            log(f"proxy: the UI and the API answer through {SERVICE} on :{rules.UI_PORT} and :{rules.API_PORT}")
        else:
            c = self.container(project)
            logs = run(["docker", "logs", "--tail", "50", c["Id"]], timeout=60) if c else None
            said = caddylog.container_error((logs.out + logs.err) if logs else "")
            state = ((c or {}).get("State") or {}).get("Status", "missing")
            entry["error"] = f"not serving through {SERVICE} ({state}): {problem}" + (f"; Caddy: {said}" if said else "")
        return entry

    def gate(self, project: str) -> dict:
        """The HTTPS facts for the report's `proxy` entry; `error` set when HTTPS does not work."""
        s = self.s
        started = time.monotonic()
        report = {"domain": s.domain, "https": "failed", "image": s.proxy_image, "trust": None, "issuer": None,
                  "notAfter": None, "serial": None, "redirect": False, "api": False, "seconds": 0.0, "error": None}

        def done(problem: str | None) -> dict:
            report["seconds"] = round(time.monotonic() - started, 1)
            report["https"], report["error"] = ("ok", None) if problem is None else ("failed", problem)
            return report

        if self.error:
            return done(self.error)
        log(f"proxy: waiting up to {s.cert_timeout}s for https://{s.domain}/ ({rules.acme_directory(s.acme_ca)})")
        deadline = started + s.cert_timeout
        while True:
            facts, problem = proxyhttps.check(s, listen_host(s))
            report.update({k: v for k, v in facts.items() if k in report})
            if problem is None:
                log(f"proxy: https://{s.domain}/ ok; certificate from {report['issuer']} until {report['notAfter']}")
                return done(None)
            c = self.container(project)
            state = (c or {}).get("State") or {}
            stopped = c is None or state.get("Status") in ("exited", "dead") or state.get("Restarting")
            expired = time.monotonic() >= deadline
            if stopped or expired:
                # Caddy logs to stderr; the tail holds this start's attempts (it logs no access lines).
                logs = run(["docker", "logs", "--tail", str(LOG_LINES), c["Id"]], timeout=60) if c else None
                text = (logs.out + logs.err) if logs else ""
            if stopped:
                return done(f"{SERVICE} is not running: {caddylog.container_error(text) or state.get('Status', 'missing')}")
            if expired:
                reason = caddylog.obtain_error(text, s.domain)
                return done(f"no certificate within {s.cert_timeout}s: {reason}" if reason else problem)
            time.sleep(POLL_SECONDS)
