"""Demo-data contract: every body the engine posts, checked against upstream's types.

tests/engine/data/sirius-api-model.json writes down, from upstream's source, the go-api
structs sirius-api decodes `POST /host` and `POST /vulnerability` into (json tags and Go
types). Go's json.Unmarshal drops a key the struct has no tag for and leaves an absent
field at its zero value, so a wrong key is never an error upstream: a port sent as `id`
becomes port 0, a vulnerability without `riskScore` scores 0 (informational). This test
is where such a body fails, before any deploy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine import demodata, demomodel

MODEL = json.loads((Path(__file__).parent / "data" / "sirius-api-model.json").read_text())
TYPES = MODEL["types"]
GO_TYPES = {"string": str, "int": int, "float64": (int, float), "object": dict}


def shape_errors(value, go_type: str, where: str) -> list[str]:
    """How `value` differs from what encoding/json would decode into `go_type` without loss."""
    if go_type.startswith("[]"):
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [e for i, item in enumerate(value) for e in shape_errors(item, go_type[2:], f"{where}[{i}]")]
    if go_type in TYPES:
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        fields = TYPES[go_type]
        return ([f"{where}.{k}: no such field in go-api's {go_type}, dropped by json.Unmarshal" for k in value if k not in fields]
                + [e for k, v in value.items() if k in fields for e in shape_errors(v, fields[k], f"{where}.{k}")])
    expected = GO_TYPES[go_type]
    if isinstance(value, bool) or not isinstance(value, expected):
        return [f"{where}: {type(value).__name__} where go-api has {go_type}"]
    return []


def meaning_errors(host: dict, where: str) -> list[str]:
    """What upstream would store wrongly although the shape decodes: zero values."""
    errors = []
    for i, port in enumerate(host.get("ports") or []):
        number = port.get("number")
        if not (isinstance(number, int) and 0 < number < 65536):
            errors.append(f"{where}.ports[{i}]: no port number, stored as port 0")
    for i, vuln in enumerate(host.get("vulnerabilities") or []):
        errors += vulnerability_errors(vuln, f"{where}.vulnerabilities[{i}]")
    return errors


def vulnerability_errors(vuln: dict, where: str) -> list[str]:
    score = vuln.get("riskScore")
    if not isinstance(score, (int, float)) or isinstance(score, bool) or score == 0:
        return [f"{where}: no riskScore, stored as 0 (informational)"]
    if not 0 < score <= 10 or round(score, 1) != score:
        return [f"{where}: riskScore {score} is not a CVSS v3 base score (0.1 to 10.0, one decimal)"]
    return []


def host_errors(host: dict, where: str = "host") -> list[str]:
    return shape_errors(host, "Host", where) + meaning_errors(host, where)


# --- the bodies the engine posts -----------------------------------------------------------


def test_every_host_body_decodes_into_go_apis_host_without_loss():
    hosts = demomodel.load_hosts()
    errors = [e for h in hosts for e in host_errors(h, h["hostname"])]
    assert errors == []
    assert all(h["ports"] and h["vulnerabilities"] and h["services"] for h in hosts)


def test_every_vulnerability_body_decodes_into_go_apis_vulnerability_with_its_score():
    vulns = demomodel.vulnerability_bodies(demomodel.load_hosts())
    assert len({v["vid"] for v in vulns}) == len(vulns) >= 30
    errors = [e for v in vulns for e in shape_errors(v, "Vulnerability", v["vid"]) + vulnerability_errors(v, v["vid"])]
    assert errors == []
    assert all(set(v) == {"vid", "title", "description", "riskScore"} for v in vulns)


def test_the_host_body_sends_nothing_the_api_drops():
    # asset_type is in the UI's SiriusHost type, not in go-api's Host: it would be dropped.
    assert "asset_type" in MODEL["uiOnly"] and "asset_type" not in TYPES["Host"]
    for host in demomodel.load_hosts():
        assert set(host) <= set(TYPES["Host"]), set(host) - set(TYPES["Host"])


def test_the_demo_looks_like_a_real_network_by_upstreams_severity_buckets():
    """Upstream's buckets (host statistics, snapshots): critical >= 9, high >= 7, medium >= 4, low > 0, informational 0."""
    bucket = MODEL["severity"]
    vulns = demomodel.vulnerability_bodies(demomodel.load_hosts())
    by = {name: [v for v in vulns if v["riskScore"] >= floor and all(
        v["riskScore"] < higher for n, higher in bucket.items() if higher > floor)] for name, floor in bucket.items()}
    assert by["critical"] and by["high"] and by["medium"] and not by["informational"]


def test_the_engine_names_itself_as_the_source():
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,50}", demodata.SCANNER_NAME)  # upstream's validateSourceName
    assert demodata.SCANNER_NAME != "python-script"


# --- the checker fails on what issue 18 found ------------------------------------------


@pytest.fixture
def host() -> dict:
    return json.loads(json.dumps(demomodel.load_hosts()[0]))


def test_a_port_sent_as_id_fails(host):
    host["ports"][0] = {"id": host["ports"][0]["number"], "protocol": "tcp", "state": "open"}
    errors = host_errors(host)
    assert "host.ports[0].id: no such field in go-api's Port, dropped by json.Unmarshal" in errors
    assert "host.ports[0]: no port number, stored as port 0" in errors


def test_a_vulnerability_without_a_score_fails(host):
    del host["vulnerabilities"][1]["riskScore"]
    assert host_errors(host) == ["host.vulnerabilities[1]: no riskScore, stored as 0 (informational)"]
    host["vulnerabilities"][1]["riskScore"] = 0
    assert host_errors(host) == ["host.vulnerabilities[1]: no riskScore, stored as 0 (informational)"]


def test_a_score_of_another_scale_or_type_fails(host):
    host["vulnerabilities"][0]["riskScore"] = 98
    assert host_errors(host) == ["host.vulnerabilities[0]: riskScore 98 is not a CVSS v3 base score (0.1 to 10.0, one decimal)"]
    host["vulnerabilities"][0]["riskScore"] = "9.8"
    assert "host.vulnerabilities[0].riskScore: str where go-api has float64" in host_errors(host)


def test_ui_only_and_misspelled_keys_fail(host):
    host["asset_type"] = "server"
    host["services"][0]["name"] = "smb"
    host["ports"][0]["number"] = str(host["ports"][0]["number"])
    errors = host_errors(host)
    assert "host.asset_type: no such field in go-api's Host, dropped by json.Unmarshal" in errors
    assert "host.services[0].name: no such field in go-api's Service, dropped by json.Unmarshal" in errors
    assert "host.ports[0].number: str where go-api has int" in errors
