"""Markdown for GitHub: the job summary and PR comment of a deploy (from its stack outputs
and `health` report) and the PR comment of a `pulumi preview`.

Stdlib and engine/ only, like ci/stacks.py (whose `summary` and `preview-comment` commands print these)
and ci/monitor.py (whose issue bodies reuse `markdown_cell` and the summary). Secrets
(adminPassword, sshPrivateKey) are never rendered, even masked; every value from outputs
is escaped into one table cell.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine import report as engine_report

COMMENT_MARKER = "<!-- sirius-demo:branch-demo -->"
PREVIEW_MARKER = "<!-- sirius-demo:preview -->"
# The `health` output is the report taken right after the last deploy, not a live reading.
HEALTH_LABEL = "health at the last deploy"
MAX_COMMENT_OUTPUT = 50_000  # characters of `pulumi preview` output in a comment (GitHub allows 65536)

# Outputs shown; secrets (adminPassword, sshPrivateKey) are never rendered, even masked.
_SHOWN_OUTPUTS = (
    ("uiUrl", "UI"),
    ("apiUrl", "API"),
    ("imageTag", "image tag"),
    ("ref", "Sirius ref"),
    ("instanceId", "instance"),
    ("deploySeconds", "deploy seconds"),
)


def markdown_cell(value: Any) -> str:
    """One line of text, safe in a Markdown table cell (and in ci.monitor's issue bodies)."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    for char, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("`", "'")):
        text = text.replace(char, escaped)
    return text[:300]


def _health(value: Any) -> Any:
    """The `health` output as a value: a JSON string is decoded, anything else kept."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _health_line(health: Any) -> str:
    if health is None:
        return "not reported (no `health` output on this stack yet)"
    if isinstance(health, Mapping):
        status = health.get("status", "unknown")
        services = health.get("services")
        bad = (
            sorted(name for name, state in services.items() if not (isinstance(state, Mapping) and state.get("ok")))
            if isinstance(services, Mapping)
            else []
        )
        line = f"**{markdown_cell(status)}**"
        if health.get("checkedAt"):
            line += f" (checked {markdown_cell(health['checkedAt'])})"
        if bad:
            line += f"; not ok: {markdown_cell(', '.join(bad))}"
        return line
    return markdown_cell(health)


def _seconds(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _timeline(health: Any) -> list[str]:
    """The last deploy's measured timeline (report phases, per-service seconds, critical
    path): every canary and branch deploy adds one measured EC2 timeline to its job. Read
    through engine/report.py, the code that writes it."""
    data = health.get("lastDeploy") if isinstance(health, Mapping) else None
    if not isinstance(data, dict) or not isinstance(data.get("phases"), Mapping):
        return []
    report = engine_report.from_json(data)
    # Every phase the engine measures; one an older engine's report lacks shows as "-", not 0.
    phases = {name: value if name in data["phases"] else None
              for name, value in engine_report.to_json(report.phases).items()}
    lines = ["", f"Last deploy: {_seconds(report.total_seconds)} s", "",
             "| " + " | ".join(markdown_cell(k) for k in phases) + " |", "|" + "---|" * len(phases),
             "| " + " | ".join(_seconds(v) for v in phases.values()) + " |"]
    if report.services:
        lines += ["", "| service | created | started | healthy | recreated |", "|---|---|---|---|---|"]
        for name, entry in sorted(report.services.items()):
            lines.append(f"| {markdown_cell(name)} | {_seconds(entry.created_seconds)} | "
                         f"{_seconds(entry.started_seconds)} | {_seconds(entry.healthy_seconds)} | "
                         f"{'yes' if entry.recreated else 'no'} |")
    if report.critical_path:
        lines += ["", "Critical path: " + " → ".join(markdown_cell(p) for p in report.critical_path)]
    changes = {image: c for image, c in report.moved.items() if isinstance(c, Mapping)}
    if changes:  # the canary: what this deploy changed
        lines += ["", "Moved: " + "; ".join(
            f"{markdown_cell(image)} {markdown_cell(c.get('from') or 'a local build')} → "
            f"{markdown_cell(c.get('to') or 'a local build')}" for image, c in sorted(changes.items()))]
    commits = report.commit_range or {}
    if commits.get("from") and commits.get("to"):
        lines += ["", f"Commits: {markdown_cell(str(commits['from'])[:12])}..{markdown_cell(str(commits['to'])[:12])}"]
    return lines


def render_summary(
    outputs: Mapping[str, Any],
    *,
    stack: str,
    expires_at: str | None = None,
    marker: bool = False,
    note: str | None = None,
) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY or a PR comment from `pulumi stack output --json`."""
    lines = [COMMENT_MARKER] if marker else []
    lines.append(f"### Sirius demo `{markdown_cell(stack)}`")
    lines.append("")
    if note:
        lines += [markdown_cell(note), ""]
    if not outputs:
        if not note:
            lines.append("No stack outputs (the stack has not been deployed, or the update failed early).")
    else:
        lines += ["| | |", "|---|---|"]
        for key, label in _SHOWN_OUTPUTS:
            if key in outputs and outputs[key] not in (None, "", "[secret]"):
                lines.append(f"| {label} | {markdown_cell(outputs[key])} |")
        lines.append(f"| {HEALTH_LABEL} | {_health_line(_health(outputs.get('health')))} |")
    if expires_at:
        lines += [
            "",
            f"Expires at {markdown_cell(expires_at)} (UTC); the scheduled cleanup destroys it after that. "
            "Every new deploy moves the expiry.",
        ]
    health = _health(outputs.get("health")) if outputs else None
    lines += _timeline(health)
    if isinstance(health, (Mapping, list)):
        report = json.dumps(health, indent=2, sort_keys=True, ensure_ascii=True).replace("`", "\\u0060")
        lines += ["", f"<details><summary>{HEALTH_LABEL}</summary>", "", "```json", report, "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def render_preview_comment(output: str, *, outcome: str, stack: str, commit: str = "",
                           run_url: str = "", moved: list[str] | None = None) -> str:
    """The preview's PR comment, edited in place on every push. A failed preview says so at
    the top and shows its own output, so the diff of an earlier, successful run never stands
    for the current code. `moved` (ci.moved.summary): what the canary would redeploy."""
    ok = outcome == "success"
    head = f"### `pulumi preview` of `{markdown_cell(stack)}`: " + ("succeeded" if ok else f"**FAILED** ({markdown_cell(outcome)})")
    lines = [PREVIEW_MARKER, head, ""]
    where = " ".join(part for part in (f"commit {markdown_cell(commit)}" if commit else "", markdown_cell(run_url)) if part)
    if where:
        lines += [where, ""]
    if not ok:
        lines += ["This preview did not finish; the output below is this run's, and any earlier diff is void.", ""]
    elif moved:
        lines += [*moved, ""]
    text = output if len(output) <= MAX_COMMENT_OUTPUT else "[...]\n" + output[-MAX_COMMENT_OUTPUT:]
    text = text.replace("```", "` ` `").rstrip("\n") or "(no output)"
    lines += ["<details open><summary>output</summary>", "", "```text", text, "```", "", "</details>"]
    return "\n".join(lines) + "\n"
