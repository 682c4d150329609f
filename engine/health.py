"""The demo's health now: every compose service's state, plus the last deploy's and reset's reports.

One JSON line on stdout (README "Health report"); exit 0 when every service is ok.
It prints no secret: the deploy report holds none.
"""

from __future__ import annotations

import json
import os

from engine import REPORT_SCHEMA, deploy, plan, reset, rollback, rules
from engine.docker import project_containers



def read_report(state_dir: str, name: str) -> dict | None:
    path = os.path.join(state_dir, name)
    return json.load(open(path)) if os.path.exists(path) else None


def report(state_dir: str) -> dict:
    last_deploy, last_reset = read_report(state_dir, deploy.REPORT_FILE), read_report(state_dir, reset.REPORT_FILE)
    # What runs is what the newer of the last deploy and the last reset left.
    last = max((r for r in (last_deploy, last_reset) if r), key=lambda r: r.get("finishedAt") or "", default=None)
    # After a rollback the last deploy is the failed one; what runs is the last healthy one.
    serving = rollback.load(state_dir) if (last or {}).get("status") == "rolled-back" else None
    project = (serving or last or {}).get("project") or rules.DEFAULT_PROJECT
    containers = {plan.service_of(c): c for c in project_containers(project)}
    expected = sorted(set((last or {}).get("services") or {}) | set(containers))
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
    last = last or {}
    digests = ({name: ref.partition("@")[2] or None for name, ref in serving["runImages"].items()} if serving
               else {name: s.get("digest") for name, s in (last.get("services") or {}).items()})
    return {
        "schema": REPORT_SCHEMA, "status": "healthy" if healthy else "unhealthy", "checkedAt": deploy.utc_now(),
        "services": services, "imageTag": (serving or last).get("imageTag"),
        "builtLocally": [] if serving else last.get("builtLocally", []), "digests": digests,
        "deploySeconds": (last_deploy or {}).get("totalSeconds"), "phases": (last_deploy or {}).get("phases"),
        "lastDeploy": last_deploy, "lastReset": last_reset,
    }


def main(state_dir: str) -> int:
    result = report(state_dir)
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0 if result["status"] == "healthy" else 1
