"""Demo data on a real Docker Engine: loaded through the (stand-in) API once per data volume.

The stand-in API keeps posted hosts in the postgres stand-in's data volume (see
testbed/harness.py), so what `GET /host` answers lives and dies with that volume, as
on the real stack.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from engine import demodata
from engine.settings import Settings
from testbed.harness import TAG_V1, TAG_V2, remove_project
from .site import Site

API = "http://127.0.0.1:9001"


@pytest.fixture
def site(tmp_path, clean_project, registry, sirius_repo, standins):
    return Site(tmp_path, clean_project, registry, sirius_repo)


def api_key(site: Site) -> str:
    return (site.project / "secrets" / "sirius_api_key.txt").read_text().strip()


def listed_hosts(site: Site, key: str | None = None) -> list[dict]:
    request = urllib.request.Request(f"{API}/host", headers={"X-API-Key": key or api_key(site)})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_fresh_deploy_loads_the_hosts_once_and_later_deploys_do_not(site, no_sirius_images):
    expected = demodata.load_hosts()
    first = site.deploy(TAG_V1)
    assert first.code == 0, first.stderr
    assert first.report["demoData"]["loaded"] == len(expected), first.report["demoData"]
    assert (first.report["demoData"]["skipped"], first.report["demoData"]["reason"]) == (0, None)
    assert first.report["demoData"]["seconds"] < demodata.BUDGET_SECONDS
    assert listed_hosts(site) == expected  # each exactly once, as the data file has them
    assert api_key(site) not in first.stdout + first.stderr
    with pytest.raises(urllib.error.HTTPError) as refused:
        listed_hosts(site, key="not-the-key")
    assert refused.value.code == 401

    upgrade = site.deploy(TAG_V2)
    assert upgrade.code == 0, upgrade.stderr
    assert upgrade.report["demoData"] == {**upgrade.report["demoData"], "loaded": 0, "skipped": 0,
                                          "reason": "already loaded for this data volume"}
    assert len(listed_hosts(site)) == len(expected)

    # Without the marker (a new state dir, say) the API's own list prevents duplicates,
    # and the hosts outlived a recreated API container: they are in the data volume.
    (site.state / demodata.MARKER_FILE).unlink()
    site.engine.run("rm", "-f", site.containers()["sirius-api"]["id"])
    again = site.deploy(TAG_V2)
    assert again.code == 0, again.stderr
    assert again.report["services"]["sirius-api"]["recreated"]
    assert again.report["demoData"]["loaded"] == 0 and again.report["demoData"]["skipped"] == len(expected)
    assert again.report["demoData"]["reason"] is None
    assert listed_hosts(site) == expected

    # A new data volume is another database: loaded again, same state dir.
    remove_project(site.engine)
    fresh_volume = site.deploy(TAG_V2)
    assert fresh_volume.code == 0, fresh_volume.stderr
    assert fresh_volume.report["demoData"]["loaded"] == len(expected)
    assert listed_hosts(site) == expected


def test_no_demo_data_loads_nothing_and_a_wrong_key_is_reported_without_it(site, no_sirius_images, monkeypatch):
    off = site.deploy(TAG_V1, demo_data=False)
    assert off.code == 0, off.stderr
    assert off.report["demoData"] == {"loaded": 0, "skipped": 0, "reason": "disabled (--no-demo-data)", "seconds": 0.0}
    assert listed_hosts(site) == []
    assert not (site.state / demodata.MARKER_FILE).exists()

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
    assert listed_hosts(site) == [] and not (site.state / demodata.MARKER_FILE).exists()

    # Turned on again, the next deploy of the same volume loads: nothing was loaded yet.
    on = site.deploy(TAG_V1)
    assert on.code == 0, on.stderr
    assert on.report["demoData"]["loaded"] == len(demodata.load_hosts())
    assert len(listed_hosts(site)) == len(demodata.load_hosts())
