"""The GitHub Actions workflows: actionlint (with shellcheck) is clean, and the rules the
project holds them to: pinned actions, least permissions, no event data in scripts,
secrets only through env, one update per stack at a time."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ci import stacks

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
NAMES = {path.name for path in FILES}
STACK_GROUP = "sirius-demo-stack-"
# Job-level permissions a workflow may grant, and why: OIDC, and PR comments.
ALLOWED_WRITES = {"id-token", "pull-requests"}
SECRET_ENV = ("PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "GH_TOKEN", "AWS_SECRET_ACCESS_KEY")


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def jobs(path: Path):
    return load(path)["jobs"].items()


def steps(path: Path):
    for job_id, job in jobs(path):
        for step in job.get("steps", []):
            yield job_id, job, step


def test_the_four_workflows_exist():
    assert {"preview.yml", "deploy.yml", "branch-demo.yml", "cleanup.yml"} <= NAMES


# --- actionlint -----------------------------------------------------------------------------


def _actionlint() -> str | None:
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


def test_actionlint_with_shellcheck_is_clean():
    actionlint = _actionlint()
    shellcheck = shutil.which("shellcheck")
    if actionlint is None:
        pytest.fail("actionlint is not installed: pip install -r requirements-dev.txt")
    if shellcheck is None:
        pytest.fail("shellcheck is not on PATH: ./scripts/test.sh installs it (Debian package shellcheck)")
    result = subprocess.run(
        [actionlint, "-no-color", "-shellcheck", shellcheck, "-format", "{{json .}}", *map(str, FILES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    problems = json.loads(result.stdout or "[]")
    shown = "\n".join(f"{p['filepath']}:{p['line']}:{p['column']}: [{p['kind']}] {p['message']}" for p in problems)
    assert result.returncode == 0 and not problems, shown or result.stderr


def test_actionlint_would_catch_a_bad_workflow(tmp_path):
    """The check above can fail: an injected event value and an unquoted variable are reported."""
    actionlint = _actionlint()
    if actionlint is None:
        pytest.fail("actionlint is not installed: pip install -r requirements-dev.txt")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }} $X\n"
    )
    args = [actionlint, "-no-color", "-format", "{{json .}}"]
    if shutil.which("shellcheck"):
        args += ["-shellcheck", shutil.which("shellcheck")]
    result = subprocess.run([*args, str(bad)], capture_output=True, text=True, timeout=60)
    kinds = {p["kind"] for p in json.loads(result.stdout or "[]")}
    assert result.returncode != 0 and "expression" in kinds


# --- structure --------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit(path):
    for line in path.read_text().splitlines():
        match = re.match(r"\s*(?:-\s+)?uses:\s*(\S+)(.*)", line)
        if not match or match.group(1).startswith("./"):
            continue
        action, comment = match.groups()
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), f"{path.name}: {action} is not pinned to a SHA"
        assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", comment), f"{path.name}: {action} lacks its '# vX.Y.Z' comment"


def test_one_version_per_action_across_workflows():
    pins: dict[str, set[str]] = {}
    for path in FILES:
        for action in re.findall(r"uses:\s*([\w.-]+/[\w./-]+)@(\S+)", path.read_text()):
            pins.setdefault(action[0], set()).add(action[1])
    assert all(len(shas) == 1 for shas in pins.values()), pins


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_least_permissions(path):
    doc = load(path)
    assert doc.get("permissions") == {"contents": "read"}, "top-level permissions must be contents: read"
    for job_id, job in doc["jobs"].items():
        granted = job.get("permissions", {})
        assert isinstance(granted, dict), f"{job_id}: permissions must be a map, not {granted!r}"
        writes = {scope for scope, level in granted.items() if level == "write"}
        assert writes <= ALLOWED_WRITES, f"{job_id} writes {writes - ALLOWED_WRITES}"
        text = yaml.safe_dump(job)
        if "pull-requests" in writes:
            assert "comment-on-pr: true" in text or "/comments" in text, f"{job_id}: pull-requests: write unused"
        if "id-token" in writes:
            assert "configure-aws-credentials" in text, f"{job_id}: id-token: write unused"
        if "configure-aws-credentials" in text:
            assert "id-token" in writes, f"{job_id}: OIDC needs id-token: write"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_expressions_inside_run_scripts(path):
    """Event data (branch names, titles, payloads) reaches scripts only through env."""
    for job_id, _, step in steps(path):
        script = step.get("run", "")
        assert "${{" not in script, f"{path.name} {job_id}: expression inside run: {step.get('name')}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_secrets_only_through_env_and_never_printed(path):
    for job_id, _, step in steps(path):
        for key in ("run", "with"):
            assert "secrets." not in yaml.safe_dump(step.get(key, "")), f"{job_id}: secret in {key}"
        script = step.get("run", "")
        for name in SECRET_ENV:
            assert not re.search(rf"\b(echo|printf|cat)\b[^\n]*\${{?{name}", script), f"{job_id} prints {name}"
    for job_id, job in jobs(path):
        for name, value in job.get("env", {}).items():
            if "secrets." in str(value):
                assert name in SECRET_ENV, f"{job_id}: secret in env {name}"


def _pulumi_changes(job: dict) -> bool:
    scripts = "\n".join(step.get("run", "") for step in job.get("steps", []))
    with_commands = {str(step.get("with", {}).get("command")) for step in job.get("steps", [])}
    return bool(re.search(r"pulumi (up|destroy|stack rm)\b", scripts)) or bool({"up", "destroy"} & with_commands)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_one_update_per_stack_at_a_time(path):
    doc = load(path)
    for job_id, job in doc["jobs"].items():
        if not _pulumi_changes(job):
            continue
        group = job.get("concurrency") or doc.get("concurrency")
        assert group, f"{path.name} {job_id} changes a stack without a concurrency group"
        assert str(group["group"]).startswith(STACK_GROUP), f"{job_id}: group {group['group']!r}"
        assert group.get("cancel-in-progress") is False, f"{job_id}: an update must never be cancelled halfway"


def test_stack_groups_name_the_same_stacks():
    groups = {}
    for path in FILES:
        doc = load(path)
        for job_id, job in doc["jobs"].items():
            group = (job.get("concurrency") or doc.get("concurrency") or {}).get("group", "")
            if str(group).startswith(STACK_GROUP):
                groups[f"{path.name}:{job_id}"] = group
    assert groups["deploy.yml:deploy"] == STACK_GROUP + "demo"
    assert (
        groups["branch-demo.yml:up"]
        == groups["branch-demo.yml:down"]
        == STACK_GROUP + "${{ needs.plan.outputs.stack }}"
    )
    assert groups["cleanup.yml:destroy"] == STACK_GROUP + "${{ matrix.stack }}"


def test_preview_comments_the_diff_and_runs_the_policy_pack_only_when_present():
    doc = load(WORKFLOWS / "preview.yml")
    assert set(doc["on"]) == {"pull_request"}
    preview = [s for _, _, s in steps(WORKFLOWS / "preview.yml") if s.get("with", {}).get("command") == "preview"]
    assert len(preview) == 1
    inputs = preview[0]["with"]
    assert inputs["comment-on-pr"] is True and inputs["stack-name"] == "demo"
    assert inputs["policyPacks"] == "${{ steps.policy.outputs.packs }}"
    policy = next(s for _, _, s in steps(WORKFLOWS / "preview.yml") if s.get("id") == "policy")
    assert "policy/PulumiPolicy.yaml" in policy["run"]
    for name in ("deploy.yml", "branch-demo.yml"):
        assert "policy/PulumiPolicy.yaml" in (WORKFLOWS / name).read_text()


def test_triggers():
    deploy = load(WORKFLOWS / "deploy.yml")["on"]
    assert deploy["push"] == {"branches": ["main"]}
    assert deploy["repository_dispatch"] == {"types": ["sirius-images-published"]}
    assert "workflow_dispatch" in deploy
    branch = load(WORKFLOWS / "branch-demo.yml")["on"]
    assert {"labeled", "unlabeled", "closed", "synchronize"} <= set(branch["pull_request"]["types"])
    assert "delete" in branch
    cleanup = load(WORKFLOWS / "cleanup.yml")["on"]
    assert cleanup["schedule"] and "workflow_dispatch" in cleanup


def test_deploy_summary_reports_url_and_health():
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "GITHUB_STEP_SUMMARY" in text and "python -m ci.stacks summary" in text
    summary = next(s for _, _, s in steps(WORKFLOWS / "deploy.yml") if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert str(summary.get("if", "")).startswith("always()")  # also after a failed up


def test_branch_demo_uses_the_template_the_expiry_tag_and_cleans_up():
    text = (WORKFLOWS / "branch-demo.yml").read_text()
    assert 'cp Pulumi.branch.yaml "Pulumi.${STACK}.yaml"' in text
    assert f'pulumi stack tag set --stack "$STACK" {stacks.EXPIRES_TAG} "$EXPIRES_AT"' in text
    assert 'pulumi config set --stack "$STACK" expiresAt "$EXPIRES_AT"' in text
    assert "pulumi destroy" in text and 'pulumi stack rm "$STACK"' in text
    assert "contains(github.event.pull_request.labels.*.name, 'demo')" in text
    assert "head.repo.full_name == github.repository" in text  # forks skipped


def test_cleanup_reads_the_same_tag_and_never_names_demo():
    text = (WORKFLOWS / "cleanup.yml").read_text()
    assert "python -m ci.stacks branch-stacks" in text and "python -m ci.stacks due" in text
    assert "pulumi stack tag ls --json" in text
    assert not re.search(r"--stack\s+demo\b|stack rm demo\b", text)
    assert stacks.EXPIRES_TAG == "sirius-demo:expiresAt"


def test_python_is_3_11_and_one_exact_pulumi_cli_everywhere():
    """An exact CLI (a range would take whatever is newest that day), the same in every job,
    and at least what Pulumi.yaml requires."""
    from tests.test_dependencies import CLI_FLOOR, version

    pins = set()
    for path in FILES:
        for _, _, step in steps(path):
            uses = step.get("uses", "")
            if uses.startswith("actions/setup-python@"):
                assert step["with"]["python-version"] == "3.11"
            if uses.startswith("pulumi/actions@"):
                pins.add(str(step["with"]["pulumi-version"]))
    assert len(pins) == 1, pins
    (pin,) = pins
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", pin), f"{pin!r} is not an exact version"
    assert version(pin) >= CLI_FLOOR


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_checkout_keeps_no_credentials_and_jobs_time_out(path):
    for job_id, job in jobs(path):
        assert 0 < job["timeout-minutes"] <= 60, job_id
        assert str(job["runs-on"]).startswith("ubuntu-"), job_id
    for job_id, _, step in steps(path):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, job_id


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_infra_stacks_subcommands_exist(path):
    known = set(stacks._parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    used = set(re.findall(r"python -m infra\.stacks ([\w-]+)", path.read_text()))
    assert used <= known, used - known


# --- the scripts themselves, run by bash against stand-in pulumi and gh -------------------

FAKE_PULUMI = r"""#!/bin/bash
echo "pulumi $*" >> "$CALLS"
case "$*" in
  "stack ls --json") cat "$FAKE_STACKS" ;;
  "stack tag ls --json --stack "*)
    all="$*"
    stack=${all##* }
    jq -e --arg s "$stack" '.[$s] // empty' "$FAKE_TAGS" || { echo "error: no stack $stack" >&2; exit 255; } ;;
  "stack output --stack "*) echo '{"uiUrl": "http://52.10.20.30:3000", "adminPassword": "[secret]"}' ;;
  *) exit 0 ;;
esac
"""

FAKE_GH = r"""#!/bin/bash
echo "gh $*" >> "$CALLS"
if [[ $* == "api --paginate "* ]]; then cat "$FAKE_COMMENTS"; fi
"""


def step_script(workflow: str, job: str, *, step_id: str | None = None, name: str | None = None) -> str:
    for step in load(WORKFLOWS / workflow)["jobs"][job]["steps"]:
        if (step_id and step.get("id") == step_id) or (name and step.get("name") == name):
            return step["run"]
    raise LookupError(f"{workflow} {job}: no step {step_id or name}")


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
        "HOME": str(tmp_path),
    }
    for name in ("output", "summary", "calls"):
        (tmp_path / name).write_text("")
    return tmp_path, work, env


def run_step(script: str, actions_env, **extra: str) -> tuple[subprocess.CompletedProcess, dict[str, str], str]:
    tmp_path, work, env = actions_env
    (tmp_path / "output").write_text("")
    # GitHub runs `run:` scripts as: bash --noprofile --norc -eo pipefail {0}
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=work,
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=60,
    )
    outputs = dict(line.split("=", 1) for line in (tmp_path / "output").read_text().splitlines() if "=" in line)
    return result, outputs, (tmp_path / "calls").read_text()


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {"EVENT_NAME": "pull_request", "PR_ACTION": "labeled", "PR_NUMBER": "42"},
            {
                "action": "up",
                "stack": "pr-42",
                "ref": "pr-42",
                "imageTag": "pr-42-amd64",
                "pullRequest": "42",
                "expiresAt": "*",
            },
        ),
        (
            {"EVENT_NAME": "pull_request", "PR_ACTION": "synchronize", "PR_NUMBER": "42", "SIRIUS_REF": "demo"},
            {"action": "up", "stack": "pr-42", "ref": "demo", "imageTag": "latest"},
        ),
        (
            {"EVENT_NAME": "pull_request", "PR_ACTION": "closed", "PR_NUMBER": "42"},
            {"action": "down", "stack": "pr-42", "pullRequest": "42"},
        ),
        (
            {"EVENT_NAME": "pull_request", "PR_ACTION": "unlabeled", "PR_NUMBER": "42"},
            {"action": "down", "stack": "pr-42"},
        ),
        (
            {"EVENT_NAME": "delete", "DELETED_BRANCH": "feature/scan-ui"},
            {"action": "down", "stack": stacks.branch_stack_name("feature/scan-ui")},
        ),
        (
            {"EVENT_NAME": "delete", "DELETED_BRANCH": "$(touch pwned)`touch pwned`"},
            {"action": "down", "stack": stacks.branch_stack_name("$(touch pwned)`touch pwned`")},
        ),
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
    script = step_script("branch-demo.yml", "plan", step_id="plan")
    defaults = {
        "SIRIUS_REF": "",
        "TTL_HOURS": "72",
        "PR_ACTION": "",
        "PR_NUMBER": "",
        "DELETED_BRANCH": "",
        "DISPATCH_BRANCH": "",
        "DISPATCH_ACTION": "",
    }
    result, outputs, _ = run_step(script, actions_env, **{**defaults, **event})
    assert result.returncode == 0, result.stderr
    for key, value in expected.items():
        assert outputs[key] == value if value != "*" else stacks.parse_time(outputs[key]), (key, outputs)
    assert not (actions_env[1] / "pwned").exists()


def test_branch_demo_plan_refuses_a_branch_that_is_no_ref(actions_env):
    script = step_script("branch-demo.yml", "plan", step_id="plan")
    result, _, _ = run_step(
        script,
        actions_env,
        EVENT_NAME="workflow_dispatch",
        DISPATCH_BRANCH="café",
        DISPATCH_ACTION="deploy",
        SIRIUS_REF="",
        TTL_HOURS="72",
    )
    assert result.returncode != 0 and "pass a Sirius ref explicitly" in result.stderr


@pytest.mark.parametrize(
    ("inputs", "code", "tag"),
    [
        ({"INPUT_TAG": "", "DISPATCH_TAG": ""}, 0, ""),
        ({"INPUT_TAG": "", "DISPATCH_TAG": "sha-" + "a" * 40}, 0, "sha-" + "a" * 40),
        ({"INPUT_TAG": "v1.1.0", "DISPATCH_TAG": "latest"}, 0, "v1.1.0"),
        ({"INPUT_TAG": "", "DISPATCH_TAG": "x;reboot"}, 2, None),
    ],
)
def test_deploy_image_tag_step(actions_env, inputs, code, tag):
    result, outputs, _ = run_step(step_script("deploy.yml", "deploy", step_id="tag"), actions_env, **inputs)
    assert result.returncode == code, result.stderr
    if tag is not None:
        assert outputs["imageTag"] == tag


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
            ]
        )
    )
    old, future = "2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z"
    (tmp_path / "tags.json").write_text(
        json.dumps(
            {
                "demo": {stacks.EXPIRES_TAG: old},
                "branch": {stacks.EXPIRES_TAG: old},
                "pr-7": {stacks.EXPIRES_TAG: old},
                "branch-busy": {stacks.EXPIRES_TAG: old},
                "pr-9": {stacks.EXPIRES_TAG: future},
            }
        )
    )
    result, outputs, calls = run_step(step_script("cleanup.yml", "select", step_id="due"), actions_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(outputs["stacks"]) == ["pr-7"]
    assert "--stack demo" not in calls  # demo's tags are not even read
    summary = (tmp_path / "summary").read_text()
    assert "- branch-untagged: keep (expiry missing" in summary and "- branch-busy: keep (an update" in summary


@pytest.mark.parametrize(
    ("expiry", "destroyed"), [("2020-01-01T00:00:00Z", True), ("2999-01-01T00:00:00Z", False), (None, False)]
)
def test_cleanup_destroy_checks_again(actions_env, expiry, destroyed):
    tmp_path, _, _ = actions_env
    (tmp_path / "tags.json").write_text(json.dumps({} if expiry is None else {"pr-7": {stacks.EXPIRES_TAG: expiry}}))
    script = step_script("cleanup.yml", "destroy", name="Still due? Then pulumi destroy and pulumi stack rm")
    result, _, calls = run_step(script, actions_env, STACK="pr-7")
    assert result.returncode == 0, result.stderr
    assert ("pulumi destroy --stack pr-7" in calls) is destroyed
    assert ("pulumi stack rm pr-7 --yes" in calls) is destroyed


def test_branch_demo_up_comment_is_edited_in_place(actions_env):
    tmp_path, _, _ = actions_env
    script = step_script("branch-demo.yml", "up", name="Job summary and pull request comment (UI URL)")
    (tmp_path / "comments.json").write_text(
        json.dumps([{"id": 1, "body": "hi"}, {"id": 99, "body": stacks.COMMENT_MARKER + "\nold"}])
    )
    env = {
        "STACK": "pr-42",
        "EXPIRES_AT": "2026-12-04T02:00:00Z",
        "PR_NUMBER": "42",
        "JOB_STATUS": "success",
        "RUN_URL": "https://github.com/owner/sirius-demo/actions/runs/1234",
    }
    result, _, calls = run_step(script, actions_env, **env)
    assert result.returncode == 0, result.stderr
    assert "gh api --method PATCH repos/owner/sirius-demo/issues/comments/99 -F body=@comment.md" in calls
    summary = (tmp_path / "summary").read_text()
    assert "http://52.10.20.30:3000" in summary and "did not succeed" not in summary
    assert "[secret]" not in summary
    (tmp_path / "comments.json").write_text("[]")
    result, _, calls = run_step(script, actions_env, **{**env, "JOB_STATUS": "failure"})
    assert "gh api --method POST repos/owner/sirius-demo/issues/42/comments -F body=@comment.md" in calls
    assert (
        "did not succeed (failure): https://github.com/owner/sirius-demo/actions/runs/1234"
        in (actions_env[1] / "comment.md").read_text()
    )


@pytest.mark.parametrize(("status", "failed"), [("success", False), ("failure", True)])
def test_deploy_summary_step(actions_env, status, failed):
    tmp_path, _, _ = actions_env
    script = step_script("deploy.yml", "deploy", name="Job summary (UI URL and health)")
    result, _, calls = run_step(script, actions_env, STACK="demo", JOB_STATUS=status)
    assert result.returncode == 0, result.stderr
    summary = (tmp_path / "summary").read_text()
    assert "| UI | http://52.10.20.30:3000 |" in summary and "not reported" in summary
    assert ("did not succeed" in summary) is failed


def test_branch_demo_down_skips_a_missing_stack(actions_env):
    tmp_path, _, _ = actions_env
    (tmp_path / "stacks.json").write_text(json.dumps([{"name": "demo"}, {"name": "pr-41"}]))
    script = step_script("branch-demo.yml", "down", step_id="destroy")
    result, outputs, calls = run_step(script, actions_env, STACK="pr-42")
    assert result.returncode == 0 and outputs["destroyed"] == "false" and "destroy" not in calls
    (tmp_path / "stacks.json").write_text(json.dumps([{"name": "demo"}, {"name": "pr-42"}]))
    result, outputs, calls = run_step(script, actions_env, STACK="pr-42")
    assert result.returncode == 0 and outputs["destroyed"] == "true"
    assert calls.index("pulumi destroy --stack pr-42") < calls.index("pulumi stack rm pr-42 --yes")
