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

from engine import demodata, envfile
from engine.settings import Settings

DATA = json.loads((Path(demodata.__file__).parent / demodata.DATA_FILE).read_text())
CVE = re.compile(r"CVE-\d{4}-\d{4,}")
KEY = "k3y" * 16


# --- the data set ----------------------------------------------------------------------


def test_the_data_set_is_a_company_of_about_twenty_hosts_with_real_cve_ids():
    hosts = demodata.load_hosts()
    assert 18 <= len(hosts) <= 30
    assert len({h["ip"] for h in hosts}) == len(hosts) and len({h["hid"] for h in hosts}) == len(hosts)
    assert len({h["hostname"] for h in hosts}) == len(hosts)
    for h in hosts:
        assert set(h) == set(demodata.HOST_FIELDS), h["hostname"]
        assert h["os"] and h["osversion"] and re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}", h["ip"])
        assert h["ports"] and h["vulnerabilities"], h["hostname"]
        for port in h["ports"]:
            assert set(port) == {"id", "protocol", "state"} and isinstance(port["id"], int) and 0 < port["id"] < 65536
            assert port["protocol"] in ("tcp", "udp") and port["state"] == "open"
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
    # One CVE, one title and description, wherever it appears.
    texts: dict[str, set] = {}
    for h in DATA["hosts"]:
        for v in h["vulnerabilities"]:
            texts.setdefault(v["vid"], set()).add((v["title"], v["description"]))
    assert all(len(t) == 1 for t in texts.values())


def test_the_data_file_is_ascii_so_every_layer_counts_bytes_the_same():
    raw = (Path(demodata.__file__).parent / demodata.DATA_FILE).read_bytes()
    raw.decode("ascii")


def test_extra_keys_of_the_file_are_not_posted():
    raw = json.dumps({"hosts": [{**DATA["hosts"][0], "segment": "x", "note": "kept out"}]}).encode()
    assert set(demodata.load_hosts(raw)[0]) == set(demodata.HOST_FIELDS)


# --- which hosts to post -----------------------------------------------------------------


def test_hosts_already_in_the_api_by_ip_or_hid_are_skipped():
    hosts = demodata.load_hosts()
    existing = [{"ip": hosts[0]["ip"], "hid": "other"}, {"ip": "192.0.2.1", "hid": hosts[1]["hid"]},
                {"ip": "192.0.2.2", "hid": "unrelated"}]
    todo, skipped = demodata.to_post(hosts, existing)
    assert skipped == 2 and todo == hosts[2:]
    assert demodata.to_post(hosts, []) == (hosts, 0)
    assert demodata.to_post(hosts, hosts) == ([], len(hosts))


def test_the_api_listing_is_read_as_an_array_or_an_object_holding_one():
    assert demodata.listed_hosts('[{"ip": "10.0.0.1"}, 3]') == [{"ip": "10.0.0.1"}]
    assert demodata.listed_hosts('{"hosts": [{"ip": "10.0.0.1"}]}') == [{"ip": "10.0.0.1"}]
    assert demodata.listed_hosts("") == [] and demodata.listed_hosts("null") == []
    with pytest.raises(ValueError):
        demodata.listed_hosts('{"error": "nope"}')


# --- once per data volume ----------------------------------------------------------------


def test_the_marker_names_the_volume_it_was_loaded_into(tmp_path):
    volume = demodata.volume_identity("sirius_postgres_data@2026-11-28T16:00:00Z\n")
    assert volume == "sirius_postgres_data@2026-11-28T16:00:00Z"
    assert demodata.read_marker(str(tmp_path)) is None
    demodata.write_marker(str(tmp_path), demodata.marker_record(volume, 22, 0))
    marker = demodata.read_marker(str(tmp_path))
    assert demodata.loaded_for(marker, volume)
    # The same name made again is another volume: load again.
    assert not demodata.loaded_for(marker, "sirius_postgres_data@2026-11-29T09:00:00Z")
    assert not demodata.loaded_for(None, volume)
    assert demodata.volume_identity("") is None and demodata.volume_identity("name@") is None


def test_a_damaged_marker_means_not_loaded(tmp_path):
    (tmp_path / demodata.MARKER_FILE).write_text("{not json")
    assert demodata.read_marker(str(tmp_path)) is None
    (tmp_path / demodata.MARKER_FILE).write_text("[1]")
    assert demodata.read_marker(str(tmp_path)) is None


# --- seed against an in-process API ------------------------------------------------------


class FakeApi(http.server.BaseHTTPRequestHandler):
    """GET/POST /host with the X-API-Key check, like sirius-api."""

    key = KEY
    hosts: list[dict] = []
    fail_posts_for: set[str] = set()

    def answer(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.headers.get("X-API-Key") != self.key:
            return self.answer(401, {"error": "Unauthorized"})
        self.answer(200, self.hosts)

    def do_POST(self) -> None:  # noqa: N802
        if self.headers.get("X-API-Key") != self.key:
            return self.answer(401, {"error": "Unauthorized"})
        host = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if host["hostname"] in self.fail_posts_for:
            return self.answer(500, {"error": "database is locked"})
        self.hosts.append(host)
        self.answer(200, {"status": "ok"})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def api(monkeypatch):
    FakeApi.hosts, FakeApi.fail_posts_for, FakeApi.key = [], set(), KEY
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setattr(demodata.rules, "API_PORT", server.server_address[1])
    monkeypatch.setattr(demodata, "data_volume", lambda project: f"{project}_postgres_data@2026-11-28T16:00:00Z")
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


def test_seed_loads_every_host_once_then_says_it_already_did(tmp_path, api):
    s = settings_for(tmp_path)
    first = demodata.seed(s, "sirius")
    total = len(demodata.load_hosts())
    assert (first["loaded"], first["skipped"], first["reason"]) == (total, 0, None)
    assert [h["ip"] for h in api.hosts] == [h["ip"] for h in demodata.load_hosts()]
    again = demodata.seed(s, "sirius")
    assert (again["loaded"], again["reason"]) == (0, demodata.ALREADY_LOADED)
    assert len(api.hosts) == total


def test_a_lost_marker_does_not_duplicate_hosts(tmp_path, api):
    s = settings_for(tmp_path)
    api.hosts = [dict(h) for h in demodata.load_hosts()[:5]]
    result = demodata.seed(s, "sirius")
    assert (result["loaded"], result["skipped"], result["reason"]) == (len(demodata.load_hosts()) - 5, 5, None)
    assert len({h["ip"] for h in api.hosts}) == len(api.hosts)


def test_a_new_data_volume_is_loaded_again(tmp_path, api, monkeypatch):
    s = settings_for(tmp_path)
    assert demodata.seed(s, "sirius")["reason"] is None
    api.hosts = []  # the database went with its volume
    monkeypatch.setattr(demodata, "data_volume", lambda project: "sirius_postgres_data@2026-12-01T00:00:00Z")
    assert demodata.seed(s, "sirius")["loaded"] == len(demodata.load_hosts())


def test_disabled_makes_no_call(tmp_path, api):
    result = demodata.seed(settings_for(tmp_path, demo_data=False), "sirius")
    assert result["reason"] == "disabled (--no-demo-data)" and result["loaded"] == 0 and api.hosts == []


def test_a_refused_key_is_reported_without_the_key_and_leaves_no_marker(tmp_path, api, capsys):
    wrong = "wr0ng" * 10
    result = demodata.seed(settings_for(tmp_path, key=wrong), "sirius")
    assert result["reason"] == "API refused the key: HTTP 401" and result["loaded"] == 0
    assert demodata.read_marker(str(tmp_path / "state")) is None
    assert wrong not in json.dumps(result) + capsys.readouterr().err


def test_failed_posts_are_counted_and_retried_by_the_next_deploy(tmp_path, api):
    s = settings_for(tmp_path)
    hosts = demodata.load_hosts()
    api.fail_posts_for = {hosts[3]["hostname"]}
    first = demodata.seed(s, "sirius")
    assert first["loaded"] == len(hosts) - 1
    assert first["reason"] == f"1 of {len(hosts)} hosts not loaded ({hosts[3]['hostname']}: HTTP 500); the next deploy tries again"
    api.fail_posts_for = set()
    second = demodata.seed(s, "sirius")
    assert (second["loaded"], second["skipped"], second["reason"]) == (1, len(hosts) - 1, None)


def test_an_api_that_is_not_there_is_a_reason_within_the_budget(tmp_path, api, monkeypatch):
    monkeypatch.setattr(demodata, "BUDGET_SECONDS", 1.5)
    monkeypatch.setattr(demodata, "RETRY_SECONDS", 0.2)
    monkeypatch.setattr(demodata.rules, "API_PORT", 9)  # discard: nothing listens
    result = demodata.seed(settings_for(tmp_path), "sirius")
    assert result["loaded"] == 0 and result["seconds"] < 5
    assert result["reason"].startswith("API not reachable at http://127.0.0.1:9: "), result["reason"]


def test_an_unknown_data_volume_loads_nothing(tmp_path, api, monkeypatch):
    monkeypatch.setattr(demodata, "data_volume", lambda project: None)
    result = demodata.seed(settings_for(tmp_path), "sirius")
    assert result["reason"] == "cannot identify the data volume sirius_postgres_data" and api.hosts == []


def test_an_error_quoting_the_key_is_redacted(tmp_path, api, monkeypatch, capsys):
    def leaky(*args):
        raise RuntimeError(f"boom with {KEY}")

    monkeypatch.setattr(demodata, "_seed", leaky)
    result = demodata.seed(settings_for(tmp_path), "sirius")
    assert result["reason"] == "not loaded: RuntimeError: boom with [redacted]"
    assert KEY not in capsys.readouterr().err
