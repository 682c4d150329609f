"""The nightly reset workflow's helpers (.github/workflows/reset.yml; docs/reset.md).

    python -m ci.reset due --stack=demo --event=schedule      due=true|false, reason=...
    python -m ci.reset summary --log=up.log --stack=demo --outcome=success --run-url=URL

`due`: the workflow runs at minute 59 of every hour; a scheduled run is due when the
stack's nightlyReset (its committed Pulumi.<stack>.yaml, else Pulumi.yaml's default) names
that hour. GitHub may start a scheduled run late: the run belongs to the last HH:59 at or
before it starts. A run by hand (workflow_dispatch) is always due, unless nightlyReset is
off: then the stack has no reset command, and `due` fails saying so.

`summary`: the reset report the engine printed (the reset command logs its stdout: the
last JSON line of kind "reset" in the `pulumi up` log) as Markdown on stdout, for the job
summary and the reset-failed issue, and the verdict in --verdict-file: `ok` only when the
demo is fresh at the configured tag, else `down` (ci/monitor-issue.sh's two words).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from engine import report as engine_report
from engine import rules

ROOT = Path(__file__).resolve().parent.parent
SCHEDULE_MINUTE = 59  # reset.yml's cron: "59 * * * *"
DEMO_STATES = {
    "fresh": "a fresh demo: the configured tag's current images, new data, the admin password of the stack",
    "last-healthy": "the last healthy deploy, on fresh data (the reset to the configured tag failed)",
    "unchanged": "the demo as it was before, visitors' changes included (nothing was reset)",
    "down": "nothing: the data was removed and neither the reset nor the fallback came up",
}


class ResetError(ValueError):
    """What the workflow must stop on, said for the person reading the run."""


def slot(now: datetime) -> datetime:
    """The scheduled time a run started at `now` belongs to: the last HH:59 at or before it."""
    now = now.astimezone(timezone.utc).replace(second=0, microsecond=0)
    back = (now.minute - SCHEDULE_MINUTE) % 60
    return now - timedelta(minutes=back)


def stack_setting(stack: str, root: Path = ROOT) -> str:
    """nightlyReset of `stack` (its committed Pulumi.<stack>.yaml, else Pulumi.yaml's default),
    checked by the rule the program uses (engine/rules.py)."""
    import yaml  # the due job installs PyYAML alone: it needs no more than this

    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    path = root / f"Pulumi.{stack}.yaml"
    values = (yaml.safe_load(path.read_text()) or {}).get("config") or {} if path.exists() else {}
    raw = values.get(f"{project['name']}:nightlyReset", project["config"]["nightlyReset"]["default"])
    value = str(raw).strip().lower()
    if not rules.is_nightly_reset(value):
        raise ResetError(f"{path.name}: {project['name']}:nightlyReset {str(raw)[:40]!r} is not valid; "
                         f"expected {rules.NIGHTLY_RESET_FORM}")
    return value


def due(setting: str, event: str, now: datetime) -> tuple[bool, str]:
    """Whether this run resets the demo, and why (or why not)."""
    if setting == rules.NIGHTLY_RESET_OFF:
        if event == "workflow_dispatch":
            raise ResetError("nightlyReset is off for this stack, so it has no reset command to run; "
                             "set it to a time (e.g. `pulumi config set nightlyReset 23:59`), deploy, then run again")
        return False, "nightlyReset is off"
    if event == "workflow_dispatch":
        return True, "run by hand"
    at = slot(now)
    if at.strftime("%H:%M") == setting:
        return True, f"nightlyReset {setting}, the run of {at:%Y-%m-%d %H:%M} UTC"
    return False, f"nightlyReset {setting}; this is the run of {at:%H:%M} UTC"


def reset_report(log_text: str) -> dict | None:
    """The last reset report in a `pulumi up` log (pulumi may indent or prefix the lines)."""
    found = None
    for line in log_text.splitlines():
        start, end = line.find('{"schema"'), line.rfind("}")
        if start < 0 or end < start:
            continue
        try:
            value = json.loads(line[start:end + 1])
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("kind") == "reset":
            found = value
    return found


def render_summary(data: dict | None, *, stack: str, outcome: str, run_url: str = "") -> tuple[str, bool]:
    """The Markdown of one reset run (its report read through engine/report.py, the code that
    writes it), and whether it left a fresh demo at the configured tag."""
    report = engine_report.from_json(data)  # a DeployReport for anything but a reset's report
    is_reset = isinstance(report, engine_report.ResetReport)
    ok = outcome == "success" and is_reset and report.status == "reset"
    title = f"## Nightly reset of `{stack}`: " + ("done" if ok else "**FAILED**")
    lines = [title, ""]
    if not is_reset:
        lines.append(f"No reset report in the `pulumi up` log (outcome: {outcome}): the reset command did not run "
                     "or did not finish. See the `pulumi up` step's log.")
    else:
        wipe, serving = report.reset, report.serving
        lines.append(f"- **The demo now serves:** {wipe.demo}: {DEMO_STATES.get(wipe.demo, 'unknown')}")
        if serving:
            lines.append(f"- Version: ref `{serving.ref}`, tag `{serving.image_tag}`, commit `{(serving.commit or '')[:12]}`")
        if report.error:
            lines.append(f"- Error: {report.error}")
        lines.append(f"- Removed: the containers of {', '.join(wipe.removed_services) or 'nothing'}; "
                     f"volumes {', '.join(wipe.removed_volumes) or 'none'}")
        if demo := report.demo_data_line():
            lines.append(f"- Demo data: {demo}")
        lines.append(f"- Took {report.total_seconds} s (status `{report.status}`)")
    if not ok and outcome == "success":
        lines.append("- The `pulumi up` step succeeded, but the report does not say `reset`: treated as failed.")
    if run_url:
        lines.append(f"- Run: {run_url}")
    return "\n".join(lines) + "\n", ok


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ci.reset", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    due_p = sub.add_parser("due", help="print due=true|false and reason=... for GITHUB_OUTPUT")
    due_p.add_argument("--stack", required=True)
    due_p.add_argument("--event", required=True, help="github.event_name")
    due_p.add_argument("--now", help="UTC time YYYY-MM-DDTHH:MM:SSZ (default: now)")
    summary = sub.add_parser("summary", help="the reset report in the pulumi up log, as Markdown")
    summary.add_argument("--log", required=True, help="the `pulumi up` output")
    summary.add_argument("--stack", required=True)
    summary.add_argument("--outcome", required=True, help="the pulumi up step's outcome")
    summary.add_argument("--run-url", default="")
    summary.add_argument("--verdict-file", required=True, help="gets `ok` or `down` (for ci/monitor-issue.sh)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "due":
            now = (datetime.strptime(args.now, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) if args.now
                   else datetime.now(timezone.utc))
            is_due, reason = due(stack_setting(args.stack), args.event, now)
            print(f"due={'true' if is_due else 'false'}")
            print(f"reason={reason}")
            return 0
        log_path = Path(args.log)
        text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
        markdown, ok = render_summary(reset_report(text), stack=args.stack, outcome=args.outcome, run_url=args.run_url)
        Path(args.verdict_file).write_text("ok\n" if ok else "down\n")
        print(markdown, end="")
        return 0
    except (ResetError, ValueError) as err:
        print(f"ci.reset {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
