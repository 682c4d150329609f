"""docs/demo-data.md shows what the engine does: its setting, flag, routes, limits and report field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from engine import demodata, demomarker, demomodel, settings

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = (ROOT / "docs" / "demo-data.md").read_text()


def test_the_report_example_has_exactly_the_fields_the_engine_reports():
    example = json.loads("{" + re.search(r'```json\n(.*?)\n```', DOC, re.S).group(1) + "}")["demoData"]
    assert set(example) == set(demodata.outcome(0, 0, None))
    for key in example:
        assert f"`{key}`" in DOC, key


def test_the_setting_and_the_flag_exist():
    assert "demoData: false" in DOC and "--no-demo-data" in DOC
    config = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert config["demoData"]["default"] is True
    assert settings.from_args(["--no-demo-data"]).demo_data is False
    assert demodata.DISABLED == "disabled (--no-demo-data)" and f"`{demodata.DISABLED.split(' (')[0]}" in DOC


def test_the_routes_header_limits_and_reasons_are_the_engines():
    for route in (demodata.HOSTS_ROUTE, demodata.VULNERABILITY_ROUTE, demodata.VULNERABILITY_LIST_ROUTE,
                  demodata.SNAPSHOT_ROUTE):
        assert f"`GET {route}`" in DOC or f"`POST {route}`" in DOC, route
    assert f"`X-Scanner-Name: {demodata.SCANNER_NAME}`" in DOC
    assert f"{demodata.REQUEST_SECONDS:.0f} s per request, {demodata.BUDGET_SECONDS:.0f} s in all" in DOC
    assert f"`{demodata.ALREADY_LOADED}`" in DOC and f"`{demomarker.MARKER_FILE}`" in DOC.replace("<state-dir>/", "")


def test_the_counts_and_fields_the_doc_gives_are_the_data_sets():
    hosts = demomodel.load_hosts()
    assert f"{len(hosts)} hosts" in DOC
    assert f"{len(demomodel.vulnerability_bodies(hosts))} real CVEs" in DOC
    for field in demomodel.HOST_FIELDS:
        assert f"`{field}`" in DOC, field
