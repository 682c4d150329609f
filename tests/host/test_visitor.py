"""Never a dead page: a visitor probing the demo at 10 Hz (testbed/probe.py) through a UI
tag change and a rollback meets no refused connection and no error, only the proxy's
"being updated" page (503, Retry-After) while the UI container is replaced; the proxy
itself is never recreated. API clients get the page as JSON.
"""

from __future__ import annotations

import json

from engine import proxyconfig, rules
from testbed.probe import Probe
from testbed.standins import TAG_BROKEN, TAG_V1, TAG_V2
from testbed.web import http_request

from .site import Site

UI = f"http://127.0.0.1:{rules.UI_PORT}/"
API = f"http://127.0.0.1:{rules.API_PORT}{rules.API_HEALTH_PATH}"
# One health timeout for every deploy: it is part of the override (start_period).
TIMEOUT = 40


def published(site: Site, service: str) -> list[str]:
    """host_ip:host_port of every port the service's container publishes."""
    ids = site.engine.run("ps", "-q", "--filter", f"label=com.docker.compose.service={service}").stdout.split()
    ports = json.loads(site.engine.run("inspect", *ids).stdout)[0]["HostConfig"]["PortBindings"]
    return sorted(f"{b['HostIp']}:{b['HostPort']}" for bindings in ports.values() for b in bindings)


def assert_never_dead(result, what: str) -> None:
    summary = result.summary()
    print(f"{what}: {summary}")  # the figures, for the report (pytest -s)
    assert result.refused == 0 and result.errors == [], summary
    assert result.looks and result.looks[-1].kind == "ok", summary  # served again at the end


def test_a_ui_tag_change_and_a_rollback_never_refuse_a_visitor(site, no_sirius_images):
    first = site.deploy(TAG_V1, health_timeout=TIMEOUT)
    assert first.code == 0, first.stderr
    assert first.report["proxy"]["error"] is None and first.report["proxy"]["recreated"] is True
    assert "proxy: the UI and the API answer through sirius-proxy" in first.stderr
    # Visitors reach the proxy; the UI and API containers listen on loopback only, elsewhere.
    assert published(site, "sirius-ui") == ["127.0.0.1:13000"]
    assert published(site, "sirius-api") == ["127.0.0.1:19001"]
    status, _, page = http_request(UI)
    assert status == 200 and b'data-standin-version="v1"' in page
    proxy_id = site.containers()["sirius-proxy"]["id"]

    with Probe(UI) as ui, Probe(API) as api:
        change = site.deploy(TAG_V2, health_timeout=TIMEOUT)
    assert change.code == 0, change.stderr
    assert change.report["services"]["sirius-ui"]["recreated"] is True
    assert_never_dead(ui.result, "ui tag change, UI")
    assert ui.result.updating > 0  # the UI really was away: the page stood in for it
    assert_never_dead(api.result, "ui tag change, API")
    assert api.result.ok == len(api.result.looks)  # the API was not touched
    assert site.containers()["sirius-proxy"]["id"] == proxy_id and change.report["proxy"]["recreated"] is False
    assert b'data-standin-version="v2"' in http_request(UI)[2]

    with Probe(UI) as ui:
        bad = site.deploy(TAG_BROKEN, health_timeout=TIMEOUT)  # a UI that never listens: rolled back to v2
    assert bad.code == 1 and bad.report["status"] == "rolled-back", bad.stderr
    assert_never_dead(ui.result, "rollback, UI")
    assert ui.result.updating > 0
    assert site.containers()["sirius-proxy"]["id"] == proxy_id
    assert b'data-standin-version="v2"' in http_request(UI)[2]

    # API clients get the page as JSON while the API is away.
    site.engine.run("stop", "-t", "1", site.containers()["sirius-api"]["id"])
    status, headers, body = http_request(API)
    assert status == 503 and headers["Retry-After"] == str(proxyconfig.RETRY_AFTER_SECONDS)
    assert headers["Content-Type"] == "application/json" and json.loads(body)["status"] == "updating"
    status, headers, body = http_request(UI)
    assert status == 200  # the UI's own page still serves
