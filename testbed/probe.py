"""What a visitor sees during an operation: GET one URL at a fixed rate (10 Hz) while it runs.

    from testbed.probe import Probe

    with Probe("http://127.0.0.1:3000/") as probe:
        site.deploy(TAG_V2)                      # a tag change, a rollback, a reset...
    result = probe.result
    assert result.refused == 0 and result.errors == [], result.summary()
    result.unavailable_seconds                  # how long the "being updated" page was shown

Each look is a new connection, as a visitor arriving: a port nobody listens on shows as
a refused connection, not as a failure hidden by a kept-alive socket. The looks are
paced from one clock (look k starts at k / rate seconds, or right after look k-1 when
that took longer), one at a time. Each is one of:

- ok: the service answered (any status below 500, not the proxy's page);
- updating: the proxy's "being updated" page (engine/proxyconfig.py): 503, its header,
  Retry-After;
- refused: the connection was refused;
- error: anything else: a reset, a timeout, another 5xx (a proxy's own error page), a
  503 without the marker or without Retry-After.

`unavailable_seconds` adds up, over the looks that got the page, the time until the next
look: at 10 Hz, a tenth of a second each.
"""

from __future__ import annotations

import errno
import http.client
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from engine.proxy import is_updating_page

RATE_HZ = 10.0
TIMEOUT_SECONDS = 5.0
OK, UPDATING, REFUSED, ERROR = "ok", "updating", "refused", "error"


@dataclass(frozen=True)
class Look:
    at: float  # seconds since the probe started
    kind: str
    detail: str  # the status, or the error


@dataclass
class ProbeResult:
    url: str
    period: float
    looks: list[Look] = field(default_factory=list)
    seconds: float = 0.0  # how long the probe ran

    def _count(self, kind: str) -> int:
        return sum(1 for look in self.looks if look.kind == kind)

    @property
    def ok(self) -> int:
        return self._count(OK)

    @property
    def updating(self) -> int:
        return self._count(UPDATING)

    @property
    def refused(self) -> int:
        return self._count(REFUSED)

    @property
    def errors(self) -> list[Look]:
        return [look for look in self.looks if look.kind == ERROR]

    def _spans(self) -> list[float]:
        """Each look's share of the time: until the next look (the last: one period)."""
        starts = [look.at for look in self.looks]
        return [b - a for a, b in zip(starts, starts[1:])] + ([self.period] if starts else [])

    @property
    def unavailable_seconds(self) -> float:
        return round(sum(span for look, span in zip(self.looks, self._spans()) if look.kind == UPDATING), 2)

    @property
    def longest_unavailable_seconds(self) -> float:
        """The longest stretch of looks that were not ok, in a row."""
        longest = current = 0.0
        for look, span in zip(self.looks, self._spans()):
            current = current + span if look.kind != OK else 0.0
            longest = max(longest, current)
        return round(longest, 2)

    def summary(self) -> dict:
        return {"url": self.url, "looks": len(self.looks), "seconds": round(self.seconds, 1), "ok": self.ok,
                "updating": self.updating, "refused": self.refused, "errors": len(self.errors),
                "unavailableSeconds": self.unavailable_seconds,
                "longestUnavailableSeconds": self.longest_unavailable_seconds,
                "firstProblems": [f"{look.at:.1f}s {look.kind}: {look.detail}"
                                  for look in self.looks if look.kind in (REFUSED, ERROR)][:10]}


def look_once(url: str, timeout: float = TIMEOUT_SECONDS) -> tuple[str, str]:
    """(kind, detail) of one GET of `url` on a new connection."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        answer = conn.getresponse()
        answer.read()
    except ConnectionRefusedError:
        return REFUSED, "connection refused"
    except OSError as err:
        if err.errno == errno.ECONNREFUSED:
            return REFUSED, "connection refused"
        return ERROR, f"{type(err).__name__}: {err}"
    except http.client.HTTPException as err:
        return ERROR, f"{type(err).__name__}: {err}"
    finally:
        conn.close()
    if is_updating_page(answer.status, answer.headers) and answer.getheader("Retry-After"):
        return UPDATING, "503"
    if answer.status >= 500:
        return ERROR, f"HTTP {answer.status} (not the proxy's page)"
    return OK, str(answer.status)


class Probe:
    """Looks at `url` at `rate` per second in a thread, from `start()` (or `with`) to `stop()`."""

    def __init__(self, url: str, rate: float = RATE_HZ, timeout: float = TIMEOUT_SECONDS):
        self.url, self.timeout = url, timeout
        self.result = ProbeResult(url, 1.0 / rate)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe {url}", daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        due = started
        while not self._stop.is_set():
            now = time.monotonic()
            if due > now:
                if self._stop.wait(due - now):
                    break
            at = time.monotonic()
            kind, detail = look_once(self.url, self.timeout)
            self.result.looks.append(Look(round(at - started, 3), kind, detail))
            due = max(due + self.result.period, time.monotonic())  # late: the next look now, no burst
        self.result.seconds = time.monotonic() - started

    def start(self) -> "Probe":
        self._thread.start()
        return self

    def stop(self) -> ProbeResult:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)
        return self.result

    def __enter__(self) -> "Probe":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
