"""Demo data: a fictional company's hosts, loaded through the Sirius API once per data volume.

After a healthy deploy, `seed` posts the hosts of demo-hosts.json (carried inside the
zipapp) to the API's `POST /host`, skipping every host whose ip or hid the API already
lists (`GET /host`). A marker in the state dir names the postgres data volume (name and
creation time) the set was loaded into: later deploys on that volume (a tag change, a
rollback) load nothing; a new volume is loaded again. It never fails a deploy: short
timeouts, a small total budget, and whatever goes wrong becomes the report's `reason`,
with the API key redacted.
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
# What a host record of the API has; other keys of the data file (segment) only group it.
HOST_FIELDS = ("hid", "os", "osversion", "ip", "hostname", "ports", "vulnerabilities")
REQUEST_SECONDS = 5.0
BUDGET_SECONDS = 30.0
RETRY_SECONDS = 1.0  # between attempts of the first GET: an API just reported healthy may still be warming up

ALREADY_LOADED = "already loaded for this data volume"
DISABLED = "disabled (--no-demo-data)"


# --- pure parts ----------------------------------------------------------------------


def load_hosts(raw: bytes | None = None) -> list[dict]:
    """The data set's hosts as the API takes them (only HOST_FIELDS, in the file's order)."""
    raw = pkgutil.get_data("engine", DATA_FILE) if raw is None else raw
    if raw is None:
        raise FileNotFoundError(f"engine/{DATA_FILE} is not in the engine")
    return [{k: h[k] for k in HOST_FIELDS} for h in json.loads(raw)["hosts"]]


def listed_hosts(body: str) -> list[dict]:
    """The hosts in a `GET /host` answer: a JSON array (or an object holding one)."""
    value = json.loads(body) if body.strip() else []
    if value is None:  # Go encodes an empty (nil) slice as null
        value = []
    if isinstance(value, dict):
        value = next((value[k] for k in ("hosts", "data", "items") if isinstance(value.get(k), list)), None)
    if not isinstance(value, list):
        raise ValueError("GET /host did not answer a list of hosts")
    return [h for h in value if isinstance(h, dict)]


def to_post(hosts: list[dict], existing: list[dict]) -> tuple[list[dict], int]:
    """The hosts no existing host shares an ip or hid with, and how many were skipped."""
    ips = {str(h["ip"]) for h in existing if h.get("ip")}
    hids = {str(h["hid"]) for h in existing if h.get("hid")}
    todo = [h for h in hosts if str(h["ip"]) not in ips and str(h["hid"]) not in hids]
    return todo, len(hosts) - len(todo)


def volume_identity(inspected: str) -> str | None:
    """`name@createdAt` from `docker volume inspect --format '{{.Name}}@{{.CreatedAt}}'`:
    a volume removed and made again under the same name is another volume."""
    text = inspected.strip()
    name, _, created = text.partition("@")
    return text if name and created else None


def loaded_for(marker: dict | None, identity: str) -> bool:
    return bool(marker) and marker.get("volume") == identity


def marker_record(identity: str, loaded: int, skipped: int) -> dict:
    return {"volume": identity, "loaded": loaded, "skipped": skipped,
            "loadedAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def outcome(loaded: int, skipped: int, reason: str | None, seconds: float = 0.0) -> dict:
    """The report's `demoData`: reason is null when every host is in the API."""
    return {"loaded": loaded, "skipped": skipped, "reason": reason, "seconds": round(seconds, 1)}


def failure_reason(not_loaded: int, total: int, first: str) -> str:
    return f"{not_loaded} of {total} hosts not loaded ({first}); the next deploy tries again"


def refused(status: int) -> bool:
    return status in (401, 403)


def describe(err: Exception) -> str:
    """An HTTP client error in a few words (urllib wraps the socket's reason)."""
    return str(getattr(err, "reason", None) or err) or type(err).__name__


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
            "X-API-Key": self.key, "Accept": "application/json", "Content-Type": "application/json"})
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
    if loaded_for(read_marker(settings.state_dir), volume):
        return outcome(0, 0, ALREADY_LOADED, elapsed())
    hosts = load_hosts()
    address = rules.local_address(settings.bind_address)
    api = Api(f"http://{address}:{rules.API_PORT}", key, started + BUDGET_SECONDS)
    try:
        status, body = api.first_get("/host")
    except (OSError, http.client.HTTPException) as err:
        return outcome(0, 0, f"API not reachable at {api.base_url}: {describe(err)}", elapsed())
    if refused(status):
        return outcome(0, 0, f"API refused the key: HTTP {status}", elapsed())
    if status != 200:
        return outcome(0, 0, f"GET /host answered HTTP {status}", elapsed())
    todo, skipped = to_post(hosts, listed_hosts(body))
    loaded, first_failure = 0, ""
    for host in todo:
        if api.left() <= 0:
            first_failure = first_failure or f"out of the {BUDGET_SECONDS:.0f}s budget"
            break
        try:
            status, _ = api.call("POST", "/host", host)
        except (OSError, http.client.HTTPException) as err:
            first_failure = first_failure or f"{host['hostname']}: {describe(err)}"
            continue
        if 200 <= status < 300:
            loaded += 1
        elif refused(status):
            return outcome(loaded, skipped, f"API refused the key: HTTP {status}", elapsed())
        else:
            first_failure = first_failure or f"{host['hostname']}: HTTP {status}"
    if loaded < len(todo):
        return outcome(loaded, skipped, failure_reason(len(todo) - loaded, len(hosts), first_failure), elapsed())
    write_marker(settings.state_dir, marker_record(volume, loaded, skipped))
    return outcome(loaded, skipped, None, elapsed())
