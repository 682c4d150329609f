"""The demo data's marker: the set is loaded once per postgres data volume.

A marker in the state dir names the data volume (name and creation time) the set was
loaded into: later deploys on that volume (a tag change, a rollback) load nothing; a new
volume is loaded again. An unfinished load records the CVEs it created (the API stores a
CVE posted twice twice) and whether the snapshot was taken, so the next deploy finishes
it without duplicates.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from engine.docker import run

MARKER_FILE = "demo-data.json"  # in the state dir
DATA_VOLUME = "postgres_data"  # the compose volume that holds Sirius's database
DOCKER_SECONDS = 10.0  # each `docker volume` call


def volume_identity(inspected: str) -> str | None:
    """`name@createdAt` from `docker volume inspect --format '{{.Name}}@{{.CreatedAt}}'`:
    a volume removed and made again under the same name is another volume."""
    text = inspected.strip()
    name, _, created = text.partition("@")
    return text if name and created else None


def loaded_for(marker: dict | None, identity: str) -> bool:
    """The set is complete in this volume (markers older than `complete` were written only then)."""
    return bool(marker) and marker.get("volume") == identity and marker.get("complete", True) is True


def progress_for(marker: dict | None, identity: str) -> dict:
    """What an unfinished load of this volume already did: the CVEs it created, its snapshot."""
    if not marker or marker.get("volume") != identity:
        return {"createdVulnerabilities": [], "snapshot": None, "started": False}
    created = marker.get("createdVulnerabilities")
    return {"createdVulnerabilities": [str(v) for v in created] if isinstance(created, list) else [],
            "snapshot": marker.get("snapshot"), "started": True}


def marker_record(identity: str, loaded: int, skipped: int, *, complete: bool = True,
                  created: list[str] | None = None, snapshot: str | None = None) -> dict:
    return {"volume": identity, "complete": complete, "loaded": loaded, "skipped": skipped,
            "createdVulnerabilities": created or [], "snapshot": snapshot,
            "loadedAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def read_marker(state_dir: str) -> dict | None:
    try:
        value = json.load(open(os.path.join(state_dir, MARKER_FILE)))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_marker(state_dir: str, record: dict) -> None:
    path = os.path.join(state_dir, MARKER_FILE)
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(record) + "\n")
    os.replace(path + ".tmp", path)


def data_volume(project: str) -> str | None:
    """The identity of the project's postgres data volume, found by compose's labels."""
    found = run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}",
                 "--filter", f"label=com.docker.compose.volume={DATA_VOLUME}"], timeout=DOCKER_SECONDS)
    names = found.out.split() if found.ok else []
    if len(names) != 1:
        return None
    inspected = run(["docker", "volume", "inspect", "--format", "{{.Name}}@{{.CreatedAt}}", names[0]],
                    timeout=DOCKER_SECONDS)
    return volume_identity(inspected.out) if inspected.ok else None
