"""Demo data: the data set, which hosts to post, the once-per-volume marker, the report.

The last tests run `seed` against a small in-process API (http.server) so the HTTP
handling, the key check and the report wording are exercised without Docker.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from pathlib import Path

import pytest

from engine import demodata, demomarker, demomodel, envfile, rules
from engine.settings import Settings

DATA = json.loads((Path(demomodel.__file__).parent / demomodel.DATA_FILE).read_text())
CVE = re.compile(r"CVE-\d{4}-\d{4,}")
KEY = "k3y" * 16


# --- the data set ----------------------------------------------------------------------


def test_the_data_set_is_a_company_of_about_twenty_hosts_with_real_cve_ids():
    hosts = demomodel.load_hosts()
    assert 18 <= len(hosts) <= 30
    assert len({h["ip"] for h in hosts}) == len(hosts) and len({h["hid"] for h in hosts}) == len(hosts)
    assert len({h["hostname"] for h in hosts}) == len(hosts)
    for h in hosts:
        assert set(h) == set(demomodel.HOST_FIELDS), h["hostname"]
        assert h["os"] and h["osversion"] and re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}", h["ip"])
        assert h["ports"] and h["vulnerabilities"], h["hostname"]
        for port in h["ports"]:
            assert port["protocol"] in ("tcp", "udp") and port["state"] == "open"
        assert len({(p["number"], p["protocol"]) for p in h["ports"]}) == len(h["ports"]), h["hostname"]
        assert {s["port"] for s in h["services"]} <= {p["number"] for p in h["ports"]}, h["hostname"]
        for vuln in h["vulnerabilities"]:
            assert CVE.fullmatch(vuln["vid"]), vuln
            assert len(vuln["title"]) >= 10 and len(vuln["description"]) >= 60, vuln["vid"]
        assert len({v["vid"] for v in h["vulnerabilities"]}) == len(h["vulnerabilities"])


def test_the_data_set_mixes_windows_linux_network_gear_and_ot():
    segments = {h["segment"] for h in DATA["hosts"]}
    assert {"it-server", "network", "ot"} <= segments
    oses = [h["os"] for h in DATA["hosts"]]
    assert oses.count("Windows") >= 4 and oses.count("Linux") >= 4
    ot = [h for h in DATA["hosts"] if h["segment"] == "ot"]
    assert len(ot) >= 4
    ot_products = " ".join(f"{h['os']} {h['osversion']}" for h in ot)
    for kind in ("Siemens", "Schneider", "HMI", "historian"):
        assert kind in ot_products, kind


def test_the_issues_landmark_cves_sit_on_the_products_they_belong_to():
    by_vid: dict[str, list[str]] = {}
    for h in DATA["hosts"]:
        for v in h["vulnerabilities"]:
            by_vid.setdefault(v["vid"], []).append(f"{h['os']} {h['osversion']}")
    expected = {"CVE-2017-0144": "Windows", "CVE-2023-20198": "Cisco IOS XE", "CVE-2018-13379": "FortiOS",
                "CVE-2021-41773": "Apache httpd 2.4.49", "CVE-2024-6387": "OpenSSH 9.2p1",
                "CVE-2021-44228": "Log4j 2.14.1", "CVE-2020-15782": "Siemens SIMATIC"}
    for vid, product in expected.items():
        assert by_vid.get(vid) and all(product in where for where in by_vid[vid]), (vid, by_vid.get(vid))
    # One CVE, one title, description and score, wherever it appears: the API keeps one row per CVE.
    texts: dict[str, set] = {}
    for h in DATA["hosts"]:
        for v in h["vulnerabilities"]:
            texts.setdefault(v["vid"], set()).add((v["title"], v["description"], v["riskScore"]))
    assert all(len(t) == 1 for t in texts.values())


def test_the_data_file_is_ascii_so_every_layer_counts_bytes_the_same():
    raw = (Path(demomodel.__file__).parent / demomodel.DATA_FILE).read_bytes()
    raw.decode("ascii")


def test_extra_keys_of_the_file_are_not_posted():
    raw = json.dumps({"hosts": [{**DATA["hosts"][0], "segment": "x", "note": "kept out"}]}).encode()
    assert set(demomodel.load_hosts(raw)[0]) == set(demomodel.HOST_FIELDS)


# --- which hosts to post -----------------------------------------------------------------


def test_hosts_already_in_the_api_by_ip_or_hid_are_skipped():
    hosts = demomodel.load_hosts()
    existing = [{"ip": hosts[0]["ip"], "hid": "other"}, {"ip": "192.0.2.1", "hid": hosts[1]["hid"]},
                {"ip": "192.0.2.2", "hid": "unrelated"}]
    todo, skipped = demomodel.to_post(hosts, existing)
    assert skipped == 2 and todo == hosts[2:]
    assert demomodel.to_post(hosts, []) == (hosts, 0)
    assert demomodel.to_post(hosts, hosts) == ([], len(hosts))


def test_the_api_listing_is_read_as_an_array_or_an_object_holding_one():
    assert demomodel.listed_hosts('[{"ip": "10.0.0.1"}, 3]') == [{"ip": "10.0.0.1"}]
    assert demomodel.listed_hosts('{"hosts": [{"ip": "10.0.0.1"}]}') == [{"ip": "10.0.0.1"}]
    assert demomodel.listed_hosts("") == [] and demomodel.listed_hosts("null") == []
    with pytest.raises(ValueError):
        demomodel.listed_hosts('{"error": "nope"}')


# --- once per data volume ----------------------------------------------------------------


def test_the_marker_names_the_volume_it_was_loaded_into(tmp_path):
    volume = demomarker.volume_identity("sirius_postgres_data@2026-11-28T16:00:00Z\n")
    assert volume == "sirius_postgres_data@2026-11-28T16:00:00Z"
    assert demomarker.read_marker(str(tmp_path)) is None
    demomarker.write_marker(str(tmp_path), demomarker.marker_record(volume, 22, 0))
    marker = demomarker.read_marker(str(tmp_path))
    assert demomarker.loaded_for(marker, volume)
    # The same name made again is another volume: load again.
    assert not demomarker.loaded_for(marker, "sirius_postgres_data@2026-11-29T09:00:00Z")
    assert not demomarker.loaded_for(None, volume)
    assert demomarker.volume_identity("") is None and demomarker.volume_identity("name@") is None


def test_a_damaged_marker_means_not_loaded(tmp_path):
    (tmp_path / demomarker.MARKER_FILE).write_text("{not json")
    assert demomarker.read_marker(str(tmp_path)) is None
    (tmp_path / demomarker.MARKER_FILE).write_text("[1]")
    assert demomarker.read_marker(str(tmp_path)) is None


# --- seed against an in-process API ------------------------------------------------------


class FakeApi(http.server.BaseHTTPRequestHandler):
    """sirius-api's demo-data routes, storing what upstream stores (see
    tests/engine/data/sirius-api-model.json): the X-API-Key check; POST /host decoded
    into go-api's Host (unknown keys dropped, a port without `number` is port 0, a CVE
    without riskScore scores 0) and upserted by ip, each CVE not stored yet counted as an
    NVD lookup; POST /vulnerability a plain insert; the vulnerabilities list; snapshots;
    the source from X-Scanner-Name or the user agent."""

    key = KEY
    hosts: list[dict] = []
    vulns: list[dict] = []  # rows, duplicates included
    snapshots: list[str] = []
    sources: dict[str, str] = {}
    nvd_lookups: list[str] = []
    fail_posts_for: set[str] = set()
    fail_routes: dict[str, int] = {}

    def answer(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def refused(self) -> bool:
        if self.headers.get("X-API-Key") != self.key:
            self.answer(401, {"error": "Unauthorized"})
            return True
        if self.path in self.fail_routes:
            self.answer(self.fail_routes[self.path], {"error": "failing on purpose"})
            return True
        return False

    def vuln_row(self, vid: str) -> dict | None:
        return next((v for v in self.vulns if v["vid"] == vid), None)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.refused():
            return
        if self.path == "/host":
            return self.answer(200, self.hosts)
        if self.path == "/host/vulnerabilities/all":
            linked = [vid for h in self.hosts for vid in (v["vid"] for v in h.get("vulnerabilities", []))]
            rows = {v["vid"]: v for v in reversed(self.vulns)}  # the first row of a vid is the linked one
            return self.answer(200, [{**rows[vid], "riskScore": rows[vid]["riskScore"], "hostCount": linked.count(vid)}
                                     for vid in dict.fromkeys(linked)])
        self.answer(404, {"error": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802
        if self.refused():
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        if self.path == "/vulnerability":
            self.vulns.append({"vid": body.get("vid", ""), "title": body.get("title", ""),
                               "description": body.get("description", ""), "riskScore": body.get("riskScore", 0)})
            return self.answer(200, body)
        if self.path == "/api/v1/statistics/vulnerability-snapshot":
            self.snapshots.append(f"2026-12-03-{len(self.snapshots):06d}")
            return self.answer(201, {"message": "Snapshot created successfully", "snapshot": {"snapshot_id": self.snapshots[-1]}})
        if self.path != "/host":
            return self.answer(404, {"error": "Not Found"})
        if body.get("hostname") in self.fail_posts_for:
            return self.answer(500, {"error": "database is locked"})
        for vuln in body.get("vulnerabilities", []):
            if self.vuln_row(vuln["vid"]) is None:
                self.nvd_lookups.append(vuln["vid"])
                self.vulns.append({"vid": vuln["vid"], "title": vuln.get("title", ""),
                                   "description": vuln.get("description", ""), "riskScore": vuln.get("riskScore", 0)})
        ports = {(p.get("number", 0), p.get("protocol") or "tcp"): p.get("state") or "open" for p in body.get("ports", [])}
        vulns = []
        for vuln in body.get("vulnerabilities", []):
            row = self.vuln_row(vuln["vid"])
            if vuln.get("riskScore", 0) > 0:
                row["riskScore"] = vuln["riskScore"]
            vulns.append({k: row[k] for k in ("vid", "description", "title")} | ({"riskScore": row["riskScore"]} if row["riskScore"] else {}))
        host = {k: body.get(k, "") for k in ("hid", "os", "osversion", "ip", "hostname")}
        host |= {"ports": [{"number": n, "protocol": pr, "state": s} for (n, pr), s in ports.items()],
                 "vulnerabilities": vulns, "cpe": None, "users": None, "notes": None}
        type(self).hosts = [h for h in self.hosts if h["ip"] != host["ip"]] + [host]
        agent = self.headers.get("User-Agent", "")
        self.sources[host["ip"]] = self.headers.get("X-Scanner-Name") or ("python-script" if "python" in agent.lower() else "legacy")
        self.answer(200, {"message": "Host added successfully with source attribution", "host_ip": host["ip"]})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def api(monkeypatch):
    FakeApi.hosts, FakeApi.vulns, FakeApi.snapshots, FakeApi.sources, FakeApi.nvd_lookups = [], [], [], {}, []
    FakeApi.fail_posts_for, FakeApi.fail_routes, FakeApi.key = set(), {}, KEY
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setattr(rules, "API_PORT", server.server_address[1])
    monkeypatch.setattr(demomarker, "data_volume", lambda project: f"{project}_postgres_data@2026-11-28T16:00:00Z")
    yield FakeApi
    server.shutdown()
    server.server_close()


def settings_for(tmp_path, key: str = KEY, **overrides) -> Settings:
    project, state = tmp_path / "sirius", tmp_path / "state"
    (project / "secrets").mkdir(parents=True, exist_ok=True)
    state.mkdir(exist_ok=True)
    (project / envfile.API_KEY_FILE).write_text(key + "\n")
    return Settings(repo_url="file:///x", ref="main", git_ref="main", image_tag="v1", project_dir=str(project),
                    state_dir=str(state), bind_address="127.0.0.1", **overrides)


HOSTS = demomodel.load_hosts()
CVES = demomodel.vulnerability_bodies(HOSTS)


def test_seed_creates_the_cves_then_the_hosts_then_one_snapshot_and_reports_what_the_api_lists(tmp_path, api):
    s = settings_for(tmp_path)
    first = demodata.seed(s, "sirius")
    assert first == {**first, "hosts": len(HOSTS), "vulnerabilities": len(CVES), "loaded": len(HOSTS), "skipped": 0,
                     "createdVulnerabilities": len(CVES), "snapshot": api.snapshots[0], "reason": None}
    assert api.nvd_lookups == []  # every CVE was stored before its first host
    assert [v["vid"] for v in api.vulns] == [v["vid"] for v in CVES]  # each once
    assert [h["ip"] for h in api.hosts] == [h["ip"] for h in HOSTS]
    assert set(api.sources.values()) == {"sirius-demo"} and len(api.snapshots) == 1
    assert all(h["ports"] and all(p["number"] > 0 for p in h["ports"]) for h in api.hosts)
    again = demodata.seed(s, "sirius")
    assert (again["loaded"], again["reason"]) == (0, demodata.ALREADY_LOADED)
    assert len(api.hosts) == len(HOSTS) and len(api.vulns) == len(CVES) and len(api.snapshots) == 1


def test_the_old_id_ports_and_missing_scores_are_caught_by_the_read_back(tmp_path, api, monkeypatch):
    """The data set as it was before issue 18: the API answers 200 to every POST, yet
    lists every host with one port 0 and every CVE unscored; the report says so."""
    def old_model(raw=None):
        hosts = json.loads((Path(demomodel.__file__).parent / demomodel.DATA_FILE).read_text())["hosts"]
        for h in hosts:
            h["ports"] = [{"id": p["number"], "protocol": p["protocol"], "state": p["state"]} for p in h["ports"]]
            h["vulnerabilities"] = [{k: v[k] for k in ("vid", "title", "description")} for v in h["vulnerabilities"]]
        return [{k: h[k] for k in demomodel.HOST_FIELDS} for h in hosts]

    monkeypatch.setattr(demomodel, "load_hosts", old_model)
    result = demodata.seed(settings_for(tmp_path), "sirius")
    assert (result["hosts"], result["loaded"]) == (len(HOSTS), len(HOSTS))
    assert result["reason"] == (f"read back: {len(HOSTS)} hosts listed with other ports (first: {HOSTS[0]['hostname']}); "
                                f"{len(CVES)} vulnerabilities without a score (first: {CVES[0]['vid']})")
    assert {p["number"] for h in api.hosts for p in h["ports"]} == {0}
    assert not demomarker.loaded_for(demomarker.read_marker(str(tmp_path / "state")), "sirius_postgres_data@2026-11-28T16:00:00Z")


def test_a_lost_marker_does_not_duplicate_hosts_or_cves(tmp_path, api):
    s = settings_for(tmp_path)
    assert demodata.seed(s, "sirius")["reason"] is None
    (tmp_path / "state" / demomarker.MARKER_FILE).unlink()
    again = demodata.seed(s, "sirius")
    assert again == {**again, "hosts": len(HOSTS), "vulnerabilities": len(CVES), "loaded": 0, "skipped": len(HOSTS),
                     "createdVulnerabilities": 0, "reason": None}
    assert len(api.vulns) == len(CVES) and len({h["ip"] for h in api.hosts}) == len(api.hosts) == len(HOSTS)
    assert again["snapshot"] is None and len(api.snapshots) == 1  # the set is unchanged since its snapshot


def test_hosts_already_listed_are_skipped_and_only_the_others_cves_created(tmp_path, api):
    s = settings_for(tmp_path)
    api.hosts = [dict(h, vulnerabilities=[]) for h in HOSTS[:5]]
    result = demodata.seed(s, "sirius")
    assert (result["loaded"], result["skipped"], result["hosts"]) == (len(HOSTS) - 5, 5, len(HOSTS))
    wanted = {v["vid"] for v in demomodel.vulnerability_bodies(HOSTS[5:])}
    assert {v["vid"] for v in api.vulns} == wanted and len(api.vulns) == len(wanted)
    # The 5 hosts listed without their CVEs: the read-back says so, the marker stays open.
    assert result["reason"].startswith("read back: ") and "vulnerabilities not listed" in result["reason"]


def test_a_new_data_volume_is_loaded_again(tmp_path, api, monkeypatch):
    s = settings_for(tmp_path)
    assert demodata.seed(s, "sirius")["reason"] is None
    api.hosts, api.vulns = [], []  # the database went with its volume
    monkeypatch.setattr(demomarker, "data_volume", lambda project: "sirius_postgres_data@2026-12-01T00:00:00Z")
    again = demodata.seed(s, "sirius")
    assert (again["loaded"], again["createdVulnerabilities"], again["reason"]) == (len(HOSTS), len(CVES), None)
    assert len(api.snapshots) == 2


def test_disabled_makes_no_call(tmp_path, api):
    result = demodata.seed(settings_for(tmp_path, demo_data=False), "sirius")
    assert result["reason"] == "disabled (--no-demo-data)" and result["loaded"] == 0 and api.hosts == []


def test_a_refused_key_is_reported_without_the_key_and_leaves_no_marker(tmp_path, api, capsys):
    wrong = "wr0ng" * 10
    result = demodata.seed(settings_for(tmp_path, key=wrong), "sirius")
    assert result["reason"] == "API refused the key: HTTP 401" and result["loaded"] == 0
    assert demomarker.read_marker(str(tmp_path / "state")) is None
    assert wrong not in json.dumps(result) + capsys.readouterr().err


def test_failed_posts_are_counted_and_finished_by_the_next_deploy_without_duplicates(tmp_path, api):
    s = settings_for(tmp_path)
    api.fail_posts_for = {HOSTS[3]["hostname"]}
    first = demodata.seed(s, "sirius")
    assert first["loaded"] == len(HOSTS) - 1 and first["snapshot"] is None and api.snapshots == []
    assert first["reason"] == f"1 of {len(HOSTS)} hosts not loaded ({HOSTS[3]['hostname']}: HTTP 500); the next deploy tries again"
    api.fail_posts_for = set()
    second = demodata.seed(s, "sirius")
    assert (second["loaded"], second["skipped"], second["createdVulnerabilities"], second["reason"]) == (
        1, len(HOSTS) - 1, len(CVES), None)
    # HOSTS[3]'s CVEs were created by the first run and not listed (no host yet): not posted again.
    assert len(api.vulns) == len(CVES) and len(api.snapshots) == 1


def test_a_failed_snapshot_is_taken_by_the_next_deploy_and_only_then(tmp_path, api):
    s = settings_for(tmp_path)
    api.fail_routes = {demodata.SNAPSHOT_ROUTE: 500}
    first = demodata.seed(s, "sirius")
    assert first["reason"] == "vulnerability snapshot: HTTP 500" and first["loaded"] == len(HOSTS)
    api.fail_routes = {}
    second = demodata.seed(s, "sirius")
    assert (second["loaded"], second["snapshot"], second["reason"]) == (0, api.snapshots[0], None)
    assert demodata.seed(s, "sirius")["reason"] == demodata.ALREADY_LOADED and len(api.snapshots) == 1


def test_an_api_that_is_not_there_is_a_reason_within_the_budget(tmp_path, api, monkeypatch):
    monkeypatch.setattr(demodata, "BUDGET_SECONDS", 1.5)
    monkeypatch.setattr(demodata, "RETRY_SECONDS", 0.2)
    monkeypatch.setattr(rules, "API_PORT", 9)  # discard: nothing listens
    result = demodata.seed(settings_for(tmp_path), "sirius")
    assert result["loaded"] == 0 and result["seconds"] < 5
    assert result["reason"].startswith("API not reachable at http://127.0.0.1:9: "), result["reason"]


def test_an_unknown_data_volume_loads_nothing(tmp_path, api, monkeypatch):
    monkeypatch.setattr(demomarker, "data_volume", lambda project: None)
    result = demodata.seed(settings_for(tmp_path), "sirius")
    assert result["reason"] == "cannot identify the data volume sirius_postgres_data" and api.hosts == []


def test_an_error_quoting_the_key_is_redacted(tmp_path, api, monkeypatch, capsys):
    def leaky(*args):
        raise RuntimeError(f"boom with {KEY}")

    monkeypatch.setattr(demodata, "_seed", leaky)
    result = demodata.seed(settings_for(tmp_path), "sirius")
    assert result["reason"] == "not loaded: RuntimeError: boom with [redacted]"
    assert KEY not in capsys.readouterr().err
