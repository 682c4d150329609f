"""The demo's health now: every compose service's state, plus the last deploy's and reset's reports.

One JSON line on stdout (README "Health report"); exit 0 when every service is ok.
It prints no secret: the deploy report holds none.
"""

from __future__ import annotations

import json
import os

from engine import REPORT_SCHEMA, deploy, plan, reset, rollback, rules
from engine.docker import project_containers
from engine.report import read, to_json, utc_now


def report(state_dir: str) -> dict:
    last_deploy = read(os.path.join(state_dir, deploy.REPORT_FILE))
    last_reset = read(os.path.join(state_dir, reset.REPORT_FILE))
    # What runs is what the newer of the last deploy and the last reset left.
    last = max((r for r in (last_deploy, last_reset) if r), key=lambda r: r.finished_at or "", default=None)
    # After a rollback the last deploy is the failed one; what runs is the last healthy one.
    serving = rollback.load(state_dir) if last and last.status == "rolled-back" else None
    project = (serving["project"] if serving else last.project if last else None) or rules.DEFAULT_PROJECT
    containers = {plan.service_of(c): c for c in project_containers(project)}
    expected = sorted(set(last.services if last else {}) | set(containers))
    services = {}
    for name in expected:
        c = containers.get(name)
        state = (c or {}).get("State") or {}
        services[name] = {
            "state": state.get("Status", "missing"),
            "health": (state.get("Health") or {}).get("Status", "none"),
            "exitCode": state.get("ExitCode"),
            "ok": c is not None and plan.verdict_of(c) == plan.OK,
        }
    healthy = bool(services) and all(s["ok"] for s in services.values())
    if serving:
        image_tag, built, digests = serving.get("imageTag"), [], {
            name: ref.partition("@")[2] or None for name, ref in serving["runImages"].items()}
    else:
        image_tag, built = (last.image_tag, last.built_locally) if last else (None, [])
        digests = {name: s.digest for name, s in (last.services if last else {}).items()}
    return {
        "schema": REPORT_SCHEMA, "status": "healthy" if healthy else "unhealthy", "checkedAt": utc_now(),
        "services": services, "imageTag": image_tag, "builtLocally": built, "digests": digests,
        "deploySeconds": last_deploy.total_seconds if last_deploy else None,
        "phases": to_json(last_deploy.phases) if last_deploy else None,
        "lastDeploy": to_json(last_deploy), "lastReset": to_json(last_reset),
    }


def main(state_dir: str) -> int:
    result = report(state_dir)
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0 if result["status"] == "healthy" else 1
