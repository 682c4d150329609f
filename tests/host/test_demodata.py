"""Demo data on a real Docker Engine: loaded through the (stand-in) API once per data volume.

The stand-in API stores what upstream stores (testbed/standin: sirius-standin-data and
sirius-standin-model, from go-api's types) in the postgres stand-in's data volume (see
testbed/README.md), so what `GET /host` answers lives and dies with that volume, as on
the real stack, and a port sent as `id` or a CVE without a score shows as upstream shows it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from engine import demodata, demomarker, demomodel
from engine.settings import Settings
from testbed.compose_checkout import remove_project
from testbed.standins import TAG_V1, TAG_V2
from .site import Site

API = "http://127.0.0.1:9001"
HOSTS = demomodel.load_hosts()
CVES = demomodel.vulnerability_bodies(HOSTS)


def api_key(site: Site) -> str:
    return (site.project / "secrets" / "sirius_api_key.txt").read_text().strip()


def get(site: Site, path: str, key: str | None = None):
    request = urllib.request.Request(f"{API}{path}", headers={"X-API-Key": key or api_key(site)})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def listed_hosts(site: Site, key: str | None = None) -> list[dict]:
    return get(site, "/host", key)


def as_shown(hosts: list[dict]) -> list[tuple]:
    """What a visitor sees of each host: address, name, ports by number, CVEs with scores."""
    return [(h["ip"], h["hostname"], sorted((p["number"], p["protocol"]) for p in h.get("ports") or []),
             sorted((v["vid"], v.get("riskScore", 0)) for v in h.get("vulnerabilities") or [])) for h in hosts]


def test_a_fresh_deploy_loads_the_set_in_upstreams_model_once_and_later_deploys_do_not(site, no_sirius_images):
    first = site.deploy(TAG_V1)
    assert first.code == 0, first.stderr
    demo = first.report["demoData"]
    assert demo == {**demo, "hosts": len(HOSTS), "vulnerabilities": len(CVES), "loaded": len(HOSTS), "skipped": 0,
                    "createdVulnerabilities": len(CVES), "reason": None}, demo
    assert demo["seconds"] < demodata.BUDGET_SECONDS
    assert as_shown(listed_hosts(site)) == as_shown(HOSTS)  # each once, ports by number, every CVE scored
    listed_cves = get(site, demodata.VULNERABILITY_LIST_ROUTE)
    assert sorted((v["vid"], v["riskScore"]) for v in listed_cves) == sorted((v["vid"], v["riskScore"]) for v in CVES)
    assert get(site, f"/host/{HOSTS[0]['ip']}/sources")["sources"] == [demodata.SCANNER_NAME]
    assert get(site, "/api/v1/statistics/vulnerability-snapshots")["available_snapshot_ids"] == [demo["snapshot"]]
    assert api_key(site) not in first.stdout + first.stderr
    with pytest.raises(urllib.error.HTTPError) as refused:
        listed_hosts(site, key="not-the-key")
    assert refused.value.code == 401

    upgrade = site.deploy(TAG_V2)
    assert upgrade.code == 0, upgrade.stderr
    assert upgrade.report["demoData"] == {**upgrade.report["demoData"], "loaded": 0, "skipped": 0,
                                          "reason": "already loaded for this data volume"}
    assert len(listed_hosts(site)) == len(HOSTS)

    # Without the marker (a new state dir, say) the API's own lists prevent duplicates,
    # and the data outlived a recreated API container: it is in the data volume.
    (site.state / demomarker.MARKER_FILE).unlink()
    site.engine.run("rm", "-f", site.containers()["sirius-api"]["id"])
    again = site.deploy(TAG_V2)
    assert again.code == 0, again.stderr
    assert again.report["services"]["sirius-api"]["recreated"]
    assert again.report["demoData"] == {**again.report["demoData"], "hosts": len(HOSTS), "vulnerabilities": len(CVES),
                                        "loaded": 0, "skipped": len(HOSTS), "createdVulnerabilities": 0,
                                        "snapshot": None, "reason": None}
    assert as_shown(listed_hosts(site)) == as_shown(HOSTS)
    assert len(get(site, "/api/v1/statistics/vulnerability-snapshots")["available_snapshot_ids"]) == 1

    # A new data volume is another database: loaded again, same state dir.
    remove_project(site.engine)
    fresh_volume = site.deploy(TAG_V2)
    assert fresh_volume.code == 0, fresh_volume.stderr
    assert fresh_volume.report["demoData"]["loaded"] == len(HOSTS)
    assert fresh_volume.report["demoData"]["hosts"] == len(HOSTS)
    assert as_shown(listed_hosts(site)) == as_shown(HOSTS)


def test_no_demo_data_loads_nothing_and_a_wrong_key_is_reported_without_it(site, no_sirius_images, monkeypatch):
    off = site.deploy(TAG_V1, demo_data=False)
    assert off.code == 0, off.stderr
    assert off.report["demoData"] == {"hosts": None, "vulnerabilities": None, "loaded": 0, "skipped": 0,
                                      "createdVulnerabilities": 0, "snapshot": None,
                                      "reason": "disabled (--no-demo-data)", "seconds": 0.0}
    assert listed_hosts(site) == []
    assert not (site.state / demomarker.MARKER_FILE).exists()

    # The seeding step with a key the running API does not have, against the real API.
    wrong_dir = site.state.parent / "wrong-key"
    (wrong_dir / "secrets").mkdir(parents=True)
    wrong_key = "0123abcd" * 8
    (wrong_dir / "secrets" / "sirius_api_key.txt").write_text(wrong_key + "\n")
    for name in ("DOCKER_HOST", "DOCKER_CONFIG", "PATH"):
        monkeypatch.setenv(name, site.engine.env[name])
    wrong = Settings(repo_url=site.repo_url, ref="main", git_ref="main", image_tag=TAG_V1, bind_address="127.0.0.1",
                     project_dir=str(wrong_dir), state_dir=str(site.state))
    result = demodata.seed(wrong, "sirius")
    assert (result["loaded"], result["reason"]) == (0, "API refused the key: HTTP 401")
    assert wrong_key not in json.dumps(result)
    assert listed_hosts(site) == [] and not (site.state / demomarker.MARKER_FILE).exists()

    # The stand-in stores what upstream would of the old form (issue 18): a host posted
    # with `id` ports, no scores and no X-Scanner-Name shows one port 0, unscored CVEs,
    # credited to urllib's "python-script".
    old = {k: HOSTS[0][k] for k in ("hid", "os", "osversion", "ip", "hostname")}
    old["ports"] = [{"id": p["number"], "protocol": p["protocol"], "state": p["state"]} for p in HOSTS[0]["ports"]]
    old["vulnerabilities"] = [{k: v[k] for k in ("vid", "title", "description")} for v in HOSTS[0]["vulnerabilities"][:1]]
    request = urllib.request.Request(f"{API}/host", data=json.dumps(old).encode(), method="POST",
                                     headers={"X-API-Key": api_key(site), "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    [shown] = listed_hosts(site)
    assert shown["ports"] == [{"number": 0, "protocol": "tcp", "state": "open"}]
    assert [set(v) for v in shown["vulnerabilities"]] == [{"vid", "title", "description"}]  # riskScore 0: omitted
    assert [v["riskScore"] for v in get(site, demodata.VULNERABILITY_LIST_ROUTE)] == [0]
    assert get(site, f"/host/{old['ip']}/sources")["sources"] == ["python-script"]

    # Turned on again, the next deploy of the same volume loads: nothing was loaded yet.
    # The old-form host is listed already (skipped), and the read-back says what is wrong.
    on = site.deploy(TAG_V1)
    assert on.code == 0, on.stderr
    demo = on.report["demoData"]
    assert (demo["loaded"], demo["skipped"], demo["hosts"]) == (len(HOSTS) - 1, 1, len(HOSTS)), demo
    # Its EternalBlue row was scored by the hosts that share it; Zerologon, on dc01 only, was never posted.
    assert demo["reason"] == (f"read back: 1 hosts listed with other ports (first: {HOSTS[0]['hostname']}); "
                              "1 vulnerabilities not listed"), demo
    assert len(listed_hosts(site)) == len(HOSTS)
