"""The demo monitor: probe the `demo` stack's UI and API from the runner, decide whether the
demo is up, and write the text of the `demo-down` issue.

Stdlib only (like ci/markdown.py, whose summary of the last deploy it reuses), so
.github/workflows/monitor.yml runs it before anything is installed. Run as `python -m ci.monitor`:

    python -m ci.monitor check --outputs-json=outputs.json --result-json=result.json
    python -m ci.monitor report --result-json=result.json --outputs-json=outputs.json --stack=demo --run-url=URL

`check` reads the URLs from the stack outputs (`uiUrl`, `apiUrl`; plain `http://<ip>:port`
today, maybe `https://<domain>/<prefix>` later: paths are joined onto whatever path they
carry), asks the UI for `/` and the API for `/health` (200 with JSON `{"status": "healthy"}`),
each up to --attempts times with a doubling pause, and prints `status=ok`, `status=updating`
or `status=down` (a line for $GITHUB_OUTPUT). It exits 0 whatever the verdict, so the
workflow goes on to open or close the issue; 2 means it could not judge (bad arguments,
unreadable outputs or stack config).

`updating`: every check that failed got the proxy's "being updated" page (engine/proxy.py:
503 marked with its own header) while the stack's nightly reset may still be running, i.e.
from its HH:59 (nightlyReset in the committed stack config) for as long as reset.yml's
reset job may take (an hour's late start, as ci.reset counts it, plus the job's
timeout-minutes, which covers the longest `pulumi up` the settings allow). The issue is
left as it is then. The same page outside that window is `down`: a reset that overran
everything it was given, or a deploy that left a service away.

`report` prints the issue body when the verdict is down (what failed, the HTTP status or
error of each check, when, and the last deploy's report from the stack outputs), and when
it is ok that every check passed (the closing comment, and the job summary). Only
PLAIN_OUTPUTS are ever used: the outputs also hold secrets (adminPassword, sshPrivateKey),
which never reach a report, whatever values are passed in.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ci import reset
from ci.markdown import markdown_cell, render_summary
from ci.stacks import SHARED_STACK, TIME_FORMAT
from engine import rules
from engine.proxy import is_updating_page
from engine.rules import API_HEALTH_PATH

UI_PATH = "/"
HEALTHY = "healthy"
DEFAULT_ATTEMPTS = 5
DEFAULT_TIMEOUT = 10.0  # seconds per request
DEFAULT_BACKOFF = 5.0  # seconds before the second attempt; doubled after each failure
MAX_PAUSE = 60.0
MAX_READ = 1 << 20  # bytes of an answer read: /health is small, the UI's index page too
ISSUE_MARKER = "<!-- sirius-demo:monitor -->"
# GitHub refuses issue bodies and comments over 65536 characters.
MAX_BODY = 60_000
# The stack outputs a report may show. Everything else (adminPassword, sshPrivateKey,
# sshCommand, anything added later) is dropped before rendering.
PLAIN_OUTPUTS = ("publicIp", "uiUrl", "apiUrl", "imageTag", "ref", "instanceId", "deploySeconds", "health")
USER_AGENT = "sirius-demo-monitor"
OK, UPDATING, DOWN = "ok", "updating", "down"
UPDATING_PAGE = "HTTP 503, the proxy's \"being updated\" page"
# A scheduled reset run belongs to the last HH:59 at or before its start (ci.reset.slot): it
# starts at most an hour late.
RESET_LATE_START = timedelta(hours=1)
RESET_WORKFLOW = reset.ROOT / ".github" / "workflows" / "reset.yml"
RESET_JOB = "reset"


class MonitorError(ValueError):
    """Arguments or inputs the monitor cannot judge with."""


# --- URLs -------------------------------------------------------------------------------


def endpoint(base: Any, path: str, *, output: str) -> str:
    """`base` (a stack output) with `path` joined onto its own path: `http://h:9001` +
    `/health` -> `http://h:9001/health`, `https://d/api/` + `/health` -> `https://d/api/health`.
    Its query and fragment are dropped. Raises MonitorError naming the output."""
    example = "http://203.0.113.7:9001 or https://demo.example.com/api"
    if not isinstance(base, str) or not base.strip() or base == "[secret]":
        raise MonitorError(f"stack output {output} is missing (expected an http(s) URL like {example}; "
                           "is the stack deployed?)")
    try:
        parts = urllib.parse.urlsplit(base.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise MonitorError(f"stack output {output} {base!r} is not an http(s) URL like {example}")
    joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, joined, "", ""))


# --- one probe, with retries --------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one attempt got: a verdict, the HTTP status if any, and a short description."""

    ok: bool
    status: int | None
    detail: str
    updating: bool = False  # the proxy's "being updated" page, not the service's own answer


Judge = Callable[[int, bytes], Answer]


def judge_ui(status: int, body: bytes) -> Answer:
    """The UI is up when it answers 2xx (after redirects, which urllib follows)."""
    return Answer(200 <= status < 300, status, f"HTTP {status}")


def judge_api(status: int, body: bytes) -> Answer:
    """The API is up when /health answers 200 with a JSON object whose status is healthy."""
    if status != 200:
        return Answer(False, status, f"HTTP {status}")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return Answer(False, status, f"HTTP 200 but not JSON ({_snippet(body)})")
    reported = document.get("status") if isinstance(document, Mapping) else None
    if reported != HEALTHY:
        return Answer(False, status, f"HTTP 200 but status {reported!r}, not {HEALTHY!r}")
    return Answer(True, status, f"HTTP 200, status {HEALTHY}")


def _snippet(body: bytes) -> str:
    text = body[:80].decode("utf-8", "replace").replace("\n", " ").strip()
    return repr(text) if text else "empty"


def ask(url: str, judge: Judge, *, timeout: float) -> Answer:
    """One GET: never raises for what the network or the server does, only describes it."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only, checked
            return judge(response.status, response.read(MAX_READ))
    except urllib.error.HTTPError as err:  # 4xx and 5xx arrive as exceptions
        if is_updating_page(err.code, err.headers):
            err.close()
            return Answer(False, err.code, UPDATING_PAGE, updating=True)
        try:
            body = err.read(MAX_READ)
        except (OSError, http.client.HTTPException):  # the status is what counts
            body = b""
        finally:
            err.close()
        return judge(err.code, body)
    except urllib.error.URLError as err:
        return Answer(False, None, _transport_problem(err.reason, timeout))
    except (OSError, http.client.HTTPException) as err:  # timeouts while reading, dropped connections
        return Answer(False, None, _transport_problem(err, timeout))


def _transport_problem(reason: Any, timeout: float) -> str:
    if isinstance(reason, TimeoutError):  # socket.timeout too: an alias since Python 3.10
        return f"timed out after {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, http.client.RemoteDisconnected):
        return "connection closed without an answer"
    if isinstance(reason, BaseException):
        return f"no answer ({type(reason).__name__}: {reason})"
    return f"no answer ({reason})"


@dataclass(frozen=True)
class Probe:
    """One check's outcome: its last attempt's status and detail, and every attempt's."""

    name: str
    url: str
    ok: bool
    status: int | None
    detail: str
    attempts: list[str] = field(default_factory=list)
    updating: bool = False  # its last attempt got the proxy's "being updated" page

    def line(self) -> str:
        where = f" {self.url}" if self.url else ""
        if self.ok:
            tries = f" (attempt {len(self.attempts)})" if len(self.attempts) > 1 else ""
            return f"{self.name}{where}: ok, {self.detail}{tries}"
        tries = f" after {len(self.attempts)} attempt{'s' if len(self.attempts) != 1 else ''}" if self.attempts else ""
        return f"{self.name}{where}: FAILED, {self.detail}{tries}"


def probe(name: str, url: str, judge: Judge, *, attempts: int = DEFAULT_ATTEMPTS, timeout: float = DEFAULT_TIMEOUT,
          backoff: float = DEFAULT_BACKOFF, sleep: Callable[[float], None] = time.sleep) -> Probe:
    """Ask up to `attempts` times, pausing backoff, 2*backoff, ... (at most MAX_PAUSE) between
    failures, so that a restart or a dropped packet is not reported as an outage."""
    seen: list[str] = []
    answer = Answer(False, None, "not asked")
    for number in range(attempts):
        if number:
            sleep(min(backoff * 2 ** (number - 1), MAX_PAUSE))
        answer = ask(url, judge, timeout=timeout)
        seen.append(answer.detail)
        if answer.ok:
            break
    return Probe(name, url, answer.ok, answer.status, answer.detail, seen, answer.updating)


# --- the verdict ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResetWindow:
    """When the nightly reset may be running: from its HH:59 until `until`."""

    start: datetime
    until: datetime

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.until

    def describe(self) -> str:
        return (f"the nightly reset of {self.start.strftime(TIME_FORMAT)} may run until "
                f"{self.until.strftime(TIME_FORMAT)}")


def reset_job_minutes(workflow: Path = RESET_WORKFLOW) -> int:
    """reset.yml's reset job's timeout-minutes: the longest the reset's `pulumi up` may run
    (tests/test_workflows.py holds it to infra/remote.longest_up_seconds and the lock wait)."""
    import yaml  # the monitor job installs PyYAML alone, as reset.yml's due job does

    try:
        minutes = yaml.safe_load(workflow.read_text(encoding="utf-8"))["jobs"][RESET_JOB]["timeout-minutes"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as err:
        raise MonitorError(f"cannot read the {RESET_JOB} job's timeout-minutes from {workflow}: {err}") from None
    if not isinstance(minutes, int) or minutes <= 0:
        raise MonitorError(f"{workflow}: the {RESET_JOB} job's timeout-minutes {minutes!r} is not a number of minutes")
    return minutes


def reset_window(setting: str, now: datetime, job_minutes: int) -> ResetWindow | None:
    """The last nightly reset at or before `now` (setting HH:59, UTC) and how long it may run:
    its run may start an hour late, then its job runs for at most job_minutes. None when off."""
    if setting == rules.NIGHTLY_RESET_OFF:
        return None
    now = now.astimezone(timezone.utc)
    hour, minute = (int(part) for part in setting.split(":"))
    start = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if start > now:
        start -= timedelta(days=1)
    return ResetWindow(start, start + RESET_LATE_START + timedelta(minutes=job_minutes))


def stack_reset_window(stack: str, now: datetime) -> ResetWindow | None:
    """reset_window for `stack`'s committed nightlyReset (ci.reset reads it, as reset.yml does)."""
    try:
        setting = reset.stack_setting(stack)
    except (reset.ResetError, OSError) as err:
        raise MonitorError(f"cannot read the stack's nightlyReset: {err}") from None
    return reset_window(setting, now, reset_job_minutes()) if setting != rules.NIGHTLY_RESET_OFF else None


@dataclass(frozen=True)
class Verdict:
    status: str  # OK, UPDATING or DOWN
    checked_at: str
    probes: list[Probe]
    note: str = ""  # why the "being updated" page counts as updating, or as down

    @property
    def ok(self) -> bool:
        return self.status == OK

    def failures(self) -> list[Probe]:
        return [p for p in self.probes if not p.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "checkedAt": self.checked_at, "probes": [asdict(p) for p in self.probes],
                "note": self.note}

    @classmethod
    def from_dict(cls, data: Any) -> Verdict:
        try:
            probes = [Probe(**p) for p in data["probes"]]
            if data["status"] not in (OK, UPDATING, DOWN) or not probes:
                raise ValueError(data["status"])
            return cls(data["status"], str(data["checkedAt"]), probes, str(data.get("note") or ""))
        except (KeyError, TypeError, ValueError) as err:
            raise MonitorError(f"result JSON is not a verdict of `python -m ci.monitor check` ({err!r})") from None


def plain_outputs(outputs: Any) -> dict[str, Any]:
    """Only PLAIN_OUTPUTS of `pulumi stack output --json`: whatever else came along stays out."""
    if not isinstance(outputs, Mapping):
        return {}
    return {key: outputs[key] for key in PLAIN_OUTPUTS if key in outputs}


def judge(probes: list[Probe], now: datetime, window: ResetWindow | None) -> tuple[str, str]:
    """The verdict and its note. The "being updated" page is an update in progress only
    while the nightly reset may be running; a service's own failure is always down."""
    failures = [p for p in probes if not p.ok]
    if not failures:
        return OK, ""
    if not all(p.updating for p in failures):
        return DOWN, ""
    if window is None:
        return DOWN, "the proxy's \"being updated\" page, and the stack has no nightly reset (nightlyReset off)"
    if window.holds(now):
        return UPDATING, f"the proxy's \"being updated\" page: {window.describe()}"
    return DOWN, f"the proxy's \"being updated\" page, outside the nightly reset's time ({window.describe()})"


def check(outputs: Any, *, attempts: int = DEFAULT_ATTEMPTS, timeout: float = DEFAULT_TIMEOUT,
          backoff: float = DEFAULT_BACKOFF, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], datetime] | None = None, window: ResetWindow | None = None) -> Verdict:
    """Probe the UI and the API named by the stack outputs. A missing or malformed URL output
    is a failed check too: the demo cannot be reached at an address the stack does not give.
    `window`: when the nightly reset may be running (stack_reset_window)."""
    clock = clock or (lambda: datetime.now(timezone.utc))
    outputs = plain_outputs(outputs)
    now = clock().astimezone(timezone.utc)
    checked_at = now.strftime(TIME_FORMAT)
    probes = []
    checks = (("UI", "uiUrl", UI_PATH, judge_ui), ("API", "apiUrl", API_HEALTH_PATH, judge_api))
    for name, output, path, judged_by in checks:
        try:
            url = endpoint(outputs.get(output), path, output=output)
        except MonitorError as err:
            probes.append(Probe(name, "", False, None, str(err)))
            continue
        probes.append(probe(name, url, judged_by, attempts=attempts, timeout=timeout, backoff=backoff, sleep=sleep))
    status, note = judge(probes, now, window)
    return Verdict(status, checked_at, probes, note)


# --- the issue's text -------------------------------------------------------------------------


def _checks_table(verdict: Verdict) -> list[str]:
    """One row per check. What servers answered goes in code spans: an answer's text never
    renders as Markdown, links or @mentions."""
    lines = ["| check | URL | result | every attempt |", "|---|---|---|---|"]
    for p in verdict.probes:
        result = f"ok: `{markdown_cell(p.detail)}`" if p.ok else f"**failed**: `{markdown_cell(p.detail)}`"
        attempts = f"`{markdown_cell('; '.join(p.attempts))}`" if p.attempts else "-"
        lines.append(f"| {p.name} | {markdown_cell(p.url or '-')} | {result} | {attempts} |")
    return lines


def _cap(text: str) -> str:
    """At most MAX_BODY characters; a cut inside a code block closes it."""
    if len(text) <= MAX_BODY:
        return text
    head = text[:MAX_BODY]
    fences = sum(1 for line in head.splitlines() if line.startswith("```"))
    return head + ("\n```\n" if fences % 2 else "\n") + "\n(cut: the full report is in the run's job summary)\n"


def render_report(verdict: Verdict, outputs: Any, *, stack: str = SHARED_STACK, run_url: str = "") -> str:
    """The `demo-down` issue body (or a comment on it) when down; the closing comment when ok;
    the job summary when updating."""
    stack_name = markdown_cell(stack)
    run = f" ([run]({run_url}))" if run_url.startswith("https://") else ""
    lines = [ISSUE_MARKER]
    if verdict.ok:
        lines += [f"## Sirius demo `{stack_name}` is up", "",
                  f"Checked at {markdown_cell(verdict.checked_at)} from a GitHub Actions runner{run}: "
                  "every check passed.", ""]
        lines += _checks_table(verdict)
        return "\n".join(lines) + "\n"
    failed = ", ".join(p.name for p in verdict.failures())
    if verdict.status == UPDATING:
        lines += [f"## Sirius demo `{stack_name}` is being updated: {markdown_cell(failed)}", "",
                  f"Checked at {markdown_cell(verdict.checked_at)} from a GitHub Actions runner{run}: "
                  f"{markdown_cell(verdict.note)}. Not counted as down until then; "
                  "a demo-down issue is neither opened nor closed.", ""]
        lines += _checks_table(verdict)
        return "\n".join(lines) + "\n"
    lines += [f"## Sirius demo `{stack_name}` is down: {markdown_cell(failed)}", "",
              f"Checked at {markdown_cell(verdict.checked_at)} from a GitHub Actions runner{run}"
              + (f": {markdown_cell(verdict.note)}." if verdict.note else "."), ""]
    lines += _checks_table(verdict)
    lines += ["", "The monitor closes this issue at its first run that finds the demo up again.", "",
              "The last deploy, as the stack outputs report it (taken right after that deploy, "
              "not a live reading):", ""]
    summary = render_summary(plain_outputs(outputs), stack=stack)
    return _cap("\n".join(lines) + "\n" + summary)


# --- command line -------------------------------------------------------------------------------


def _read_json(path: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        return json.loads(text) if text.strip() else {}
    except OSError as err:
        raise MonitorError(f"{what} {path!r} cannot be read ({err.strerror or err})") from None
    except ValueError as err:
        raise MonitorError(f"{what} {path!r} is not JSON ({err})") from None


def _at_least(kind: Callable[[str], Any], low: float, expected: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value < low or value != value:  # value != value: NaN
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ci.monitor", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    checking = sub.add_parser("check", help="probe the UI and the API; print status=ok, status=updating or status=down")
    checking.add_argument("--outputs-json", required=True, help="`pulumi stack output --json`, file or - for stdin")
    checking.add_argument("--stack", default=SHARED_STACK, help="whose nightlyReset (Pulumi.<stack>.yaml) says when "
                          "the \"being updated\" page is a reset in progress")
    checking.add_argument("--result-json", required=True, help="file to write the verdict to (for `report`)")
    checking.add_argument("--attempts", default=DEFAULT_ATTEMPTS,
                          type=_at_least(int, 1, "a whole number of attempts, at least 1"))
    checking.add_argument("--timeout", default=DEFAULT_TIMEOUT, help="seconds per request",
                          type=_at_least(float, 0.001, "a number of seconds above 0"))
    checking.add_argument("--backoff", default=DEFAULT_BACKOFF,
                          help="seconds before the second attempt, doubled after each failure",
                          type=_at_least(float, 0, "a number of seconds, 0 or more"))

    report = sub.add_parser("report", help="issue body (down) or closing comment (ok), as Markdown")
    report.add_argument("--result-json", required=True, help="the verdict written by `check`")
    report.add_argument("--outputs-json", required=True, help="`pulumi stack output --json`, file or -")
    report.add_argument("--stack", default=SHARED_STACK)
    report.add_argument("--run-url", default="")
    return parser


def main(argv: Sequence[str] | None = None, *, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], datetime] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            outputs = _read_json(args.outputs_json, "--outputs-json")
            clock = clock or (lambda: datetime.now(timezone.utc))
            window = stack_reset_window(args.stack, clock())
            verdict = check(outputs, attempts=args.attempts, timeout=args.timeout, backoff=args.backoff,
                            sleep=sleep, clock=clock, window=window)
            Path(args.result_json).write_text(json.dumps(verdict.as_dict(), indent=2) + "\n", encoding="utf-8")
            for p in verdict.probes:
                print(p.line(), file=sys.stderr)
            print(f"status={verdict.status}")
        elif args.command == "report":
            verdict = Verdict.from_dict(_read_json(args.result_json, "--result-json"))
            outputs = _read_json(args.outputs_json, "--outputs-json")
            print(render_report(verdict, outputs, stack=args.stack, run_url=args.run_url), end="")
    except (MonitorError, OSError) as err:
        print(f"ci.monitor: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
