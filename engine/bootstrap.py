"""First boot of a demo host (user_data): OS setup only, recorded for the remote deploy.

user_data carries just this part of the engine (AWS allows 16 KB of user_data, and
the whole engine is larger); the full engine arrives over SSH and runs the first
deploy, as it runs every later one. Logs to /var/log/sirius-bootstrap.log and writes
<state-dir>/bootstrap.json (`booted`, or why setup failed), which wait-boot waits for.
"""

from __future__ import annotations

import json
import os
import shutil
import time

from engine import REPORT_SCHEMA, install
from engine.docker import log, run

RECORD_FILE = "bootstrap.json"


def main(state_dir: str, log_file: str) -> int:
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.makedirs(state_dir, mode=0o755, exist_ok=True)
    log("bootstrap: start")
    started = time.monotonic()
    record = {"schema": REPORT_SCHEMA, "status": "booted", "error": None, "phases": {"install": 0.0}}
    try:
        install.main()
    except Exception as err:  # noqa: BLE001 - any setup failure is recorded, then ends the boot
        record.update(status="failed", error=f"OS setup failed: {err}; see {log_file}")
        log(f"bootstrap: install failed: {err}")
    record["phases"]["install"] = round(time.monotonic() - started, 1)
    path = os.path.join(state_dir, RECORD_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(record, f)
    os.replace(path + ".tmp", path)
    if record["status"] == "booted" and shutil.which("systemd-run") and shutil.which("unattended-upgrade"):
        # Security updates off the critical path: they run while the stack deploys.
        run(["systemd-run", "--unit", "sirius-security-updates", "--no-block", "unattended-upgrade"], timeout=60)
    log(f"bootstrap: {record['status']} in {record['phases']['install']}s")
    return 0 if record["status"] == "booted" else 1
