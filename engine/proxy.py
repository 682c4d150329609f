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

The pure parts (caddyfile, service, through_problem, obtain_error, cert_summary) are
tested on their own (tests/engine/test_proxy.py, the Caddyfile also with the real caddy
binary); every value they write was validated by engine/settings.py.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone

from engine import plan, rules
from engine.docker import Compose, Result, log, project_containers, run
from engine.settings import Settings

SERVICE = "sirius-proxy"
VOLUME = "caddy_data"
# Named by content: the override a rollback restores mounts the Caddyfile it ran with.
CADDYFILE = "Caddyfile-{digest}"
CADDYFILE_MOUNT = "/etc/caddy/Caddyfile"
CA_ROOT_MOUNT = "/etc/caddy/acme-ca-root.pem"
DATA_DIR = "/data"  # the official image's XDG_DATA_HOME: certificates and ACME account
POLL_SECONDS = 1.0
THROUGH_POLL_SECONDS = 0.25
CHECK_TIMEOUT = 10.0
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
# Caddy's own log messages that carry why a certificate could not be had.
_ISSUER_FAILED = "could not get certificate from issuer"
_CHALLENGE_FAILED = "challenge failed"
_OBTAINING = "obtaining certificate"
_OBTAINED = "certificate obtained successfully"
_MAX_REASON = 1500
LOG_LINES = 2000


@dataclass(frozen=True)
class Ports:
    """Where Caddy listens for visitors and where it finds the services (rules' ports;
    the fast tests run the real caddy on free ones)."""

    ui: int = rules.UI_PORT
    api: int = rules.API_PORT
    ui_backend: int = rules.BACKEND_PORTS["sirius-ui"]
    api_backend: int = rules.BACKEND_PORTS["sirius-api"]


PORTS = Ports()


def listen_host(s: Settings) -> str:
    """Where the host itself reaches the proxy: its bind address, else loopback."""
    return rules.local_address(s.bind_address)


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


def is_updating_page(status: int, headers) -> bool:
    """Whether an answer is the proxy's "being updated" page (not a service's own 503)."""
    return status == 503 and (headers.get(UPDATING_HEADER) or "") == UPDATING_VALUE


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


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON - 3] + "..."


def obtain_error(log_text: str, domain: str) -> str | None:
    """Why Caddy has no certificate for `domain`, from its log; None when it did not fail.

    Caddy's "could not get certificate from issuer" often only says that no challenge is
    left; the CA's own answer (an ACME problem with its detail) is in the "challenge
    failed" lines of the same attempt, so both are quoted. A success after the last
    failure means there is nothing to report.
    """
    challenges: list[str] = []
    failure: str | None = None
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        names = {entry.get("identifier")} | set(entry.get("identifiers") or [])
        if domain not in names:
            continue
        msg = entry.get("msg")
        if msg == _OBTAINING:
            challenges = []
        elif msg == _CHALLENGE_FAILED:
            kind = entry.get("challenge_type") or "challenge"
            problem = entry.get("problem_type") or f"HTTP {entry.get('status_code', '?')}"
            item = f"{kind}: {problem}: {entry.get('error', '')}"
            if item not in challenges:
                challenges.append(item)
        elif msg == _ISSUER_FAILED:
            # The CA's answer first: Caddy's own summary is long and says less.
            said = f"the CA said: {'; '.join(challenges)}; " if challenges else ""
            failure = f"{_ISSUER_FAILED} {entry.get('issuer', '')}: {said}Caddy: {entry.get('error', '')}"
        elif msg == _OBTAINED:
            challenges, failure = [], None
    if failure is None and challenges:  # an attempt still under way when the budget ran out
        failure = "challenges failed: " + "; ".join(challenges)
    return _short(failure) if failure else None


def container_error(log_text: str) -> str | None:
    """A Caddy that stopped says why on a plain "Error:" line (a bad config, a port in use)."""
    for line in reversed(log_text.splitlines()):
        if line.startswith("Error:"):
            return _short(line)
    return None


def _name(parts) -> str:
    return ", ".join(f"{k}={v}" for rdn in parts or () for k, v in rdn)


def cert_summary(cert: dict) -> dict:
    """Issuer, names, expiry (UTC, ISO 8601) and serial from an `ssl` certificate dict."""
    not_after = cert.get("notAfter")
    expiry = (datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
              if not_after else None)
    return {
        "issuer": _name(cert.get("issuer")) or None,
        "names": [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"],
        "notAfter": expiry,
        "serial": cert.get("serialNumber"),
    }


def name_matches(names: list[str], domain: str) -> bool:
    """RFC 6125 matching for a certificate we did not verify: exact, or a one-label wildcard."""
    for name in (n.lower() for n in names):
        if name == domain or (name.startswith("*.") and domain.split(".", 1)[-1] == name[2:] and "." in domain):
            return True
    return False


def decode_der(der: bytes) -> dict:
    """The `ssl` dict of a certificate that was not verified (the staging CA's).

    The standard library decodes only files: CPython's own test helper, the one the
    `ssl` module uses for getpeercert(), does it without a third-party parser."""
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
        f.write(ssl.DER_cert_to_PEM_cert(der))
        f.flush()
        return ssl._ssl._test_decode_cert(f.name)  # noqa: SLF001


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to `ip` with SNI and Host = the domain: the proxy as a browser reaches it."""

    def __init__(self, domain: str, ip: str, port: int, context: ssl.SSLContext):
        super().__init__(domain, port, timeout=CHECK_TIMEOUT, context=context)
        self.ip, self.tls = ip, context
        self.peer: dict = {}

    def connect(self) -> None:
        raw = socket.create_connection((self.ip, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)
        self.peer = self.sock.getpeercert() or {}
        if not self.peer:  # not verified (staging): decode it ourselves
            self.peer = decode_der(self.sock.getpeercert(binary_form=True))


class Proxy:
    def __init__(self, settings: Settings):
        self.s = settings
        self.error = ""  # a problem found before the gate (the image could not be pulled)

    def prepare(self, timeout: float) -> dict:
        """Write the Caddyfile, pull the image if missing; the override's extra arguments.

        Runs before the project switches: when the image cannot be pulled (`error`), the
        deploy stops with the running stack and its proxy untouched."""
        s = self.s
        text = caddyfile(s)
        path = os.path.join(s.state_dir, CADDYFILE.format(digest=hashlib.sha256(text.encode()).hexdigest()[:16]))
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
        return {"extra_services": {SERVICE: service(s, path, text, root)}, "extra_volumes": (VOLUME,)}

    def context(self) -> tuple[ssl.SSLContext, str]:
        """How the certificate is judged: the private CA's roots, the system store, or
        (staging, whose roots no system trusts) only its name."""
        s = self.s
        if s.acme_ca_root:
            return ssl.create_default_context(cafile=s.acme_ca_root), "acme-ca-root"
        if s.acme_ca == "staging":
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            return ctx, "name only (staging CA)"
        return ssl.create_default_context(), "system"

    def check(self) -> tuple[dict, str | None]:
        """One look: the certificate, the UI and API through HTTPS, the redirect. (facts, problem)"""
        s, ip = self.s, listen_host(self.s)
        ctx, trust = self.context()
        facts: dict = {"trust": trust}
        conn = _Pinned(s.domain, ip, s.proxy_https_port, ctx)
        try:
            conn.request("GET", "/")
            ui = conn.getresponse()
            ui.read()
            facts.update(cert_summary(conn.peer))
            if not name_matches(facts["names"], s.domain):
                return facts, f"the certificate is for {facts['names']}, not {s.domain}"
            if ui.status >= 500:
                return facts, f"https://{s.domain}/ answered {ui.status} through the proxy"
            conn.request("GET", f"{rules.API_PATH}{rules.API_HEALTH_PATH}")
            api = conn.getresponse()
            api.read()
            facts["api"] = api.status == 200
            if not facts["api"]:
                return facts, f"https://{s.domain}{rules.API_PATH}{rules.API_HEALTH_PATH} answered {api.status}"
        except (OSError, http.client.HTTPException) as err:
            return facts, f"https://{s.domain}/: {err}"
        finally:
            conn.close()
        plain = http.client.HTTPConnection(ip, s.proxy_http_port, timeout=CHECK_TIMEOUT)
        try:
            plain.request("GET", "/", headers={"Host": s.domain})
            answer = plain.getresponse()
            answer.read()
            location = answer.getheader("Location") or ""
        except (OSError, http.client.HTTPException) as err:
            return facts, f"http://{s.domain}/: {err}"
        finally:
            plain.close()
        facts["redirect"] = redirects_to_https(answer.status, location, s.domain)
        if not facts["redirect"]:
            return facts, f"http://{s.domain}/ answered {answer.status} {location!r}, not a redirect to https://"
        return facts, None

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
            conn = http.client.HTTPConnection(host, port, timeout=CHECK_TIMEOUT)
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
            said = container_error((logs.out + logs.err) if logs else "")
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
            facts, problem = self.check()
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
                return done(f"{SERVICE} is not running: {container_error(text) or state.get('Status', 'missing')}")
            if expired:
                reason = obtain_error(text, s.domain)
                return done(f"no certificate within {s.cert_timeout}s: {reason}" if reason else problem)
            time.sleep(POLL_SECONDS)


def redirects_to_https(status: int, location: str, domain: str) -> bool:
    """Whether http://<domain>/ answered a redirect to https on the same name: the target's
    scheme and host are compared, not its text (https://demo.example.com.evil.net/ starts
    like https://demo.example.com and is somewhere else)."""
    if status not in (301, 302, 307, 308):
        return False
    try:
        target = urllib.parse.urlsplit(location)
        target.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError:
        return False
    return target.scheme == "https" and (target.hostname or "") == domain.lower() and "@" not in target.netloc
