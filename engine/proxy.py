"""The HTTPS proxy in front of the demo: Caddy, a service of the compose project.

Only when the deploy has a domain (Settings.domain); without one nothing here runs and
the override is what it always was. With one:

- `prepare` writes the Caddyfile into the state dir, pulls the pinned proxy image when
  it is missing, and returns the `sirius-proxy` service (network_mode host: it reaches
  the UI and API on the host's ports; certificates and the ACME account in the named
  volume `caddy_data`, so a redeploy or a new container never asks for a new
  certificate) for engine/override.py to add;
- `gate`, after the stack itself is healthy, waits (its own budget, --cert-timeout) for
  https://<domain>/ to answer through the proxy with a certificate for the domain, the
  API under rules.API_PATH, and http:// redirecting to https://. When the certificate
  cannot be had, the reason is Caddy's, read from its JSON log lines.

The pure parts (caddyfile, service, obtain_error, cert_summary) are tested on their own
(tests/engine/test_proxy.py); every value they write was validated by engine/settings.py.
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
from datetime import datetime, timezone

from engine import plan, rules
from engine.docker import Compose, log, project_containers, run
from engine.settings import Settings

SERVICE = "sirius-proxy"
VOLUME = "caddy_data"
# Named by content: the override a rollback restores mounts the Caddyfile it ran with.
CADDYFILE = "Caddyfile-{digest}"
CADDYFILE_MOUNT = "/etc/caddy/Caddyfile"
CA_ROOT_MOUNT = "/etc/caddy/acme-ca-root.pem"
DATA_DIR = "/data"  # the official image's XDG_DATA_HOME: certificates and ACME account
POLL_SECONDS = 1.0
CHECK_TIMEOUT = 10.0
# Caddy's own log messages that carry why a certificate could not be had.
_ISSUER_FAILED = "could not get certificate from issuer"
_CHALLENGE_FAILED = "challenge failed"
_OBTAINING = "obtaining certificate"
_OBTAINED = "certificate obtained successfully"
_MAX_REASON = 1500
LOG_LINES = 2000


def upstream_host(s: Settings) -> str:
    """Where the proxy (host network) reaches the UI and API."""
    return rules.local_address(s.bind_address)


def caddyfile(s: Settings) -> str:
    """The Caddyfile for `s.domain`: automatic HTTPS, the API under rules.API_PATH (prefix stripped)."""
    upstream = upstream_host(s)
    options = ["\tadmin off"]  # host network: an admin API on localhost would let any local process reconfigure it
    if s.acme_email:
        options.append(f"\temail {s.acme_email}")
    options.append(f"\tacme_ca {rules.acme_directory(s.acme_ca)}")
    if s.acme_ca_root:
        options.append(f"\tacme_ca_root {CA_ROOT_MOUNT}")
    options += [f"\thttp_port {s.proxy_http_port}", f"\thttps_port {s.proxy_https_port}"]
    if s.bind_address:
        options.append(f"\tdefault_bind {s.bind_address}")
    return "\n".join([
        "# Written by the sirius-demo engine (engine/proxy.py); rewritten at every deploy.",
        "{", *options, "}", "",
        f"{s.domain} {{",
        f"\tredir {rules.API_PATH} {rules.API_PATH}/",
        f"\thandle_path {rules.API_PATH}/* {{",
        f"\t\treverse_proxy {upstream}:{rules.API_PORT}",
        "\t}",
        "\thandle {",
        f"\t\treverse_proxy {upstream}:{rules.UI_PORT}",
        "\t}",
        "}", "",
    ])


def service(s: Settings, caddyfile_path: str, caddyfile_text: str, ca_root_text: str = "") -> dict:
    """The compose spec of the proxy. The label carries the digest of what is mounted, so a
    changed Caddyfile or CA root recreates the container (Caddy reads them at start)."""
    digest = hashlib.sha256((caddyfile_text + "\0" + ca_root_text).encode()).hexdigest()
    volumes = [f"{VOLUME}:{DATA_DIR}", f"{caddyfile_path}:{CADDYFILE_MOUNT}:ro"]
    if s.acme_ca_root:
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

        Without a domain: {} (the override stays what it always was). Runs before the
        project switches: when the image cannot be pulled (`error`), the deploy stops with
        the running stack and its proxy untouched."""
        s = self.s
        if not s.domain:
            return {}
        text = caddyfile(s)
        path = os.path.join(s.state_dir, CADDYFILE.format(digest=hashlib.sha256(text.encode()).hexdigest()[:16]))
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.chmod(path + ".tmp", 0o644)
        os.replace(path + ".tmp", path)
        root = ""
        if s.acme_ca_root:
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
        s, ip = self.s, upstream_host(self.s)
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

    def gate(self, compose: Compose, project: str) -> dict:
        """The `proxy` entry of the report; `error` set when HTTPS does not work."""
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
        # `up` already made it when the project changed; this starts it when only images did.
        started_up = compose("up", "-d", "--no-deps", SERVICE, timeout=300)
        if not started_up.ok:
            return done(f"cannot start {SERVICE}: {started_up.last_line()}")
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
