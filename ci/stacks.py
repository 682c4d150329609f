"""Stacks per branch and pull request: names, refs, expiry and cleanup selection.

Pure functions (stdlib and engine.rules only: no Pulumi, no network, no clock unless
asked; the Markdown its `summary` and `preview-comment` print is ci/markdown.py's), so the workflows in .github/workflows can call them before anything is
installed and the tests can table them. Run as `python -m ci.stacks`:

    python -m ci.stacks name --pr=42 [--format=github]      # stack, ref, imageTag, expiresAt
    python -m ci.stacks name --branch=feature/scan-ui
    python -m ci.stacks branch-stacks --stacks-json=ls.json --organization=ORG  # branch stacks of ORG
    python -m ci.stacks due --stacks-json=expiry.json       # which of them to destroy now
    python -m ci.stacks quota --stacks-json=ls.json --stack=pr-42 --max=4   # the Elastic IP quota
    python -m ci.stacks ssh-cidrs --extra="$CIDRS" --runner-ip="$IP"
    python -m ci.stacks check-tag -- v1.1.0
    python -m ci.stacks summary --outputs-json=out.json --stack=pr-42
    python -m ci.stacks preview-comment --output=preview.txt --outcome=failure [--preview-json=preview.json]

Workflows pass every value as `--option=value` (or after `--`): a value that starts with `-`
(a branch `-x`, a dispatch payload `--help`) is then a value, never an option.

Stack names. A pull request N gets `pr-N`; a branch gets `branch-<name>`; the shared
`demo` stack is never produced. The branch part keeps a name only when it is already
lower-case `[a-z0-9._-]` (no leading/trailing punctuation, no `--`) and fits; any other
name (a `/`, upper case, unicode, too long...) is cleaned, cut, and suffixed with the
first HASH_LENGTH hex digits of the SHA-256 of the original branch name. A kept name
never is, nor ends in, `-` plus HASH_LENGTH hex digits (such a name is hashed too), so
kept and hashed names cannot meet, and two hashed names meet only if their hashes do.

Expiry. A branch stack expires `ttlHours` after its last deploy: `expiresAt`
(YYYY-MM-DDTHH:MM:SSZ, UTC) goes into the stack config (every AWS resource is tagged
ExpiresAt) and into the Pulumi stack tag EXPIRES_TAG, which is what cleanup reads:
stack tags live in the backend (Pulumi Cloud, or DIY backends from Pulumi CLI 3.211),
while Pulumi.<stack>.yaml exists only in the checkout that deployed it.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ci import markdown
from ci.moved import summary as moved_summary
from engine import rules

SHARED_STACK = "demo"
BRANCH_PREFIX = "branch-"
PR_PREFIX = "pr-"
MAX_STACK_NAME = 100
STACK_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,100}")
HASH_LENGTH = rules.NAME_HASH_LENGTH
DEFAULT_TTL_HOURS = 72
MAX_TTL_HOURS = 24 * 30
MAX_PR = 999_999_999  # engine.rules accepts pr-N with up to 9 digits
EXPIRES_TAG = "sirius-demo:expiresAt"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_KEPT_CHARS = re.compile(r"[a-z0-9._-]+")
_NOT_KEPT = re.compile(r"[^a-z0-9._-]+")
_HASH_TAIL = re.compile(rf"(?:^|-)[0-9a-f]{{{HASH_LENGTH}}}\Z")
_BRANCH_STACK = re.compile(rf"{re.escape(BRANCH_PREFIX)}[a-z0-9._-]+")
_PR_STACK = re.compile(rf"{re.escape(PR_PREFIX)}[1-9][0-9]{{0,8}}")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_.,:/+-]*")


class StackError(ValueError):
    """A branch, pull request, ref, tag or time that cannot be turned into a stack plan."""


# --- names ---------------------------------------------------------------------------


def _short_branch(branch: str) -> str:
    """The branch name as GitHub gives it (`github.ref_name`, a delete event's `ref`): already
    short, so taken as it is; `refs/heads/foo` is a branch of that name, not `foo`."""
    if not isinstance(branch, str):
        raise StackError(f"branch must be a string, got {type(branch).__name__}")
    if not branch.strip():
        raise StackError("branch name is empty")
    return branch


def branch_stack_name(branch: str) -> str:
    """`branch-<name>`, hashed whenever cleaning or cutting changed the name (see module doc)."""
    short = _short_branch(branch)
    budget = MAX_STACK_NAME - len(BRANCH_PREFIX)
    if (
        _KEPT_CHARS.fullmatch(short)
        and short == _clean(short)
        and len(short) <= budget
        and not _HASH_TAIL.search(short)
    ):
        return BRANCH_PREFIX + short
    digest = hashlib.sha256(short.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]
    head = _clean(short)[: budget - 1 - HASH_LENGTH].rstrip("-._")
    return f"{BRANCH_PREFIX}{head}-{digest}" if head else f"{BRANCH_PREFIX}{digest}"


def _clean(name: str) -> str:
    """ASCII-fold, lower-case, runs of anything else to one '-', no punctuation at the ends."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    dashed = re.sub(r"-{2,}", "-", _NOT_KEPT.sub("-", folded))
    return dashed.strip("-._")


def pr_stack_name(number: int) -> str:
    return PR_PREFIX + str(_pr_number(number))


def _pr_number(number: Any) -> int:
    if isinstance(number, bool):
        raise StackError(f"pull request number must be a whole number, got {number!r}")
    if isinstance(number, str):
        text = number.strip().removeprefix(PR_PREFIX).removeprefix("#")
        if not re.fullmatch(r"[0-9]{1,9}", text):
            raise StackError(f"pull request number {number!r} is not a whole number from 1 to {MAX_PR}")
        number = int(text)
    if not isinstance(number, int) or not 1 <= number <= MAX_PR:
        raise StackError(f"pull request number {number!r} is not a whole number from 1 to {MAX_PR}")
    return number


def stack_name(*, branch: str | None = None, pr: int | str | None = None) -> str:
    """The stack of a pull request (wins when both are given) or else of a branch."""
    if pr not in (None, ""):
        return pr_stack_name(pr)  # type: ignore[arg-type]
    if branch:
        return branch_stack_name(branch)
    raise StackError("give a branch or a pull request number")


def short_stack_name(name: str) -> str:
    """`org/project/stack` or `org/stack` (as Pulumi Cloud lists them) -> `stack`."""
    return name.rsplit("/", 1)[-1]


def in_organization(name: str, organization: str | None) -> bool:
    """Whether a listed stack belongs to `organization`: unqualified names (`pr-7`, as a
    self-managed backend or the default organisation lists them) do; `org/...` names do
    only when `org` is that organisation. Pulumi Cloud lists the stacks of every
    organisation the token can see, so `other-org/pr-7` is someone else's stack."""
    parts = name.split("/")
    if len(parts) == 1:
        return True
    return bool(organization) and len(parts) in (2, 3) and parts[0] == organization


def is_branch_stack(name: str) -> bool:
    """True for the stacks this module creates (`branch-...`, `pr-N`); never for `demo`."""
    if not isinstance(name, str):
        return False
    short = short_stack_name(name)
    if short == SHARED_STACK or not STACK_NAME_PATTERN.fullmatch(short):
        return False
    return bool(_BRANCH_STACK.fullmatch(short) or _PR_STACK.fullmatch(short))


# --- refs, tags, expiry ---------------------------------------------------------------


def check_image_tag(tag: str) -> str:
    if not isinstance(tag, str) or not rules.IMAGE_TAG_PATTERN.fullmatch(tag):
        raise StackError(f"image tag {tag!r} is not a Docker tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})")
    return tag


def _utc(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise StackError("now must be a timezone-aware datetime")
    return now.astimezone(timezone.utc)


def expires_at(now: datetime, ttl_hours: int = DEFAULT_TTL_HOURS) -> str:
    """`now + ttl_hours` as YYYY-MM-DDTHH:MM:SSZ (seconds dropped from now, never rounded up)."""
    if isinstance(ttl_hours, bool) or not isinstance(ttl_hours, int) or not 1 <= ttl_hours <= MAX_TTL_HOURS:
        raise StackError(f"ttlHours {ttl_hours!r} is not a whole number of hours from 1 to {MAX_TTL_HOURS}")
    return (_utc(now).replace(microsecond=0) + timedelta(hours=ttl_hours)).strftime(TIME_FORMAT)


def parse_time(text: Any) -> datetime | None:
    """A YYYY-MM-DDTHH:MM:SSZ string as an aware UTC datetime; None when missing or garbled."""
    if not isinstance(text, str) or not rules.UTC_TIME_PATTERN.fullmatch(text.strip()):
        return None
    try:
        return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:  # e.g. 2026-02-30T00:00:00Z
        return None


# --- the plan for one branch or pull request ------------------------------------------


@dataclass(frozen=True)
class StackPlan:
    stack: str
    ref: str
    git_ref: str
    image_tag: str
    image_tag_override: str | None  # set imageTag in the stack config only when not None
    images_published: bool
    expires_at: str
    ttl_hours: int
    pull_request: int | None
    branch: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "ref": self.ref,
            "gitRef": self.git_ref,
            "imageTag": self.image_tag,
            "imageTagOverride": self.image_tag_override or "",
            "imagesPublished": self.images_published,
            "expiresAt": self.expires_at,
            "ttlHours": self.ttl_hours,
            "pullRequest": self.pull_request,
            "branch": self.branch,
        }

    def output_lines(self) -> list[str]:
        """`key=value` lines for $GITHUB_OUTPUT or `eval`: every value is checked shell-safe.

        The branch itself is left out: it is free text; `stack` is its safe form."""
        values = self.as_dict()
        del values["branch"]
        lines = []
        for key, value in values.items():
            text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            if not _SAFE_VALUE.fullmatch(text):  # unreachable with validated inputs; belt and braces
                raise StackError(f"{key} value {text!r} is not shell-safe")
            lines.append(f"{key}={text}")
        return lines


def plan_stack(
    *,
    branch: str | None = None,
    pr: int | str | None = None,
    ref: str | None = None,
    image_tag: str | None = None,
    ttl_hours: int = DEFAULT_TTL_HOURS,
    now: datetime,
) -> StackPlan:
    """Stack name, Sirius ref, image tag and expiry for a branch or pull request.

    The ref defaults to `pr-N` for a pull request and to the branch name for a branch
    (engine.rules then picks the image tag: `pr-N-amd64`, `latest` for main/demo, ...);
    `ref` overrides it (e.g. a fixed Sirius ref for pull requests of this repository),
    `image_tag` pins the image tag."""
    name = stack_name(branch=branch, pr=pr)
    number = _pr_number(pr) if pr not in (None, "") else None
    short_branch = _short_branch(branch) if branch else None
    if ref:
        chosen = ref
    elif number is not None:
        chosen = f"{PR_PREFIX}{number}"
    else:
        chosen = short_branch or ""
    problem = rules.ref_problem(chosen)
    if problem:
        hint = "" if ref else "; pass a Sirius ref explicitly (--ref)"
        raise StackError(f"ref {chosen!r} {problem}{hint}")
    override = check_image_tag(image_tag) if image_tag else None
    plan = rules.plan_ref(chosen, override)
    return StackPlan(
        stack=name,
        ref=chosen,
        git_ref=plan.git_ref,
        image_tag=plan.image_tag,
        image_tag_override=override,
        images_published=plan.published,
        expires_at=expires_at(now, ttl_hours),
        ttl_hours=ttl_hours,
        pull_request=number,
        branch=short_branch,
    )


# --- cleanup ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    name: str
    due: bool
    reason: str


def stack_entries(data: Any) -> list[dict[str, Any]]:
    """Entries of `pulumi stack ls --json` (or the cleanup job's list): objects with a name,
    or bare names. Anything else is dropped."""
    if isinstance(data, Mapping):
        data = data.get("stacks", [])
    entries = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, str):
            item = {"name": item}
        if isinstance(item, Mapping) and isinstance(item.get("name"), str) and item["name"]:
            entries.append(dict(item))
    return entries


def entry_expiry(entry: Mapping[str, Any]) -> Any:
    """`expiresAt`, else the EXPIRES_TAG stack tag (from `pulumi stack tag ls --json`)."""
    if entry.get("expiresAt") not in (None, ""):
        return entry["expiresAt"]
    stack_tags = entry.get("tags")
    return stack_tags.get(EXPIRES_TAG) if isinstance(stack_tags, Mapping) else None


def review(stacks: Iterable[Mapping[str, Any]], now: datetime) -> list[Verdict]:
    """One verdict per stack. Due: a branch stack whose expiry has passed and that no
    update holds. Never due: `demo`, any other non-branch stack, a missing or garbled expiry."""
    now = _utc(now)
    verdicts: dict[str, Verdict] = {}
    for entry in stack_entries(list(stacks)):
        name = entry["name"]
        if short_stack_name(name) == SHARED_STACK:
            verdict = Verdict(name, False, "the shared demo stack is never destroyed by cleanup")
        elif not is_branch_stack(name):
            verdict = Verdict(name, False, "not a branch stack")
        else:
            raw = entry_expiry(entry)
            expiry = parse_time(raw)
            if expiry is None:
                shown = "missing" if raw in (None, "") else f"unreadable ({str(raw)[:40]!r})"
                verdict = Verdict(name, False, f"expiry {shown}: kept; destroy it by hand if it is stale")
            elif entry.get("updateInProgress") is True:
                verdict = Verdict(name, False, "an update is in progress")
            elif now >= expiry:
                verdict = Verdict(name, True, f"expired at {expiry.strftime(TIME_FORMAT)}")
            else:
                verdict = Verdict(name, False, f"expires at {expiry.strftime(TIME_FORMAT)}")
        verdicts.setdefault(name, verdict)
    return sorted(verdicts.values(), key=lambda v: v.name)


def due_for_destruction(stacks: Iterable[Mapping[str, Any]], now: datetime) -> list[str]:
    return [verdict.name for verdict in review(stacks, now) if verdict.due]


# --- the Elastic IP quota -------------------------------------------------------------

# AWS's default Elastic IP quota per region. Every demo holds one, the shared `demo` stack too.
ELASTIC_IP_QUOTA = 5
DEFAULT_MAX_BRANCH_STACKS = ELASTIC_IP_QUOTA - 1


def check_quota(listed: Iterable[str], stack: str, limit: int = DEFAULT_MAX_BRANCH_STACKS) -> str:
    """Refuse a new branch demo when `limit` of them exist already (a redeploy is never refused)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise StackError(f"the branch demo limit {limit!r} is not a whole number, 0 or more")
    existing = sorted({short_stack_name(name) for name in listed if is_branch_stack(name)})
    if stack in existing:
        return f"{stack} exists: a redeploy keeps its Elastic IP"
    if len(existing) >= limit:
        raise StackError(
            f"refusing a new demo {stack}: {len(existing)} branch demos exist ({', '.join(existing)}), the limit is "
            f"{limit}. Each demo holds an Elastic IP, and AWS allows {ELASTIC_IP_QUOTA} per region by default (the "
            "shared demo stack holds one): a sixth would fail halfway through `pulumi up` with "
            "AddressLimitExceeded. Remove the demo label from a pull request you are done with, or raise the "
            "region's Elastic IP quota and then the DEMO_MAX_BRANCH_STACKS repository variable.")
    return f"{len(existing)} of {limit} branch demos exist; {stack} is a new one"


# --- SSH CIDRs for stacks deployed from CI --------------------------------------------


def ssh_cidrs(extra: str | None, runner_ip: str | None) -> str:
    """The `sshCidrs` setting for a deploy from a CI runner.

    No extra CIDRs: `auto` (the program resolves the runner's own IPv4). Extra CIDRs: the
    runner's /32 first (it runs the remote SSH commands during `pulumi up`), then the extras."""
    parts = [part.strip() for part in (extra or "").replace("\n", ",").split(",") if part.strip()]
    if not parts:
        return "auto"
    if not runner_ip:
        raise StackError("extra SSH CIDRs need the runner's IPv4 too (--runner-ip): the runner must reach SSH")
    try:
        runner = ipaddress.IPv4Address(runner_ip.strip())
    except ValueError:
        raise StackError(f"runner IP {runner_ip!r} is not an IPv4 address") from None
    cidrs = [f"{runner}/32"]
    for part in parts:
        try:
            cidrs.append(str(ipaddress.ip_network(part, strict=True)))
        except ValueError as err:
            raise StackError(f"SSH CIDR {part!r} is not valid ({err})") from None
    return ",".join(dict.fromkeys(cidrs))


# --- command line -----------------------------------------------------------------------


def _read_json(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return json.loads(text) if text.strip() else None


def _now_arg(text: str | None, clock: Callable[[], datetime]) -> datetime:
    if not text:
        return clock()
    parsed = parse_time(text)
    if parsed is None:
        raise StackError(f"--now {text!r} is not {rules.UTC_TIME_FORM}")
    return parsed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ci.stacks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    name = sub.add_parser("name", help="stack, ref, image tag and expiry of a branch or pull request")
    name.add_argument("--branch", default="", help="short branch name, as github.ref_name gives it")
    name.add_argument("--pr", default="", help="pull request number")
    name.add_argument("--ref", default="", help="Sirius ref to deploy instead of the derived one")
    name.add_argument("--image-tag", default="", help="image tag to pin (empty: derived from the ref)")
    name.add_argument(
        "--ttl-hours", default=str(DEFAULT_TTL_HOURS), help=f"hours until expiry (default {DEFAULT_TTL_HOURS})"
    )
    name.add_argument("--now", default="", help="UTC time to count from (default: the clock)")
    name.add_argument("--format", choices=("json", "github"), default="json", help="JSON, or key=value lines")
    name.add_argument("--stack-only", action="store_true", help="only the stack name (no ref needed)")

    branch_stacks = sub.add_parser("branch-stacks", help="names of branch stacks in `pulumi stack ls --json`")
    branch_stacks.add_argument("--stacks-json", required=True, help="file, or - for stdin")
    branch_stacks.add_argument(
        "--organization", default="", help="keep only stacks of this organisation (empty: unqualified names only)"
    )

    due = sub.add_parser("due", help="branch stacks whose expiry has passed, one per line")
    due.add_argument("--stacks-json", required=True, help="[{name, expiresAt | tags}], file or -")
    due.add_argument("--now", default="", help="UTC time to judge at (default: the clock)")
    due.add_argument("--json", action="store_true", help="print a JSON array instead of lines")
    due.add_argument("--explain", action="store_true", help="print every verdict to stderr")

    quota = sub.add_parser("quota", help="refuse a new branch demo beyond the Elastic IP quota")
    quota.add_argument("--stacks-json", required=True, help="`pulumi stack ls --json`, file or -")
    quota.add_argument("--organization", default="", help="count only stacks of this organisation")
    quota.add_argument("--stack", required=True, help="the stack about to be deployed")
    quota.add_argument("--max", default=str(DEFAULT_MAX_BRANCH_STACKS),
                       help=f"branch demos allowed at once (default {DEFAULT_MAX_BRANCH_STACKS})")

    cidrs = sub.add_parser("ssh-cidrs", help="sshCidrs for a deploy from CI")
    cidrs.add_argument("--extra", default="", help="comma-separated CIDRs besides the runner")
    cidrs.add_argument("--runner-ip", default="", help="the runner's public IPv4")

    tag = sub.add_parser("check-tag", help="validate a Docker image tag and print it")
    tag.add_argument("tag")

    summary = sub.add_parser("summary", help="Markdown summary of `pulumi stack output --json`")
    summary.add_argument("--outputs-json", required=True, help="file, or - for stdin")
    summary.add_argument("--stack", required=True)
    summary.add_argument("--expires-at", default="")
    summary.add_argument("--marker", action="store_true", help="start with the PR comment marker")
    summary.add_argument("--note", default="")

    preview = sub.add_parser("preview-comment", help="PR comment of a `pulumi preview` run, failed or not")
    preview.add_argument("--output", required=True, help="file with the preview's output (missing: none)")
    preview.add_argument("--outcome", required=True, help="the preview step's outcome (success, failure, ...)")
    preview.add_argument("--stack", default=SHARED_STACK)
    preview.add_argument("--commit", default="")
    preview.add_argument("--run-url", default="")
    preview.add_argument("--preview-json", default="", help="`pulumi preview --json` output: what moved (missing: none)")
    return parser


def main(argv: Sequence[str] | None = None, *, clock: Callable[[], datetime] | None = None) -> int:
    clock = clock or (lambda: datetime.now(timezone.utc))
    args = _parser().parse_args(argv)
    try:
        if args.command == "name":
            if args.stack_only:
                print(stack_name(branch=args.branch or None, pr=args.pr or None))
                return 0
            if not re.fullmatch(r"[0-9]{1,4}", args.ttl_hours.strip()):
                raise StackError(f"--ttl-hours {args.ttl_hours!r} is not a whole number of hours")
            plan = plan_stack(
                branch=args.branch or None,
                pr=args.pr or None,
                ref=args.ref or None,
                image_tag=args.image_tag or None,
                ttl_hours=int(args.ttl_hours),
                now=_now_arg(args.now, clock),
            )
            print("\n".join(plan.output_lines()) if args.format == "github" else json.dumps(plan.as_dict(), indent=2))
        elif args.command == "branch-stacks":
            for entry in stack_entries(_read_json(args.stacks_json)):
                if is_branch_stack(entry["name"]) and in_organization(entry["name"], args.organization):
                    print(entry["name"])
        elif args.command == "due":
            verdicts = review(stack_entries(_read_json(args.stacks_json)), _now_arg(args.now, clock))
            if args.explain:
                for verdict in verdicts:
                    print(f"{verdict.name}: {'destroy' if verdict.due else 'keep'} ({verdict.reason})", file=sys.stderr)
            names = [verdict.name for verdict in verdicts if verdict.due]
            if args.json:
                print(json.dumps(names))
            elif names:
                print("\n".join(names))
        elif args.command == "quota":
            if not re.fullmatch(r"[0-9]{1,3}", args.max.strip()):
                raise StackError(f"--max {args.max!r} is not a whole number of stacks")
            names = [entry["name"] for entry in stack_entries(_read_json(args.stacks_json))
                     if in_organization(entry["name"], args.organization)]
            print(check_quota(names, args.stack, int(args.max)))
        elif args.command == "ssh-cidrs":
            print(ssh_cidrs(args.extra, args.runner_ip))
        elif args.command == "check-tag":
            print(check_image_tag(args.tag))
        elif args.command == "preview-comment":
            path = Path(args.output)
            output = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
            moved = None
            if args.preview_json and Path(args.preview_json).is_file():
                try:
                    moved = moved_summary(_read_json(args.preview_json))
                except json.JSONDecodeError:
                    moved = ["What moved: not known (the JSON preview's output is not JSON)."]
            print(markdown.render_preview_comment(output, outcome=args.outcome, stack=args.stack, commit=args.commit,
                                                  run_url=args.run_url, moved=moved), end="")
        elif args.command == "summary":
            outputs = _read_json(args.outputs_json)
            print(
                markdown.render_summary(
                    outputs if isinstance(outputs, Mapping) else {},
                    stack=args.stack,
                    expires_at=args.expires_at or None,
                    marker=args.marker,
                    note=args.note or None,
                ),
                end="",
            )
    except (StackError, OSError, json.JSONDecodeError) as err:
        print(f"ci.stacks: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
