"""Demo data: a fictional company's hosts, loaded through the Sirius API once per data volume.

After a healthy deploy, `seed` loads demo-hosts.json (carried inside the zipapp) in
upstream's model (go-api's Host: ports by `number`, `services`, vulnerabilities with
`riskScore`, the CVE's CVSS v3 base score):
1. `POST /vulnerability` for each CVE the API does not list yet, so that `POST /host`
   finds every CVE stored and never asks NVD inside the request;
2. `POST /host` for each host whose ip or hid the API does not list (`GET /host`),
   with `X-Scanner-Name: sirius-demo` (else the API credits urllib's "python-script");
3. one `POST /api/v1/statistics/vulnerability-snapshot`, so the trends chart has a point;
4. a read-back: the report gives what `GET /host` and `GET /host/vulnerabilities/all`
   answer (the data set's hosts listed with their ports, its CVEs listed with a score),
   not the number of POSTs.
A marker in the state dir names the postgres data volume (name and creation time) the
set was loaded into: later deploys on that volume (a tag change, a rollback) load
nothing; a new volume is loaded again. An unfinished load records the CVEs it created
(the API stores a CVE posted twice twice) and whether the snapshot was taken, so the
next deploy finishes it without duplicates. It never fails a deploy: short timeouts, a
total budget, and whatever goes wrong becomes the report's `reason`, with the API key
redacted.
"""

from __future__ import annotations

import http.client
import json
import os
import pkgutil
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from engine import envfile, rules
from engine.docker import log, run
from engine.settings import Settings

DATA_FILE = "demo-hosts.json"  # next to this module, inside the zipapp too
MARKER_FILE = "demo-data.json"  # in the state dir
DATA_VOLUME = "postgres_data"  # the compose volume that holds Sirius's database
# What go-api's Host and Vulnerability take; other keys of the data file (segment) only group it.
HOST_FIELDS = ("hid", "os", "osversion", "ip", "hostname", "ports", "services", "vulnerabilities")
VULNERABILITY_FIELDS = ("vid", "title", "description", "riskScore")
SCANNER_NAME = "sirius-demo"  # X-Scanner-Name: the source the API records for these hosts
HOSTS_ROUTE = "/host"
VULNERABILITY_ROUTE = "/vulnerability"
VULNERABILITY_LIST_ROUTE = "/host/vulnerabilities/all"  # the CVEs linked to at least one host
SNAPSHOT_ROUTE = "/api/v1/statistics/vulnerability-snapshot"
REQUEST_SECONDS = 5.0
BUDGET_SECONDS = 90.0  # seeding starts when the API is healthy; the target is seeded within 2 minutes of that
RETRY_SECONDS = 1.0  # between attempts of the first GET: an API just reported healthy may still be warming up

ALREADY_LOADED = "already loaded for this data volume"
DISABLED = "disabled (--no-demo-data)"


# --- pure parts ----------------------------------------------------------------------


def load_hosts(raw: bytes | None = None) -> list[dict]:
    """The data set's hosts as the API takes them (only HOST_FIELDS, in the file's order)."""
    raw = pkgutil.get_data("engine", DATA_FILE) if raw is None else raw
    if raw is None:
        raise FileNotFoundError(f"engine/{DATA_FILE} is not in the engine")
    return [{k: h[k] for k in HOST_FIELDS if k in h} for h in json.loads(raw)["hosts"]]


def vulnerability_bodies(hosts: list[dict]) -> list[dict]:
    """Each CVE of the hosts once, as `POST /vulnerability` takes it, in first-seen order."""
    seen: dict[str, dict] = {}
    for host in hosts:
        for vuln in host.get("vulnerabilities", []):
            seen.setdefault(vuln["vid"], {k: vuln[k] for k in VULNERABILITY_FIELDS if k in vuln})
    return list(seen.values())


def listed(body: str, what: str = "GET /host") -> list[dict]:
    """The records in a list answer: a JSON array (or an object holding one)."""
    value = json.loads(body) if body.strip() else []
    if value is None:  # Go encodes an empty (nil) slice as null
        value = []
    if isinstance(value, dict):
        value = next((value[k] for k in ("hosts", "data", "items") if isinstance(value.get(k), list)), None)
    if not isinstance(value, list):
        raise ValueError(f"{what} did not answer a list")
    return [h for h in value if isinstance(h, dict)]


def listed_hosts(body: str) -> list[dict]:
    return listed(body, "GET /host")


def to_post(hosts: list[dict], existing: list[dict]) -> tuple[list[dict], int]:
    """The hosts no existing host shares an ip or hid with, and how many were skipped."""
    ips = {str(h["ip"]) for h in existing if h.get("ip")}
    hids = {str(h["hid"]) for h in existing if h.get("hid")}
    todo = [h for h in hosts if str(h["ip"]) not in ips and str(h["hid"]) not in hids]
    return todo, len(hosts) - len(todo)


def to_create(vulns: list[dict], listed_vulns: list[dict], created: list[str]) -> list[dict]:
    """The CVEs neither the API lists nor an earlier, unfinished load created (a second
    `POST /vulnerability` of a CVE would store it twice)."""
    known = {str(v.get("vid")) for v in listed_vulns} | set(created)
    return [v for v in vulns if v["vid"] not in known]


def score_of(record: dict) -> float:
    """A listed vulnerability's score: GET /host omits riskScore when it is 0."""
    value = record.get("riskScore")
    return float(value) if isinstance(value, (int, float)) else 0.0


def read_back(hosts: list[dict], listed_hosts_: list[dict], listed_vulns: list[dict]) -> dict:
    """What the API shows of the data set: its hosts listed (by ip) with every port by
    number, its CVEs in the vulnerabilities list and which of them have no score (0:
    shown as informational)."""
    by_ip = {str(h.get("ip")): h for h in listed_hosts_}
    shown, wrong_ports = 0, []
    for host in hosts:
        record = by_ip.get(str(host["ip"]))
        if record is None:
            continue
        shown += 1
        want = {(p.get("number"), p.get("protocol")) for p in host["ports"]}
        have = {(p.get("number"), p.get("protocol")) for p in record.get("ports") or [] if isinstance(p, dict)}
        if want != have:
            wrong_ports.append(host["hostname"])
    vulns = {v["vid"]: v for v in vulnerability_bodies(hosts)}
    scores = {str(v.get("vid")): score_of(v) for v in listed_vulns}
    present = [vid for vid in vulns if vid in scores]
    unscored = [vid for vid in present if scores[vid] <= 0]
    return {"hosts": shown, "vulnerabilities": len(present), "wrongPorts": wrong_ports, "unscored": unscored,
            "missingHosts": len(hosts) - shown, "missingVulnerabilities": len(vulns) - len(present)}


def shortfall(seen: dict) -> str | None:
    """The read-back's problems in a few words, or None when the API shows the whole set."""
    parts = []
    if seen["missingHosts"]:
        parts.append(f"{seen['missingHosts']} hosts not listed")
    if seen["wrongPorts"]:
        parts.append(f"{len(seen['wrongPorts'])} hosts listed with other ports (first: {seen['wrongPorts'][0]})")
    if seen["missingVulnerabilities"]:
        parts.append(f"{seen['missingVulnerabilities']} vulnerabilities not listed")
    if seen["unscored"]:
        parts.append(f"{len(seen['unscored'])} vulnerabilities without a score (first: {seen['unscored'][0]})")
    return "read back: " + "; ".join(parts) if parts else None


def volume_identity(inspected: str) -> str | None:
    """`name@createdAt` from `docker volume inspect --format '{{.Name}}@{{.CreatedAt}}'`:
    a volume removed and made again under the same name is another volume."""
    text = inspected.strip()
    name, _, created = text.partition("@")
    return text if name and created else None


def loaded_for(marker: dict | None, identity: str) -> bool:
    """The set is complete in this volume (markers older than `complete` were written only then)."""
    return bool(marker) and marker.get("volume") == identity and marker.get("complete", True) is True


def progress_for(marker: dict | None, identity: str) -> dict:
    """What an unfinished load of this volume already did: the CVEs it created, its snapshot."""
    if not marker or marker.get("volume") != identity:
        return {"createdVulnerabilities": [], "snapshot": None, "started": False}
    created = marker.get("createdVulnerabilities")
    return {"createdVulnerabilities": [str(v) for v in created] if isinstance(created, list) else [],
            "snapshot": marker.get("snapshot"), "started": True}


def marker_record(identity: str, loaded: int, skipped: int, *, complete: bool = True,
                  created: list[str] | None = None, snapshot: str | None = None) -> dict:
    return {"volume": identity, "complete": complete, "loaded": loaded, "skipped": skipped,
            "createdVulnerabilities": created or [], "snapshot": snapshot,
            "loadedAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


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


def snapshot_id(body: str) -> str:
    """The id in a snapshot answer ({"snapshot": {"snapshot_id": ...}}), else "created"."""
    try:
        value = json.loads(body)
        return str(value["snapshot"]["snapshot_id"])
    except (ValueError, KeyError, TypeError):
        return "created"


# --- I/O -----------------------------------------------------------------------------


def read_marker(state_dir: str) -> dict | None:
    try:
        value = json.load(open(os.path.join(state_dir, MARKER_FILE)))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_marker(state_dir: str, record: dict) -> None:
    path = os.path.join(state_dir, MARKER_FILE)
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(record) + "\n")
    os.replace(path + ".tmp", path)


def data_volume(project: str) -> str | None:
    """The identity of the project's postgres data volume, found by compose's labels."""
    found = run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}",
                 "--filter", f"label=com.docker.compose.volume={DATA_VOLUME}"], timeout=REQUEST_SECONDS * 2)
    names = found.out.split() if found.ok else []
    if len(names) != 1:
        return None
    inspected = run(["docker", "volume", "inspect", "--format", "{{.Name}}@{{.CreatedAt}}", names[0]],
                    timeout=REQUEST_SECONDS * 2)
    return volume_identity(inspected.out) if inspected.ok else None


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
    volume = data_volume(project)
    if volume is None:
        return outcome(0, 0, f"cannot identify the data volume {project}_{DATA_VOLUME}", elapsed())
    marker = read_marker(settings.state_dir)
    if loaded_for(marker, volume):
        return outcome(0, 0, ALREADY_LOADED, elapsed())
    progress = progress_for(marker, volume)
    hosts = load_hosts()
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
    todo, skipped = to_post(hosts, listed_hosts(body))
    created: list[str] = list(progress["createdVulnerabilities"])
    unfinished = lambda loaded, reason, snapshot=None: _unfinished(  # noqa: E731
        settings, volume, loaded, skipped, created, snapshot, reason, elapsed())

    # 1. The CVEs first: POST /host then finds each stored and never waits on NVD.
    status, body = api.call("GET", VULNERABILITY_LIST_ROUTE)
    if refused(status):
        return outcome(0, skipped, f"API refused the key: HTTP {status}", elapsed())
    if status != 200:
        return outcome(0, skipped, f"GET {VULNERABILITY_LIST_ROUTE} answered HTTP {status}", elapsed())
    vulns = vulnerability_bodies(hosts)
    new_vulns = to_create(vulnerability_bodies(todo), listed(body, f"GET {VULNERABILITY_LIST_ROUTE}"), created)
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
        snapshot = snapshot_id(body)

    # 4. What the API shows, not what was posted.
    try:
        status_h, body_h = api.call("GET", HOSTS_ROUTE)
        status_v, body_v = api.call("GET", VULNERABILITY_LIST_ROUTE)
    except (OSError, http.client.HTTPException) as err:
        return unfinished(loaded, f"read back: {describe(err)}", snapshot)
    if status_h != 200 or status_v != 200:
        return unfinished(loaded, f"read back: HTTP {status_h} and {status_v}", snapshot)
    seen = read_back(hosts, listed_hosts(body_h), listed(body_v, f"GET {VULNERABILITY_LIST_ROUTE}"))
    reason = shortfall(seen)
    counts = {"hosts": seen["hosts"], "vulnerabilities": seen["vulnerabilities"], "created": len(created),
              "snapshot": snapshot}
    write_marker(settings.state_dir, marker_record(volume, loaded, skipped, complete=reason is None,
                                                   created=created, snapshot=snapshot))
    return outcome(loaded, skipped, reason, elapsed(), **counts)


def _unfinished(settings: Settings, volume: str, loaded: int, skipped: int, created: list[str],
                snapshot: str | None, reason: str, seconds: float) -> dict:
    """Record what this load did (so the next deploy neither posts a CVE twice nor takes a
    second snapshot) and report why it stopped."""
    if created or snapshot:
        write_marker(settings.state_dir, marker_record(volume, loaded, skipped, complete=False,
                                                       created=created, snapshot=snapshot))
    return outcome(loaded, skipped, reason, seconds, created=len(created), snapshot=snapshot)
