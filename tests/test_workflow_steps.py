"""The workflows' step scripts, run by bash as the runner runs them (its shell flags,
GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) against stand-in pulumi and gh: what each step decides,
calls and writes. The rules over the files are in test_workflow_rules.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ci import markdown, stacks
from engine import report as engine_report
from tests.workflow_files import ROOT, RESET_STEP, RESET_SUMMARY, WORKFLOWS, load, step_script

FAKE_PULUMI = r"""#!/bin/bash
echo "pulumi $*" >> "$CALLS"
case "$*" in
  "stack output --stack "*" resetUrn")
    [[ -n ${FAKE_RESET_URN:-} ]] || { echo "error: current stack does not have output property 'resetUrn'" >&2; exit 255; }
    echo "$FAKE_RESET_URN" ;;
  "up "*)
    [[ -z ${FAKE_UP_LOG:-} ]] || cat "$FAKE_UP_LOG"
    exit "${FAKE_UP_EXIT:-0}" ;;
  "org get-default") [[ -n ${FAKE_ORG:-} ]] && echo "$FAKE_ORG" || { echo "error: no default org" >&2; exit 255; } ;;
  "stack ls --json"*) cat "$FAKE_STACKS" ;;
  "stack select "*" --non-interactive")
    jq -e --arg s "$3" 'any(.[]; .name == $s)' "$FAKE_STACKS" > /dev/null ||
      { echo "error: no stack named '$3' found" >&2; exit 255; } ;;
  "stack tag ls --json --stack "*)
    all="$*"
    stack=${all##* }
    jq -e --arg s "$stack" '.[$s] // empty' "$FAKE_TAGS" || { echo "error: no stack $stack" >&2; exit 255; } ;;
  "stack output --stack "*)
    if [[ -n ${FAKE_OUTPUTS:-} ]]; then
      cat "$FAKE_OUTPUTS"
    else
      echo '{"uiUrl": "http://52.10.20.30:3000", "adminPassword": "[secret]"}'
    fi ;;
  *) exit 0 ;;
esac
"""

FAKE_GH = r"""#!/bin/bash
echo "gh $*" >> "$CALLS"
# The REST issue list (ci/monitor-issue.sh): FAKE_ISSUES through the caller's own --jq.
if [[ $* == "api --paginate --method GET repos/"*"/issues "* ]]; then
  [[ -z ${FAKE_GH_FAIL:-} ]] || { echo "gh: HTTP 502" >&2; exit 1; }
  previous=""
  for arg in "$@"; do
    [[ $previous == --jq ]] && jq -r "$arg" "$FAKE_ISSUES"
    previous=$arg
  done
elif [[ $* == "issue create "* ]]; then
  echo "https://github.com/$GITHUB_REPOSITORY/issues/77"
elif [[ $* == "api --paginate "* ]]; then
  [[ -z ${FAKE_GH_FAIL:-} ]] || { echo "gh: HTTP 502" >&2; exit 1; }
  cat "$FAKE_COMMENTS"
elif [[ $* == "api repos/"*"/pulls/"* ]]; then
  cat "$FAKE_PR"
fi
"""
BOT = "github-actions[bot]"



def shell_flags(workflow: str, job: str) -> list[str]:
    """What GitHub runs a `run:` script with: `shell: bash` is `bash --noprofile --norc -eo
    pipefail {0}`; no shell at all is `bash -e {0}` (no pipefail)."""
    doc = load(WORKFLOWS / workflow)
    shell = (doc["jobs"][job].get("defaults") or doc.get("defaults") or {}).get("run", {}).get("shell")
    return ["bash", "--noprofile", "--norc", "-eo", "pipefail"] if shell == "bash" else ["bash", "-e"]


@pytest.fixture
def actions_env(tmp_path):
    """A runner-like environment: GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, stand-in pulumi and gh."""
    if shutil.which("jq") is None:
        pytest.fail("jq is not on PATH: ./scripts/test.sh installs it (Debian package jq)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("pulumi", FAKE_PULUMI), ("gh", FAKE_GH)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    (work / "Pulumi.branch.yaml").write_text((ROOT / "Pulumi.branch.yaml").read_text())
    (work / "ci").symlink_to(ROOT / "ci")
    env = {
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "GITHUB_REPOSITORY": "owner/sirius-demo",
        "GITHUB_RUN_ID": "1234",
        "CALLS": str(tmp_path / "calls"),
        "FAKE_STACKS": str(tmp_path / "stacks.json"),
        "FAKE_TAGS": str(tmp_path / "tags.json"),
        "FAKE_COMMENTS": str(tmp_path / "comments.json"),
        "FAKE_PR": str(tmp_path / "pr.json"),
        "FAKE_ISSUES": str(tmp_path / "issues.json"),
        "HOME": str(tmp_path),
    }
    for name in ("output", "summary", "calls"):
        (tmp_path / name).write_text("")
    (tmp_path / "stacks.json").write_text("[]")
    (tmp_path / "comments.json").write_text("[]")
    (tmp_path / "issues.json").write_text("[]")
    return tmp_path, work, env


def run_step(workflow: str, job: str, actions_env, *, step_id: str | None = None, name: str | None = None,
             **extra: str) -> tuple[subprocess.CompletedProcess, dict[str, str], str]:
    tmp_path, work, env = actions_env
    (tmp_path / "output").write_text("")
    script = step_script(workflow, job, step_id=step_id, name=name)
    result = subprocess.run(
        [*shell_flags(workflow, job), "-c", script],
        cwd=work,
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=60,
    )
    outputs = dict(line.split("=", 1) for line in (tmp_path / "output").read_text().splitlines() if "=" in line)
    return result, outputs, (tmp_path / "calls").read_text()


PLAN_DEFAULTS = {"SIRIUS_REF": "", "TTL_HOURS": "72", "PR_ACTION": "", "PR_NUMBER": "", "PR_STATE": "",
                 "PR_LABELS": "", "LABEL": "", "DELETED_BRANCH": "", "DISPATCH_BRANCH": "", "DISPATCH_ACTION": ""}
OPEN_LABELLED = {"EVENT_NAME": "pull_request", "PR_NUMBER": "42", "PR_STATE": "open", "PR_LABELS": "bug,demo"}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {**OPEN_LABELLED, "PR_ACTION": "labeled", "LABEL": "demo"},
            {"action": "up", "stack": "pr-42", "ref": "pr-42", "imageTag": "pr-42-amd64", "pullRequest": "42",
             "expiresAt": "*"},
        ),
        (
            {**OPEN_LABELLED, "PR_ACTION": "synchronize", "SIRIUS_REF": "demo"},
            {"action": "up", "stack": "pr-42", "ref": "demo", "imageTag": "latest"},
        ),
        # Labelling a closed pull request, or another label coming: nothing.
        ({**OPEN_LABELLED, "PR_ACTION": "labeled", "LABEL": "demo", "PR_STATE": "closed"}, {"action": "none"}),
        ({**OPEN_LABELLED, "PR_ACTION": "labeled", "LABEL": "bug"}, {"action": "none"}),
        (
            {**OPEN_LABELLED, "EVENT_NAME": "pull_request_target", "PR_ACTION": "closed", "PR_STATE": "closed"},
            {"action": "down", "stack": "pr-42", "pullRequest": "42"},
        ),
        (
            {**OPEN_LABELLED, "EVENT_NAME": "pull_request_target", "PR_ACTION": "unlabeled", "LABEL": "demo",
             "PR_LABELS": "bug"},
            {"action": "down", "stack": "pr-42"},
        ),
        # pull_request_target never deploys.
        ({**OPEN_LABELLED, "EVENT_NAME": "pull_request_target", "PR_ACTION": "labeled", "LABEL": "demo"},
         {"action": "none"}),
        (
            {"EVENT_NAME": "delete", "DELETED_BRANCH": "feature/scan-ui"},
            {"action": "down", "stack": stacks.branch_stack_name("feature/scan-ui")},
        ),
        (
            {"EVENT_NAME": "delete", "DELETED_BRANCH": "$(touch pwned)`touch pwned`"},
            {"action": "down", "stack": stacks.branch_stack_name("$(touch pwned)`touch pwned`")},
        ),
        # Branch names that look like options are names.
        ({"EVENT_NAME": "delete", "DELETED_BRANCH": "--help"},
         {"action": "down", "stack": stacks.branch_stack_name("--help")}),
        ({"EVENT_NAME": "workflow_dispatch", "DISPATCH_BRANCH": "-x", "DISPATCH_ACTION": "destroy"},
         {"action": "down", "stack": stacks.branch_stack_name("-x")}),
        (
            {"EVENT_NAME": "workflow_dispatch", "DISPATCH_BRANCH": "main", "DISPATCH_ACTION": "deploy"},
            {"action": "up", "stack": "branch-main", "ref": "main", "imageTag": "latest"},
        ),
        (
            {"EVENT_NAME": "workflow_dispatch", "DISPATCH_BRANCH": "main", "DISPATCH_ACTION": "destroy"},
            {"action": "down", "stack": "branch-main"},
        ),
    ],
)
def test_branch_demo_plan_step(actions_env, event, expected):
    result, outputs, _ = run_step("branch-demo.yml", "plan", actions_env, step_id="plan", **{**PLAN_DEFAULTS, **event})
    assert result.returncode == 0, result.stderr
    for key, value in expected.items():
        assert outputs[key] == value if value != "*" else stacks.parse_time(outputs[key]), (key, outputs)
    if expected["action"] == "none":
        assert set(outputs) == {"action"}
    assert not (actions_env[1] / "pwned").exists()


def test_branch_demo_plan_refuses_a_branch_that_is_no_ref(actions_env):
    result, _, _ = run_step("branch-demo.yml", "plan", actions_env, step_id="plan",
                            **{**PLAN_DEFAULTS, "EVENT_NAME": "workflow_dispatch", "DISPATCH_BRANCH": "café",
                               "DISPATCH_ACTION": "deploy"})
    assert result.returncode != 0 and "pass a Sirius ref explicitly" in result.stderr


@pytest.mark.parametrize(
    ("inputs", "code", "tag"),
    [
        ({"INPUT_TAG": "", "DISPATCH_TAG": ""}, 0, ""),
        ({"INPUT_TAG": "", "DISPATCH_TAG": "sha-" + "a" * 40}, 0, "sha-" + "a" * 40),
        ({"INPUT_TAG": "v1.1.0", "DISPATCH_TAG": "latest"}, 0, "v1.1.0"),
        ({"INPUT_TAG": "", "DISPATCH_TAG": "x;reboot"}, 2, None),
        ({"INPUT_TAG": "", "DISPATCH_TAG": "--help"}, 2, None),  # a value, not an option: no help text
    ],
)
def test_deploy_image_tag_step(actions_env, inputs, code, tag):
    result, outputs, _ = run_step("deploy.yml", "deploy", actions_env, step_id="tag", **inputs)
    assert result.returncode == code, result.stderr
    if tag is not None:
        assert outputs["imageTag"] == tag
    else:
        assert "imageTag" not in outputs and "usage:" not in result.stdout + (actions_env[0] / "output").read_text()


def test_cleanup_selects_expired_branch_stacks_only(actions_env):
    tmp_path, _, _ = actions_env
    (tmp_path / "stacks.json").write_text(
        json.dumps(
            [
                {"name": "demo"},
                {"name": "branch"},
                {"name": "pr-7", "updateInProgress": False},
                {"name": "branch-busy", "updateInProgress": True},
                {"name": "pr-9"},
                {"name": "branch-untagged"},
                {"name": "other-org/pr-11"},  # Pulumi Cloud lists every organisation the token sees
                {"name": "my-org/sirius-demo/pr-12"},
            ]
        )
    )
    old, future = "2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z"
    tags = {name: {stacks.EXPIRES_TAG: old} for name in
            ("demo", "branch", "pr-7", "branch-busy", "other-org/pr-11", "my-org/sirius-demo/pr-12")}
    (tmp_path / "tags.json").write_text(json.dumps({**tags, "pr-9": {stacks.EXPIRES_TAG: future}}))
    result, outputs, calls = run_step("cleanup.yml", "select", actions_env, step_id="due", FAKE_ORG="my-org",
                                      PULUMI_BACKEND_URL="")  # Pulumi Cloud
    assert result.returncode == 0, result.stderr
    assert json.loads(outputs["stacks"]) == ["my-org/sirius-demo/pr-12", "pr-7"]
    assert "pulumi stack ls --json --organization my-org" in calls
    assert "--stack demo" not in calls and "other-org" not in calls  # their tags are not even read
    summary = (tmp_path / "summary").read_text()
    assert "- branch-untagged: keep (expiry missing" in summary and "- branch-busy: keep (an update" in summary
    # A self-managed backend has no organisation: qualified names are never ours.
    result, outputs, calls = run_step("cleanup.yml", "select", actions_env, step_id="due",
                                      PULUMI_BACKEND_URL="s3://state?region=us-west-2")
    assert result.returncode == 0 and json.loads(outputs["stacks"]) == ["pr-7"]
    assert "org get-default" not in calls.split("pulumi stack ls --json --organization my-org")[-1]


@pytest.mark.parametrize(
    ("expiry", "destroyed"), [("2020-01-01T00:00:00Z", True), ("2999-01-01T00:00:00Z", False), (None, False)]
)
def test_cleanup_destroy_checks_again(actions_env, expiry, destroyed):
    tmp_path, _, _ = actions_env
    (tmp_path / "tags.json").write_text(json.dumps({} if expiry is None else {"pr-7": {stacks.EXPIRES_TAG: expiry}}))
    (tmp_path / "stacks.json").write_text(json.dumps([{"name": "pr-7"}]))
    result, _, calls = run_step("cleanup.yml", "destroy", actions_env,
                                name="Still due? Then pulumi destroy and pulumi stack rm", STACK="pr-7")
    assert result.returncode == 0, result.stderr
    assert ("pulumi destroy --stack pr-7" in calls) is destroyed
    assert ("pulumi stack rm pr-7 --yes" in calls) is destroyed


def test_branch_demo_up_comment_after_destroying_instead(actions_env):
    tmp_path, work, _ = actions_env
    for destroyed, says in (("true", "Destroyed and removed"), ("false", "No demo: the pull request is closed")):
        result, _, calls = run_step("branch-demo.yml", "up", actions_env, name=UP_COMMENT,
                                    **{**UP_COMMENT_ENV, "WANTED": "down", "DESTROYED": destroyed})
        assert result.returncode == 0, result.stderr
        comment = (work / "comment.md").read_text()
        assert says in comment and "http://52.10.20.30" not in comment and "Expires at" not in comment


UP_COMMENT_ENV = {
    "STACK": "pr-42",
    "EXPIRES_AT": "2026-12-04T02:00:00Z",
    "PR_NUMBER": "42",
    "JOB_STATUS": "success",
    "WANTED": "up",
    "RUN_URL": "https://github.com/owner/sirius-demo/actions/runs/1234",
}
UP_COMMENT = "Job summary and pull request comment (UI URL)"


def test_branch_demo_up_comment_is_the_bots_edited_in_place(actions_env):
    tmp_path, work, _ = actions_env
    (tmp_path / "comments.json").write_text(json.dumps([
        {"id": 1, "body": "hi", "user": {"login": "alice"}},
        {"id": 7, "body": markdown.COMMENT_MARKER + "\nquoted by a person", "user": {"login": "mallory"}},
        {"id": 99, "body": markdown.COMMENT_MARKER + "\nold", "user": {"login": BOT}},
    ]))
    result, _, calls = run_step("branch-demo.yml", "up", actions_env, name=UP_COMMENT, **UP_COMMENT_ENV)
    assert result.returncode == 0, result.stderr
    assert "gh api --method PATCH repos/owner/sirius-demo/issues/comments/99 -F body=@comment.md" in calls
    summary = (tmp_path / "summary").read_text()
    assert "http://52.10.20.30:3000" in summary and "did not succeed" not in summary
    assert "[secret]" not in summary
    # Only someone else's comment carries the marker: a new comment, theirs untouched.
    (tmp_path / "comments.json").write_text(json.dumps([
        {"id": 7, "body": markdown.COMMENT_MARKER + "\nquoted by a person", "user": {"login": "mallory"}}]))
    result, _, calls = run_step("branch-demo.yml", "up", actions_env, name=UP_COMMENT,
                                **{**UP_COMMENT_ENV, "JOB_STATUS": "failure"})
    assert "gh api --method POST repos/owner/sirius-demo/issues/42/comments -F body=@comment.md" in calls
    assert "comments/7" not in calls
    assert "did not succeed (failure): https://github.com/owner/sirius-demo/actions/runs/1234" in (
        work / "comment.md").read_text()


def test_a_failed_comment_listing_fails_the_step_and_posts_nothing(actions_env):
    """Without pipefail a failed `gh api` GET reads as 'no comment yet' and posts a duplicate."""
    result, _, calls = run_step("branch-demo.yml", "up", actions_env, name=UP_COMMENT, FAKE_GH_FAIL="1",
                                **UP_COMMENT_ENV)
    assert result.returncode != 0
    assert "--method POST" not in calls and "--method PATCH" not in calls


@pytest.mark.parametrize(("status", "failed"), [("success", False), ("failure", True)])
def test_deploy_summary_step(actions_env, status, failed):
    tmp_path, _, _ = actions_env
    result, _, calls = run_step("deploy.yml", "deploy", actions_env, name="Job summary (UI URL and health)",
                                STACK="demo", JOB_STATUS=status)
    assert result.returncode == 0, result.stderr
    summary = (tmp_path / "summary").read_text()
    assert "| UI | http://52.10.20.30:3000 |" in summary and "not reported" in summary
    assert ("did not succeed" in summary) is failed


def test_branch_demo_down_destroys_only_a_stack_of_its_own_organisation(actions_env):
    tmp_path, _, _ = actions_env
    # Another organisation's pr-42 in the listing is not ours: `--stack pr-42` would not find it.
    (tmp_path / "stacks.json").write_text(json.dumps([{"name": "demo"}, {"name": "other-org/pr-42"}]))
    result, outputs, calls = run_step("branch-demo.yml", "down", actions_env, step_id="destroy", STACK="pr-42")
    assert result.returncode == 0, result.stderr
    assert outputs["destroyed"] == "false" and "destroy" not in calls
    (tmp_path / "stacks.json").write_text(json.dumps([{"name": "demo"}, {"name": "pr-42"}]))
    result, outputs, calls = run_step("branch-demo.yml", "down", actions_env, step_id="destroy", STACK="pr-42")
    assert result.returncode == 0 and outputs["destroyed"] == "true"
    assert calls.index("pulumi destroy --stack pr-42") < calls.index("pulumi stack rm pr-42 --yes")


@pytest.mark.parametrize(
    ("job", "pr", "wanted"),
    [
        ("up", {"state": "open", "labels": [{"name": "demo"}]}, "up"),
        ("up", {"state": "open", "labels": [{"name": "bug"}]}, "down"),  # unlabelled while queued
        ("up", {"state": "closed", "labels": [{"name": "demo"}]}, "down"),
        ("down", {"state": "open", "labels": [{"name": "demo"}]}, "up"),  # labelled again while queued
        ("down", {"state": "closed", "labels": [{"name": "demo"}]}, "down"),
    ],
)
def test_branch_demo_jobs_act_on_the_pull_request_as_it_is_when_they_start(actions_env, job, pr, wanted):
    tmp_path, _, _ = actions_env
    (tmp_path / "pr.json").write_text(json.dumps(pr))
    result, outputs, calls = run_step("branch-demo.yml", job, actions_env, step_id="state", PR_NUMBER="42")
    assert result.returncode == 0, result.stderr
    assert outputs["wanted"] == wanted
    assert "gh api repos/owner/sirius-demo/pulls/42" in calls


def test_branch_demo_up_destroys_when_the_pull_request_went_away_meanwhile(actions_env):
    tmp_path, _, _ = actions_env
    doc = load(WORKFLOWS / "branch-demo.yml")["jobs"]["up"]
    gated = {s.get("name", s.get("uses")): s.get("if") for s in doc["steps"]}
    assert gated["pulumi up"] == gated["Stack config from Pulumi.branch.yaml"] == "steps.state.outputs.wanted == 'up'"
    instead = "Destroy instead (closed or unlabelled since this run was queued)"
    assert gated[instead] == "steps.state.outputs.wanted == 'down'"
    (tmp_path / "stacks.json").write_text(json.dumps([{"name": "pr-42"}]))
    result, _, calls = run_step("branch-demo.yml", "up", actions_env, name=instead, STACK="pr-42")
    assert result.returncode == 0, result.stderr
    assert "pulumi destroy --stack pr-42" in calls and "pulumi stack rm pr-42 --yes" in calls


PREVIEW_COMMENT = "Pull request comment (the diff, or that the preview failed)"


@pytest.mark.parametrize(("outcome", "says"), [("success", "succeeded"), ("failure", "**FAILED** (failure)")])
def test_preview_comment_replaces_the_last_diff_even_when_the_preview_fails(actions_env, outcome, says):
    tmp_path, work, _ = actions_env
    (tmp_path / "comments.json").write_text(json.dumps(
        [{"id": 5, "body": markdown.PREVIEW_MARKER + "\n+ 3 to create (an old diff)", "user": {"login": BOT}}]))
    (work / "preview.txt").write_text("error: preflight: registry ghcr.io answered ...\n")
    result, _, calls = run_step("preview.yml", "preview", actions_env, name=PREVIEW_COMMENT, OUTCOME=outcome,
                                STACK="demo", PR_NUMBER="42", HEAD_SHA="abc123", RUN_URL="https://x/runs/1")
    assert result.returncode == 0, result.stderr
    assert "gh api --method PATCH repos/owner/sirius-demo/issues/comments/5 -F body=@comment.md" in calls
    comment = (work / "comment.md").read_text()
    assert comment.startswith(markdown.PREVIEW_MARKER + "\n") and says in comment and "commit abc123" in comment
    assert "error: preflight" in comment and "an old diff" not in comment



# --- the monitor ----------------------------------------------------------------------------------

MONITOR_ISSUE = "Open, comment on or close the demo-down issue"
MONITOR_ENV = {"STACK": "demo", "RUN_URL": "https://github.com/owner/sirius-demo/actions/runs/1234"}


def run_monitor(actions_env, outputs: dict) -> tuple[str, str, str]:
    """The monitor's steps in order, as the runner would: outputs, check, issue, fail."""
    tmp_path, work, _ = actions_env
    (tmp_path / "fake-outputs.json").write_text(json.dumps(outputs))
    (tmp_path / "calls").write_text("")
    result, _, _ = run_step("monitor.yml", "monitor", actions_env, name='Stack outputs (secrets stay "[secret]")',
                            FAKE_OUTPUTS=str(tmp_path / "fake-outputs.json"), **MONITOR_ENV)
    assert result.returncode == 0, result.stderr
    result, outputs_of_check, _ = run_step("monitor.yml", "monitor", actions_env, step_id="check", **MONITOR_ENV)
    assert result.returncode == 0, result.stderr
    status = outputs_of_check["status"]
    (tmp_path / "summary").write_text("")
    result, _, calls = run_step("monitor.yml", "monitor", actions_env, name=MONITOR_ISSUE, STATUS=status,
                                **MONITOR_ENV)
    assert result.returncode == 0, result.stderr
    return status, calls, (tmp_path / "summary").read_text()


def test_monitor_steps_open_the_issue_when_down_and_close_it_when_up(actions_env, stand_in):
    from tests.conftest import Reply

    tmp_path, work, _ = actions_env
    ui = stand_in().route("/", Reply(200, b"<html>Sirius</html>"))
    api = stand_in().route("/health", Reply(200, b'{"status": "healthy"}'))
    secret = {"adminPassword": "[secret]", "sshPrivateKey": "[secret]"}

    # No apiUrl output (a deploy that failed early): down, and the first issue is opened.
    status, calls, summary = run_monitor(actions_env, {"uiUrl": ui.url, **secret})
    assert status == "down"
    assert "gh issue create --repo owner/sirius-demo --title The Sirius demo (stack demo) is down " \
           "--label demo-down --body-file report.md" in calls
    assert "pulumi stack output --stack demo --json" in calls
    assert "stack output apiUrl is missing" in (work / "report.md").read_text()
    assert "opened https://github.com/owner/sirius-demo/issues/77" in summary
    fail = next(s for s in load(WORKFLOWS / "monitor.yml")["jobs"]["monitor"]["steps"] if s.get("if"))
    result = subprocess.run(shell_flags("monitor.yml", "monitor") + ["-c", fail["run"]], capture_output=True,
                            text=True, env={"STACK": "demo", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1 and "::error title=Demo down::" in result.stdout

    # Still down with #12 open: a comment on it, no second issue.
    (tmp_path / "issues.json").write_text(json.dumps([{"number": 12}]))
    status, calls, _ = run_monitor(actions_env, {"uiUrl": ui.url, **secret})
    assert "gh issue comment 12 " in calls and "issue create" not in calls

    # Both answer: #12 is commented on and closed.
    status, calls, summary = run_monitor(actions_env, {"uiUrl": ui.url, "apiUrl": api.url, **secret})
    assert status == "ok" and api.hits["/health"] == 1
    assert "gh issue close 12 --repo owner/sirius-demo --reason completed" in calls
    assert "## Sirius demo `demo` is up" in summary and "closed issue #12" in summary

    # Up with nothing open: only the listing.
    (tmp_path / "issues.json").write_text("[]")
    status, calls, _ = run_monitor(actions_env, {"uiUrl": ui.url, "apiUrl": api.url})
    gh_calls = [call for call in calls.splitlines() if call.startswith("gh ")]
    assert status == "ok" and len(gh_calls) == 1 and gh_calls[0].startswith("gh api --paginate --method GET")


@pytest.mark.parametrize("suffix", ["", "demos.example.com"])
def test_branch_demo_config_sets_the_domain_suffix_only_when_the_variable_is_set(actions_env, suffix):
    result, _, calls = run_step("branch-demo.yml", "up", actions_env, name="Stack config from Pulumi.branch.yaml",
                                STACK="pr-42", EXPIRES_AT="2026-12-04T10:00:00Z", REF="pr-42", IMAGE_TAG="",
                                DEMO_SSH_CIDRS="", DEMO_DOMAIN_SUFFIX=suffix)
    assert result.returncode == 0, result.stderr
    assert "pulumi config set --stack pr-42 ref pr-42" in calls.splitlines()
    set_suffix = [line for line in calls.splitlines() if "domainSuffix" in line]
    assert set_suffix == ([f"pulumi config set --stack pr-42 domainSuffix {suffix}"] if suffix else [])


# --- the nightly reset (docs/reset.md) --------------------------------------------------------------

RESET_URN = "urn:pulumi:demo::sirius-demo::sirius-demo:index:Demo$command:remote:Command::sirius-reset"


def reset_report(status: str, demo: str, error: str | None = None) -> dict:
    """A reset report as engine/reset.py prints it: made by engine/report.py."""
    return engine_report.to_json(engine_report.ResetReport(
        status=status, error=error, total_seconds=81.2, serving=engine_report.Served("main", "latest", "c" * 40),
        reset=engine_report.ResetEntry(demo=demo, removed_services=["sirius-api", "sirius-ui"],
                                       removed_volumes=["sirius_postgres_data"], wipe_seconds=1.5),
        demo_data={"loaded": 22, "skipped": 0, "reason": None, "seconds": 3.0}))


def test_reset_due_step_lets_a_run_by_hand_through(actions_env):
    result, outputs, _ = run_step("reset.yml", "due", actions_env, step_id="due", STACK="demo",
                                  EVENT_NAME="workflow_dispatch")
    assert result.returncode == 0, result.stderr
    assert outputs["due"] == "true" and outputs["reason"] == "run by hand"


def test_reset_step_replaces_the_reset_command_and_fails_with_the_reset(actions_env):
    tmp_path, work, _ = actions_env
    log = tmp_path / "up-output.txt"
    log.write_text("    command:remote:Command (sirius-reset):\n      12:00:01 reset: FAILED\n    "
                   + json.dumps(reset_report("rolled-back", "last-healthy", "not healthy within 600s: sirius-ui")) + "\n")
    result, _, calls = run_step("reset.yml", "reset", actions_env, name=RESET_STEP, STACK="demo", POLICY_ARGS="",
                                GITHUB_EVENT_NAME="schedule", FAKE_RESET_URN=RESET_URN, FAKE_UP_LOG=str(log),
                                FAKE_UP_EXIT="255")
    assert result.returncode != 0  # pipefail: tee does not hide pulumi's failure
    assert f"pulumi up --stack demo --yes --skip-preview --non-interactive --diff --replace {RESET_URN}" in calls
    assert (work / "up.log").read_text() == log.read_text()
    # No reset command in the stack: said by name, and nothing is updated.
    (tmp_path / "calls").write_text("")
    result, _, calls = run_step("reset.yml", "reset", actions_env, name=RESET_STEP, STACK="demo", POLICY_ARGS="",
                                GITHUB_EVENT_NAME="schedule")
    assert result.returncode == 1 and "::error title=No reset command::" in result.stdout
    assert "pulumi up" not in calls


def run_reset_summary(actions_env, report: dict | None, outcome: str, issues: list[dict]) -> tuple:
    tmp_path, work, _ = actions_env
    (work / "up.log").write_text("Updating (demo)\n" + (json.dumps(report) + "\n" if report else "error: update failed\n"))
    (tmp_path / "issues.json").write_text(json.dumps(issues))
    (tmp_path / "summary").write_text("")
    (tmp_path / "calls").write_text("")
    env = {name: str(value) for name, value in next(
        s for s in load(WORKFLOWS / "reset.yml")["jobs"]["reset"]["steps"] if s.get("name") == RESET_SUMMARY)["env"].items()
        if "${{" not in str(value)}
    result, _, calls = run_step("reset.yml", "reset", actions_env, name=RESET_SUMMARY, STACK="demo", OUTCOME=outcome,
                                RUN_URL="https://github.com/owner/sirius-demo/actions/runs/1234", **env)
    return result, calls, (tmp_path / "summary").read_text()


def test_a_failed_reset_fails_loudly_with_the_state_it_left_and_an_issue(actions_env):
    report = reset_report("rolled-back", "last-healthy", "not healthy within 600s: sirius-ui")
    result, calls, summary = run_reset_summary(actions_env, report, "failure", [])
    assert result.returncode == 1 and "::error title=Reset failed::" in result.stdout
    assert "## Nightly reset of `demo`: **FAILED**" in summary
    assert "last-healthy: the last healthy deploy, on fresh data" in summary and "sirius-ui" in summary
    assert ("gh issue create --repo owner/sirius-demo --title The nightly reset of the Sirius demo (stack demo) "
            "failed --label reset-failed --body-file report.md") in calls
    assert "gh label create reset-failed" in calls and "demo-down" not in calls
    # pulumi up failed before the reset ran: no report, still loud.
    result, calls, summary = run_reset_summary(actions_env, None, "failure", [{"number": 5}])
    assert result.returncode == 1 and "No reset report" in summary and "gh issue comment 5 " in calls


def test_a_good_reset_passes_and_closes_the_issue(actions_env):
    result, calls, summary = run_reset_summary(actions_env, reset_report("reset", "fresh"), "success", [{"number": 5}])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "## Nightly reset of `demo`: done" in summary and "fresh: a fresh demo" in summary
    assert "gh issue close 5 --repo owner/sirius-demo --reason completed" in calls
    # pulumi up succeeded but the demo is not fresh (a reset that fell back exits 1; never trust one that did not).
    result, _, summary = run_reset_summary(actions_env, reset_report("rolled-back", "last-healthy"), "success", [])
    assert result.returncode == 1 and "treated as failed" in summary
