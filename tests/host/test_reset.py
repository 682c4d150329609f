"""`engine reset` on a real Docker Engine: a visitor's changes (a deleted host, a changed
admin password in the UI) are gone after a reset, and a reset that fails still leaves a
demo that serves: the last healthy deploy, on fresh data.

The stand-in UI keeps its admin user where upstream does (/app/prisma/dev.db inside the
container, seeded only when missing); the stand-in API keeps hosts in the postgres
stand-in's data volume, and deletes them with upstream's `POST /host/delete`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from ci import reset as reset_workflow
from engine import demomodel, settings
from testbed.registry import MANIFEST_ACCEPT
from testbed.probe import Probe
from testbed.standins import SERVICE_IMAGES, TAG_BROKEN, TAG_V1

from .site import Site

UI = "http://127.0.0.1:3000"
API = "http://127.0.0.1:9001"
VISITORS_PASSWORD = "visitor-was-here"
DATA_VOLUMES = {"sirius_postgres_data", "sirius_valkey_data", "sirius_rabbitmq_data"}


def call(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def login(password: str) -> int:
    form = urllib.parse.urlencode({"username": "admin", "password": password}).encode()
    return call(f"{UI}/api/auth/callback/credentials", form,
                {"Content-Type": "application/x-www-form-urlencoded"})[0]


def change_password(current: str, new: str) -> int:
    body = {"json": {"userId": 1, "currentPassword": current, "newPassword": new, "confirmPassword": new}}
    return call(f"{UI}/api/trpc/user.changePassword", json.dumps(body).encode(),
                {"Content-Type": "application/json"})[0]


def api_key(site: Site) -> str:
    return (site.project / "secrets" / "sirius_api_key.txt").read_text().strip()


def hosts(site: Site) -> list[dict]:
    status, body = call(f"{API}/host", headers={"X-API-Key": api_key(site)})
    assert status == 200, body
    return json.loads(body)


def delete_host(site: Site, ip: str) -> int:
    return call(f"{API}/host/delete", json.dumps({"ip": ip}).encode(),
                {"X-API-Key": api_key(site), "Content-Type": "application/json"})[0]


def volumes(site: Site) -> dict[str, str]:
    names = site.engine.run("volume", "ls", "-q", "--filter", "label=com.docker.compose.project=sirius").stdout.split()
    return {v["Name"]: v["CreatedAt"] for v in json.loads(site.engine.run("volume", "inspect", *names).stdout)}


def visit(site: Site) -> str:
    """What a visitor does with the shared login: a new admin password, a host deleted."""
    password = site.env_file()["INITIAL_ADMIN_PASSWORD"]
    assert login(password) == 200 and login(VISITORS_PASSWORD) == 401
    assert change_password(password, VISITORS_PASSWORD) == 200
    assert login(password) == 401 and login(VISITORS_PASSWORD) == 200
    victim = hosts(site)[0]["ip"]
    assert delete_host(site, victim) == 200
    assert victim not in {h["ip"] for h in hosts(site)}
    return password


def assert_new_demo(site: Site, password: str, before: dict[str, str]) -> None:
    # The deleted host is back, each host once (GET /host answers in upstream's model).
    assert sorted(h["ip"] for h in hosts(site)) == sorted(h["ip"] for h in demomodel.load_hosts())
    assert login(password) == 200 and login(VISITORS_PASSWORD) == 401
    after = volumes(site)
    assert DATA_VOLUMES <= set(after)
    assert all(after[name] != before[name] for name in DATA_VOLUMES), (before, after)


def test_a_reset_undoes_what_visitors_changed(site, standins, no_sirius_images):
    first = site.deploy(TAG_V1)
    assert first.code == 0, first.stderr
    password = visit(site)
    before_volumes, before_ids = volumes(site), {s: c["id"] for s, c in site.containers().items()}
    deploy_report = (site.state / "deploy.json").read_text()

    with Probe(UI) as ui:  # a visitor during the reset: the "being updated" page, never a refused connection
        reset = site.reset()
    assert reset.code == 0, reset.stderr
    summary = ui.result.summary()
    assert ui.result.refused == 0 and ui.result.errors == [] and ui.result.updating > 0, summary
    assert ui.result.looks[-1].kind == "ok", summary
    report = reset.report
    assert (report["kind"], report["status"], report["error"]) == ("reset", "reset", None)
    assert report["reset"]["demo"] == "fresh"
    assert set(report["reset"]["removedVolumes"]) == DATA_VOLUMES
    assert report["reset"]["removedServices"] == sorted(SERVICE_IMAGES)
    assert report["serving"] == {"ref": "main", "imageTag": TAG_V1, "commit": first.report["commit"]}
    assert report["pullRounds"] >= 1  # the tag's current images, asked of the registry again
    assert report["demoData"]["loaded"] == len(demomodel.load_hosts()) and report["demoData"]["reason"] is None
    assert report["rollback"] is None
    assert_new_demo(site, password, before_volumes)
    # Every Sirius container new; the proxy in front of them stays, serving the page meanwhile.
    after_ids = {s: c["id"] for s, c in site.containers().items()}
    assert all(after_ids[s] != before_ids[s] for s in SERVICE_IMAGES), (before_ids, after_ids)
    assert after_ids["sirius-proxy"] == before_ids["sirius-proxy"]
    assert "reset: done in" in reset.stderr.strip().splitlines()[-1]
    # Its own report; the deploy's stays; health tells what runs from the newer one.
    assert json.loads((site.state / "reset.json").read_text()) == report
    assert (site.state / "deploy.json").read_text() == deploy_report
    code, health = site.health()
    assert code == 0 and health["lastReset"]["status"] == "reset" and health["lastDeploy"]["status"] == "healthy"
    for secret in site.secret_values():
        assert secret not in reset.stdout + reset.stderr
    # What the workflow reads of it, from pulumi's log of the command's output.
    markdown, ok = reset_workflow.render_summary(reset_workflow.reset_report(indented(reset.stdout)), stack="demo",
                                                 outcome="success")
    assert ok and "fresh: a fresh demo" in markdown and f"tag `{TAG_V1}`" in markdown


def move_tag(registry, repo: str, tag: str, to: str) -> None:
    """Point repo:tag at the manifest `to` (a tag or digest) names, as a push of that image would."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, whatever the environment says
    request = urllib.request.Request(f"{registry.url}/v2/{repo}/manifests/{to}", headers={"Accept": MANIFEST_ACCEPT})
    with direct.open(request, timeout=10) as response:
        body, kind = response.read(), response.headers["Content-Type"]
    put = urllib.request.Request(f"{registry.url}/v2/{repo}/manifests/{tag}", data=body, method="PUT",
                                 headers={"Content-Type": kind})
    with direct.open(put, timeout=10) as response:
        assert response.status == 201, response.status


def test_a_reset_that_fails_serves_the_last_healthy_deploy_on_fresh_data(site, registry, standins, no_sirius_images):
    good = site.deploy(TAG_V1, health_timeout=40)
    assert good.code == 0, good.stderr
    password = visit(site)
    before_volumes = volumes(site)
    # The configured tag goes bad (a broken sirius-ui pushed as v1): the reset pulls it. (A
    # deploy that failed and rolled back leaves nothing for a reset to replay: its settings
    # are remembered only once a deploy is healthy.)
    ui, v1 = standins.repo("sirius-ui"), standins.digest("sirius-ui", TAG_V1)
    move_tag(registry, ui, TAG_V1, standins.digest("sirius-ui", TAG_BROKEN))
    try:
        reset = site.reset()
    finally:
        move_tag(registry, ui, TAG_V1, v1)  # v1 as the other tests know it
    assert reset.code == 1, reset.stderr
    report = reset.report
    assert report["status"] == "rolled-back" and report["reset"]["demo"] == "last-healthy"
    assert "sirius-ui" in report["error"] and set(report["reset"]["removedVolumes"]) == DATA_VOLUMES
    assert report["serving"] == {"ref": "main", "imageTag": TAG_V1, "commit": good.report["commit"]}
    assert report["rollback"]["status"] == "healthy"
    assert report["demoData"]["loaded"] == len(demomodel.load_hosts())
    last = reset.stderr.strip().splitlines()[-1]
    assert "reset: FAILED" in last and "last healthy deploy on fresh data" in last and f"tag {TAG_V1}" in last
    assert_new_demo(site, password, before_volumes)
    containers = site.containers()
    for service, image in SERVICE_IMAGES.items():
        assert containers[service]["image"].endswith(f"{image}@{standins.digest(image, TAG_V1)}"), service
    code, health = site.health()
    assert code == 0 and health["status"] == "healthy" and health["imageTag"] == TAG_V1
    # The workflow fails on it and says which demo serves.
    markdown, ok = reset_workflow.render_summary(reset_workflow.reset_report(indented(reset.stdout)), stack="demo",
                                                 outcome="failure")
    assert not ok and "**FAILED**" in markdown and "last-healthy: the last healthy deploy" in markdown
    assert f"tag `{TAG_V1}`" in markdown and "sirius-ui" in markdown


def indented(stdout: str) -> str:
    """The command's stdout as pulumi logs it: each line indented."""
    return "\n".join("      " + line for line in stdout.splitlines())


def test_a_reset_stopped_before_the_wipe_still_leaves_a_fresh_last_healthy_demo(site, standins, no_sirius_images):
    """The project cannot be fetched (the repository went away): nothing was removed yet, so
    the fallback removes the visitors' data itself and puts the last healthy deploy back."""
    good = site.deploy(TAG_V1)
    assert good.code == 0, good.stderr
    password = visit(site)
    before_volumes = volumes(site)
    remembered = site.state / settings.REMEMBERED
    remembered.write_text(json.dumps({**json.loads(remembered.read_text()), "repo_url": "file:///nonexistent/sirius.git"}))

    reset = site.reset()
    assert reset.code == 1
    report = reset.report
    assert report["status"] == "rolled-back" and report["reset"]["demo"] == "last-healthy"
    assert "cannot fetch file:///nonexistent/sirius.git" in report["error"]
    assert set(report["reset"]["removedVolumes"]) == DATA_VOLUMES
    assert report["serving"] == {"ref": "main", "imageTag": TAG_V1, "commit": good.report["commit"]}
    assert_new_demo(site, password, before_volumes)
