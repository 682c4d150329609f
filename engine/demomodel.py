"""The demo data set in upstream's model, and what the API shows of it. Pure.

demo-hosts.json (next to this module, inside the zipapp too) holds a fictional company's
hosts as go-api's Host takes them: ports by `number`, `services`, vulnerabilities with
`riskScore` (the CVE's CVSS v3 base score). This module builds what engine/demodata.py
posts (the hosts and CVEs the API does not list yet) and reads its list answers back.
"""

from __future__ import annotations

import json
import pkgutil

DATA_FILE = "demo-hosts.json"  # next to this module, inside the zipapp too
# What go-api's Host and Vulnerability take; other keys of the data file (segment) only group it.
HOST_FIELDS = ("hid", "os", "osversion", "ip", "hostname", "ports", "services", "vulnerabilities")
VULNERABILITY_FIELDS = ("vid", "title", "description", "riskScore")


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


def snapshot_id(body: str) -> str:
    """The id in a snapshot answer ({"snapshot": {"snapshot_id": ...}}), else "created"."""
    try:
        value = json.loads(body)
        return str(value["snapshot"]["snapshot_id"])
    except (ValueError, KeyError, TypeError):
        return "created"
