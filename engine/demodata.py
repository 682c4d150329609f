"""Demo data: a fictional company's hosts, loaded through the Sirius API once per data volume.

Once the API passes its health check (EarlyLoad), `seed` loads demo-hosts.json (carried
inside the zipapp) in upstream's model (go-api's Host: ports by `number`, `services`,
vulnerabilities with `riskScore`, the CVE's CVSS v3 base score):
1. `POST /vulnerability` for each CVE the API does not list yet, so that `POST /host`
   finds every CVE stored and never asks NVD inside the request;
2. `POST /host` for each host whose ip or hid the API does not list (`GET /host`),
   with `X-Scanner-Name: sirius-demo` (else the API credits urllib's "python-script");
3. one `POST /api/v1/statistics/vulnerability-snapshot`, so the trends chart has a point;
4. a read-back: the report gives what `GET /host` and `GET /host/vulnerabilities/all`
   answer (the data set's hosts listed with their ports, its CVEs listed with a score),
   not the number of POSTs.
The marker that makes it once per data volume is engine/demomarker.py; the payloads and
the read-back are engine/demomodel.py. It never fails a deploy: short timeouts, a total
budget, and whatever goes wrong becomes the report's `reason`, with the API key redacted.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request

from engine import demomarker, demomodel, envfile, rules
from engine.docker import log
from engine.settings import Settings

SCANNER_NAME = "sirius-demo"  # X-Scanner-Name: the source the API records for these hosts
HOSTS_ROUTE = "/host"
VULNERABILITY_ROUTE = "/vulnerability"
VULNERABILITY_LIST_ROUTE = "/host/vulnerabilities/all"  # the CVEs linked to at least one host
SNAPSHOT_ROUTE = "/api/v1/statistics/vulnerability-snapshot"
REQUEST_SECONDS = 5.0
API_SERVICE = "sirius-api"  # the service the load posts to: it starts when this one passes its check
BUDGET_SECONDS = 90.0  # seeding starts when the API is healthy; the target is seeded within 2 minutes of that
RETRY_SECONDS = 1.0  # between attempts of the first GET: an API just reported healthy may still be warming up

ALREADY_LOADED = "already loaded for this data volume"
DISABLED = "disabled (--no-demo-data)"


def outcome(loaded: int, skipped: int, reason: str | None, seconds: float = 0.0, *, hosts: int | None = None,
            vulnerabilities: int | None = None, created: int = 0, snapshot: str | None = None) -> dict:
    """The report's `demoData`. hosts/vulnerabilities: what the API lists of the data set
    after loading (null when it was not read back); loaded/created: hosts and CVEs posted
    by this deploy; skipped: hosts the API already listed; reason is null when the API
    shows every host with its ports and every CVE with a score."""
    return {"hosts": hosts, "vulnerabilities": vulnerabilities, "loaded": loaded, "skipped": skipped,
            "createdVulnerabilities": created, "snapshot": snapshot, "reason": reason, "seconds": round(seconds, 1)}


def failure_reason(not_loaded: int, total: int, first: str, what: str = "hosts") -> str:
    return f"{not_loaded} of {total} {what} not loaded ({first}); the next deploy tries again"


def refused(status: int) -> bool:
    return status in (401, 403)


def describe(err: Exception) -> str:
    """An HTTP client error in a few words (urllib wraps the socket's reason)."""
    return str(getattr(err, "reason", None) or err) or type(err).__name__


class Api:
    """The Sirius API on this host, with a deadline over every call."""

    def __init__(self, base_url: str, key: str, deadline: float):
        self.base_url, self.key, self.deadline = base_url, key, deadline
        # 127.0.0.1 is never reached through a proxy, whatever the environment says.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers={
            "X-API-Key": self.key, "Accept": "application/json", "Content-Type": "application/json",
            "X-Scanner-Name": SCANNER_NAME})
        try:
            with self.opener.open(request, timeout=max(min(REQUEST_SECONDS, self.left()), 0.1)) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode("utf-8", "replace")

    def first_get(self, path: str) -> tuple[int, str]:
        """GET, retried on connection errors and 5xx until the budget is spent."""
        while True:
            try:
                status, body = self.call("GET", path)
                if status < 500 or self.left() < RETRY_SECONDS:
                    return status, body
            except (OSError, http.client.HTTPException):
                if self.left() < RETRY_SECONDS:
                    raise
            time.sleep(RETRY_SECONDS)


class EarlyLoad:
    """The load, started on another thread as soon as the API passes its check, while the
    gate still waits for the rest (the UI starts last and slowest): the deploy's total does
    not pay for it. `result` waits for it, or runs it if the API never turned healthy first."""

    def __init__(self, settings: Settings, project: str):
        self.settings, self.project = settings, project
        self.thread: threading.Thread | None = None
        self.outcome: dict | None = None

    def on_ready(self, service: str) -> None:
        """Told of each service as it passes its check (engine/stack.py)."""
        if service == API_SERVICE and self.thread is None and self.settings.demo_data:
            self.thread = threading.Thread(target=self._run, name="demo-data", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        self.outcome = seed(self.settings, self.project)

    def wait(self) -> None:
        """Let a started load finish (its own budget bounds it) before the stack is touched again."""
        if self.thread is not None:
            self.thread.join()

    def result(self) -> dict:
        self.wait()
        return self.outcome if self.outcome is not None else seed(self.settings, self.project)


def seed(settings: Settings, project: str) -> dict:
    """Load the demo hosts if this data volume has not had them; never raises."""
    if not settings.demo_data:
        return outcome(0, 0, DISABLED)
    started, key = time.monotonic(), ""
    try:
        key = open(os.path.join(settings.project_dir, envfile.API_KEY_FILE)).read().strip()
        result = _seed(settings, project, key, started)
    except Exception as err:  # noqa: BLE001 - demo data must never fail a healthy deploy
        result = outcome(0, 0, f"not loaded: {type(err).__name__}: {err}", time.monotonic() - started)
    if result["reason"]:
        result["reason"] = envfile.redact(result["reason"], [key])
    log(f"demo data: loaded {result['loaded']}, skipped {result['skipped']}"
        + (f": {result['reason']}" if result["reason"] else ""))
    return result


def _seed(settings: Settings, project: str, key: str, started: float) -> dict:
    elapsed = lambda: time.monotonic() - started  # noqa: E731
    volume = demomarker.data_volume(project)
    if volume is None:
        return outcome(0, 0, f"cannot identify the data volume {project}_{demomarker.DATA_VOLUME}", elapsed())
    marker = demomarker.read_marker(settings.state_dir)
    if demomarker.loaded_for(marker, volume):
        return outcome(0, 0, ALREADY_LOADED, elapsed())
    progress = demomarker.progress_for(marker, volume)
    hosts = demomodel.load_hosts()
    address = rules.local_address(settings.bind_address)
    api = Api(f"http://{address}:{rules.API_PORT}", key, started + BUDGET_SECONDS)
    try:
        status, body = api.first_get(HOSTS_ROUTE)
    except (OSError, http.client.HTTPException) as err:
        return outcome(0, 0, f"API not reachable at {api.base_url}: {describe(err)}", elapsed())
    if refused(status):
        return outcome(0, 0, f"API refused the key: HTTP {status}", elapsed())
    if status != 200:
        return outcome(0, 0, f"GET {HOSTS_ROUTE} answered HTTP {status}", elapsed())
    todo, skipped = demomodel.to_post(hosts, demomodel.listed_hosts(body))
    created: list[str] = list(progress["createdVulnerabilities"])
    unfinished = lambda loaded, reason, snapshot=None: _unfinished(  # noqa: E731
        settings, volume, loaded, skipped, created, snapshot, reason, elapsed())

    # 1. The CVEs first: POST /host then finds each stored and never waits on NVD.
    status, body = api.call("GET", VULNERABILITY_LIST_ROUTE)
    if refused(status):
        return outcome(0, skipped, f"API refused the key: HTTP {status}", elapsed())
    if status != 200:
        return outcome(0, skipped, f"GET {VULNERABILITY_LIST_ROUTE} answered HTTP {status}", elapsed())
    vulns = demomodel.vulnerability_bodies(hosts)
    new_vulns = demomodel.to_create(demomodel.vulnerability_bodies(todo), demomodel.listed(body, f"GET {VULNERABILITY_LIST_ROUTE}"), created)
    for vuln in new_vulns:
        if api.left() <= 0:
            return unfinished(0, failure_reason(len(new_vulns) - len(created), len(vulns), f"out of the {BUDGET_SECONDS:.0f}s budget", "vulnerabilities"))
        try:
            status, _ = api.call("POST", VULNERABILITY_ROUTE, vuln)
        except (OSError, http.client.HTTPException) as err:
            return unfinished(0, failure_reason(len(new_vulns) - len(created), len(vulns), f"{vuln['vid']}: {describe(err)}", "vulnerabilities"))
        if refused(status):
            return unfinished(0, f"API refused the key: HTTP {status}")
        if not 200 <= status < 300:
            return unfinished(0, failure_reason(len(new_vulns) - len(created), len(vulns), f"{vuln['vid']}: HTTP {status}", "vulnerabilities"))
        created.append(vuln["vid"])

    # 2. The hosts the API does not list yet.
    loaded, first_failure = 0, ""
    for host in todo:
        if api.left() <= 0:
            first_failure = first_failure or f"out of the {BUDGET_SECONDS:.0f}s budget"
            break
        try:
            status, _ = api.call("POST", HOSTS_ROUTE, host)
        except (OSError, http.client.HTTPException) as err:
            first_failure = first_failure or f"{host['hostname']}: {describe(err)}"
            continue
        if 200 <= status < 300:
            loaded += 1
        elif refused(status):
            return unfinished(loaded, f"API refused the key: HTTP {status}")
        else:
            first_failure = first_failure or f"{host['hostname']}: HTTP {status}"
    if loaded < len(todo):
        return unfinished(loaded, failure_reason(len(todo) - loaded, len(hosts), first_failure))

    # 3. One point for the trends chart, once per volume: after this load, or after an
    # earlier one of this volume that stopped before it (not when a lost marker finds the
    # set already there: its snapshot was taken then).
    snapshot = progress["snapshot"]
    if not snapshot and (loaded or len(created) > len(progress["createdVulnerabilities"]) or progress["started"]):
        try:
            status, body = api.call("POST", SNAPSHOT_ROUTE)
        except (OSError, http.client.HTTPException) as err:
            return unfinished(loaded, f"vulnerability snapshot: {describe(err)}")
        if not 200 <= status < 300:
            return unfinished(loaded, f"vulnerability snapshot: HTTP {status}")
        snapshot = demomodel.snapshot_id(body)

    # 4. What the API shows, not what was posted.
    try:
        status_h, body_h = api.call("GET", HOSTS_ROUTE)
        status_v, body_v = api.call("GET", VULNERABILITY_LIST_ROUTE)
    except (OSError, http.client.HTTPException) as err:
        return unfinished(loaded, f"read back: {describe(err)}", snapshot)
    if status_h != 200 or status_v != 200:
        return unfinished(loaded, f"read back: HTTP {status_h} and {status_v}", snapshot)
    seen = demomodel.read_back(hosts, demomodel.listed_hosts(body_h), demomodel.listed(body_v, f"GET {VULNERABILITY_LIST_ROUTE}"))
    reason = demomodel.shortfall(seen)
    counts = {"hosts": seen["hosts"], "vulnerabilities": seen["vulnerabilities"], "created": len(created),
              "snapshot": snapshot}
    record = demomarker.marker_record(volume, loaded, skipped, complete=reason is None, created=created, snapshot=snapshot)
    demomarker.write_marker(settings.state_dir, record)
    return outcome(loaded, skipped, reason, elapsed(), **counts)


def _unfinished(settings: Settings, volume: str, loaded: int, skipped: int, created: list[str],
                snapshot: str | None, reason: str, seconds: float) -> dict:
    """Record what this load did (so the next deploy neither posts a CVE twice nor takes a
    second snapshot) and report why it stopped."""
    if created or snapshot:
        record = demomarker.marker_record(volume, loaded, skipped, complete=False, created=created, snapshot=snapshot)
        demomarker.write_marker(settings.state_dir, record)
    return outcome(loaded, skipped, reason, seconds, created=len(created), snapshot=snapshot)
