"""What moved since the last deploy, read from `pulumi preview --json`: for the PR comment.

The deploy command's triggers carry what the preflight pinned (infra/preflight.Pins.trigger:
`{"commit": ..., "digests": {image: digest}}`). The preview's JSON holds the deploy step's
old inputs (the last deploy's) and new ones, so the comment can say, per image, the old and
the new digest, and the commit range of the ref. Stdlib only, like the rest of ci/.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DEPLOY_TYPE = "command:remote:Command"
DEPLOY_NAME = "sirius-deploy"
_GITHUB = re.compile(r"https://github\.com/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?")


def _pins(state: Any) -> dict | None:
    """The pins among a deploy state's triggers, or None (no state, or none pinned)."""
    triggers = ((state or {}).get("inputs") or {}).get("triggers") if isinstance(state, Mapping) else None
    for item in triggers if isinstance(triggers, list) else []:
        if isinstance(item, Mapping) and "commit" in item and isinstance(item.get("digests"), Mapping):
            return {"commit": item.get("commit") or "", "digests": dict(item["digests"])}
    return None


def _repo(state: Any) -> str:
    create = ((state or {}).get("inputs") or {}).get("create") if isinstance(state, Mapping) else None
    match = re.search(r"--repo (\S+)", create) if isinstance(create, str) else None
    return match.group(1).strip("'") if match else ""


def deploy_step(preview: Any) -> Mapping | None:
    steps = preview.get("steps") if isinstance(preview, Mapping) else None
    for step in steps if isinstance(steps, list) else []:
        urn = step.get("urn", "") if isinstance(step, Mapping) else ""
        if urn.endswith(f"{DEPLOY_TYPE}::{DEPLOY_NAME}"):
            return step
    return None


def short(digest: str | None) -> str:
    return f"`{digest[:19]}`" if digest else "-"


def summary(preview: Any) -> list[str]:
    """Markdown lines: the images whose digest moved (old, new), the commit range, or why none."""
    step = deploy_step(preview)
    if step is None:
        return ["What moved: the preview has no deploy step (did it fail early?)."]
    old, new = _pins(step.get("oldState")), _pins(step.get("newState"))
    if new is None or not new["commit"]:
        return ["What moved: not known: the preflight is off (preflight: false), so digests and the ref's commit "
                "are not resolved; see docs/canary.md for `pulumi up --replace`."]
    if old is None or not old["commit"]:
        return [f"What moved: first pinned deploy: commit `{new['commit'][:12]}`, {len(new['digests'])} image digests."]
    images = sorted(set(old["digests"]) | set(new["digests"]))
    rows = [(image, old["digests"].get(image), new["digests"].get(image)) for image in images
            if old["digests"].get(image) != new["digests"].get(image)]
    lines = []
    if rows:
        lines += ["What moved since the last deploy:", "", "| image | old digest | new digest |", "|---|---|---|"]
        lines += [f"| {image} | {short(before)} | {short(after)} |" for image, before, after in rows]
    if old["commit"] != new["commit"]:
        range_ = f"`{old['commit'][:12]}..{new['commit'][:12]}`"
        github = _GITHUB.fullmatch(_repo(step.get("newState")))
        link = f" ([compare](https://github.com/{github.group(1)}/compare/{old['commit']}...{new['commit']}))" if github else ""
        lines += ["", f"Commits of the ref: {range_}{link}"]
    return lines or ["What moved: nothing: the same digests and commit as the last deploy (it does not re-run)."]
