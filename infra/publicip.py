"""The public IPv4 of the machine running Pulumi, for `sshCidrs: auto`.

One bounded HTTPS GET. `SIRIUS_DEMO_IP_LOOKUP_URL` points it elsewhere (a
corporate echo service, or a local server in tests).
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
import urllib.request

DEFAULT_URL = "https://checkip.amazonaws.com"
URL_VARIABLE = "SIRIUS_DEMO_IP_LOOKUP_URL"
TIMEOUT_SECONDS = 5.0


def proxy_note(url: str | None = None) -> str | None:
    """A warning when the lookup goes through an HTTP(S) proxy (HTTPS_PROXY and friends, as
    urllib reads them): the echo service then sees the proxy's address, not this machine's.
    Names the proxy by host and port only, never its credentials."""
    url = url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    where = proxy_parts.hostname + (f":{proxy_parts.port}" if proxy_parts.port else "")
    return (
        f"sshCidrs: auto asked {url} through the proxy {where}, so the address it found is the proxy's "
        "egress address, not necessarily this machine's; if the SSH commands time out, set sshCidrs "
        "to your own public IPv4 as a /32"
    )


def lookup_public_ipv4(url: str | None = None, timeout: float = TIMEOUT_SECONDS) -> str:
    """Return the caller's public IPv4 as text, or raise with a short reason."""
    url = url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed or operator-set URL
        body = response.read(64).decode("ascii", "replace").strip()
    try:
        address = ipaddress.IPv4Address(body)
    except ValueError:
        raise ValueError(f"{url} answered {body[:40]!r}, not an IPv4 address") from None
    if not address.is_global:
        raise ValueError(f"{url} answered {address}, which is not a public address")
    return str(address)
