"""The last healthy deploy on this host: what a failed deploy puts back.

After every healthy deploy the engine keeps what ran in one file, `last-healthy.json`
in the state dir (0600, root's, like .env: it holds the same secrets), replaced whole so
it is never half-written:
- the ref, tag and commit, and the project's name;
- the image each service ran (by digest, or the local tag of a local build) and the
  image ids, for the report and for disk care;
- the .env it ran with (the same secrets: .env keeps them across deploys);
- the generated override, which pins every image and carries the same ports, bind
  address, health timing and proxy config (the Caddyfile is named by its content).
The git ref `refs/sirius-demo/last-healthy` keeps the commit from being pruned.

Putting these back and running `up` gives the same containers on the same volumes.
"""

from __future__ import annotations

import json
import os

from engine import envfile

RECORD = "last-healthy.json"
PIN_REF = "refs/sirius-demo/last-healthy"
_KEYS = ("ref", "imageTag", "commit", "project", "runImages", "imageIds", "env", "override")


def load(state_dir: str) -> dict | None:
    """The last healthy deploy's record, or None (the first deploy, or an unreadable record)."""
    try:
        record = json.load(open(os.path.join(state_dir, RECORD)))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and all(k in record for k in _KEYS) else None


def save(state_dir: str, record: dict) -> None:
    envfile.write_private(os.path.join(state_dir, RECORD), json.dumps(record, sort_keys=True))


def is_same_deploy(record: dict, commit: str | None, run_images: dict[str, str], env: str, override: str) -> bool:
    """Whether the failed deploy ran exactly what the record holds: then there is nothing to put back."""
    return (record.get("commit"), record.get("runImages"), record.get("env"), record.get("override")) == (
        commit, run_images, env, override)


def served(record: dict) -> dict:
    """What the demo serves after a rollback, for the report and the error message."""
    return {key: record.get(key) for key in ("ref", "imageTag", "commit")}


def describe(record: dict) -> str:
    return f"ref {record.get('ref')}, tag {record.get('imageTag')}, commit {(record.get('commit') or '')[:12]}"
