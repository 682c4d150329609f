"""The HTTPS gate's checks: the certificate Caddy serves, its names, the redirect to https://.

Pure but for `check`, which makes one HTTPS request for the UI and the API and one plain
request for the redirect, to the proxy's own address with SNI and Host = the domain (as
a browser reaches it). engine/proxy.py's `gate` repeats it until it passes or the
--cert-timeout budget runs out.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import tempfile
import urllib.parse
from datetime import datetime, timezone

from engine import rules
from engine.settings import Settings

CHECK_TIMEOUT = 10.0  # one request through the proxy, plain or HTTPS


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



def trust_context(s: Settings) -> tuple[ssl.SSLContext, str]:
    """How the certificate is judged: the private CA's roots, the system store, or
    (staging, whose roots no system trusts) only its name."""
    if s.acme_ca_root:
        return ssl.create_default_context(cafile=s.acme_ca_root), "acme-ca-root"
    if s.acme_ca == "staging":
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        return ctx, "name only (staging CA)"
    return ssl.create_default_context(), "system"


def check(s: Settings, ip: str) -> tuple[dict, str | None]:
    """One look at the proxy on `ip`: the certificate, the UI and API through HTTPS, the
    redirect. (facts, problem)"""
    ctx, trust = trust_context(s)
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
