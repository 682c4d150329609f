"""First boot of a demo host (user_data): OS setup, then the first deploy's images pulled,
recorded for the remote deploy.

user_data carries just this part of the engine (AWS allows 16 KB of user_data, and
the whole engine is larger); the full engine arrives over SSH and runs the first
deploy, as it runs every later one. user_data names the first deploy's ref and tag (as
data, recorded here) and its images (by digest when the preflight saw them): they are
pulled while Pulumi waits, so the first deploy finds them local. A failed pull is only
logged: the deploy pulls again, with retries. Logs to /var/log/sirius-bootstrap.log and
writes <state-dir>/bootstrap.json (`booted`, or why setup failed), which wait-boot waits for.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import time

from engine import REPORT_SCHEMA, install
from engine.docker import log, run

RECORD_FILE = "bootstrap.json"
PREPULL_SECONDS = 600  # at most, for all of them: wait-boot's budget (infra/remote.py) counts it


def prepull(images: list[str], seconds: float = PREPULL_SECONDS) -> dict[str, str]:
    """Pull the first deploy's images in parallel: image -> "pulled" or why not."""
    if not images:
        return {}
    log(f"bootstrap: pulling the first deploy's images: {' '.join(images)}")
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(images)) as pool:
        results = list(pool.map(lambda ref: run(["docker", "pull", "--quiet", ref], timeout=seconds), images))
    outcome = {ref: "pulled" if r.ok else f"failed: {r.last_line()}" for ref, r in zip(images, results)}
    for ref, what in outcome.items():
        if what != "pulled":
            log(f"bootstrap: pull of {ref} {what} (the deploy pulls it again)")
    return outcome


def main(state_dir: str, log_file: str, ref: str = "", image_tag: str = "", pulls: list[str] | None = None) -> int:
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
    if ref:
        record["firstDeploy"] = {"ref": ref, "imageTag": image_tag}
    if record["status"] == "booted" and pulls:
        pulled = time.monotonic()
        record["prepull"] = prepull(pulls)
        record["phases"]["prepull"] = round(time.monotonic() - pulled, 1)
    path = os.path.join(state_dir, RECORD_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(record, f)
    os.replace(path + ".tmp", path)
    if record["status"] == "booted" and shutil.which("systemd-run") and shutil.which("unattended-upgrade"):
        # Security updates off the critical path: they run while the stack deploys.
        run(["systemd-run", "--unit", "sirius-security-updates", "--no-block", "unattended-upgrade"], timeout=60)
    log(f"bootstrap: {record['status']} in {record['phases']['install']}s")
    return 0 if record["status"] == "booted" else 1
