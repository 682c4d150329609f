"""HTTP requests to the test bed's services on 127.0.0.1: no proxy, no raise on 4xx/5xx."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Mapping

from .daemon import HarnessError


def http_request(url: str, method: str = "GET", data: bytes | None = None,
                 headers: Mapping[str, str] | None = None,
                 timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one HTTP request; no proxy, no raise on 4xx/5xx."""
    return http_get(url, timeout=timeout, headers=headers, method=method, data=data)


def http_get(url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None,
              method: str = "GET", data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def wait_http(url: str, timeout: float = 60.0, status: int = 200,
              headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """Poll ``url`` until it answers ``status``; return (status, body)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            code, _, body = http_get(url, timeout=3, headers=headers)
            if code == status:
                return code, body
            last = f"HTTP {code}: {body[:200]!r}"
        except OSError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise HarnessError(f"{url} did not answer {status} within {timeout}s (last: {last})")
        time.sleep(0.25)


