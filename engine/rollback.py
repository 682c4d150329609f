"""The last healthy deploy on this host: what a failed deploy puts back.

After every healthy deploy the engine keeps what ran, in the state dir:
- `last-healthy.json`: the ref, tag and commit, the image each service ran (by digest,
  or the local tag of a local build) and the image ids, for the report and disk care;
- `last-healthy.env`: the .env it ran with (the same secrets: .env keeps them across
  deploys), root-only like .env itself;
- `last-healthy.run.yaml`: the generated override, which pins every image and carries
  the same ports, bind address and health timing;
- the git ref `refs/sirius-demo/last-healthy` on the commit, so git never prunes it.

Putting these back and running `up` gives the same containers on the same volumes.
"""

from __future__ import annotations

import json
import os

from engine import envfile

RECORD = "last-healthy.json"
ENV_COPY = "last-healthy.env"
OVERRIDE_COPY = "last-healthy.run.yaml"
PIN_REF = "refs/sirius-demo/last-healthy"


def load(state_dir: str) -> dict | None:
    """The last healthy deploy's record, or None (first deploy, or a record left half-written)."""
    try:
        record = json.load(open(os.path.join(state_dir, RECORD)))
    except (OSError, ValueError):
        return None
    copies = (os.path.join(state_dir, ENV_COPY), os.path.join(state_dir, OVERRIDE_COPY))
    if not isinstance(record, dict) or not all(os.path.isfile(p) for p in copies):
        return None
    return record


def save(state_dir: str, record: dict, env_text: str, override_text: str) -> None:
    """Record a healthy deploy; the JSON goes last, so a half-written save is never loaded."""
    envfile.write_private(os.path.join(state_dir, ENV_COPY), env_text)
    with open(os.path.join(state_dir, OVERRIDE_COPY), "w") as f:
        f.write(override_text)
    path = os.path.join(state_dir, RECORD)
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, sort_keys=True)
    os.replace(path + ".tmp", path)


def env_text(state_dir: str) -> str:
    return open(os.path.join(state_dir, ENV_COPY)).read()


def override_text(state_dir: str) -> str:
    return open(os.path.join(state_dir, OVERRIDE_COPY)).read()


def is_same_deploy(record: dict, commit: str | None, run_images: dict[str, str]) -> bool:
    """Whether the failed deploy ran exactly what the record holds: then there is nothing to put back."""
    return record.get("commit") == commit and record.get("runImages") == run_images


def served(record: dict) -> dict:
    """What the demo serves after a rollback, for the report and the error message."""
    return {key: record.get(key) for key in ("ref", "imageTag", "commit")}


def describe(record: dict) -> str:
    return f"ref {record.get('ref')}, tag {record.get('imageTag')}, commit {(record.get('commit') or '')[:12]}"
