"""Stacks per branch and pull request (ci/stacks.py): names, refs, expiry, cleanup."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ci import markdown, stacks
from engine import rules
from infra import config
from tests.test_markdown import OUTPUTS
from ci.stacks import (
    StackError,
    branch_stack_name,
    due_for_destruction,
    expires_at,
    is_branch_stack,
    main,
    parse_time,
    plan_stack,
    pr_stack_name,
    review,
    ssh_cidrs,
    stack_name,
)

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 1, 2, 0, 0, tzinfo=timezone.utc)
VALID_STACK = re.compile(r"[A-Za-z0-9_.-]{1,100}")
HASHED = re.compile(r"branch-(?:[a-z0-9._-]+-)?[0-9a-f]{10}")


def h(branch: str) -> str:
    import hashlib

    return hashlib.sha256(branch.encode()).hexdigest()[:10]


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("branch", "expected"),
    [
        ("main", "branch-main"),
        ("demo", "branch-demo"),  # a branch called demo is not the shared demo stack
        ("dev", "branch-dev"),
        ("v1.1.0", "branch-v1.1.0"),
        ("v1.0.0-rc.1", "branch-v1.0.0-rc.1"),
        ("pr-42", "branch-pr-42"),  # a branch, not pull request 42
        ("fix_typo", "branch-fix_typo"),
        ("feature-scan-ui", "branch-feature-scan-ui"),
        ("feature/scan-ui", f"branch-feature-scan-ui-{h('feature/scan-ui')}"),
        # GitHub hands over short names: a branch really called refs/heads/x is not x.
        ("refs/heads/feature/scan-ui", f"branch-refs-heads-feature-scan-ui-{h('refs/heads/feature/scan-ui')}"),
        ("Feature/Scan-UI", f"branch-feature-scan-ui-{h('Feature/Scan-UI')}"),
        ("UPPER", f"branch-upper-{h('UPPER')}"),
        ("feature--x", f"branch-feature-x-{h('feature--x')}"),
        ("-x-", f"branch-x-{h('-x-')}"),
        ("café/crème", f"branch-cafe-creme-{h('café/crème')}"),
        ("日本語", f"branch-{h('日本語')}"),
        ("🚀", f"branch-{h('🚀')}"),
        ("a b\tc", f"branch-a-b-c-{h('a b' + chr(9) + 'c')}"),
        # Looks like a hashed name: hashed too, so it cannot meet a real hashed name.
        ("feature-x-0123456789", f"branch-feature-x-0123456789-{h('feature-x-0123456789')}"),
        ("deadbeef00", f"branch-deadbeef00-{h('deadbeef00')}"),
    ],
)
def test_branch_stack_names(branch, expected):
    assert branch_stack_name(branch) == expected
    assert VALID_STACK.fullmatch(expected)
    assert is_branch_stack(expected)


def test_names_that_clean_to_the_same_string_stay_apart():
    branches = [
        "feature/x",
        "feature-x",
        "Feature/X",
        "feature_x",
        "feature x",
        "feature//x",
        "FEATURE-X",
        "feature.x",
        "feature-x/",
        "fëature/x",
        "refs/heads/feature-x",
    ]
    names = [branch_stack_name(b) for b in branches]
    assert len(set(names)) == len(branches)


@pytest.mark.parametrize("length", [93, 94, 100, 101, 250, 1000])
def test_very_long_names_are_cut_and_hashed(length):
    branch = "a" * length
    name = branch_stack_name(branch)
    assert len(name) <= 100 and VALID_STACK.fullmatch(name)
    if length <= 93:
        assert name == "branch-" + branch
    else:
        assert name == f"branch-{'a' * 82}-{h(branch)}"


def test_two_long_names_sharing_a_prefix_differ():
    prefix = "feature/" + "x" * 120
    assert branch_stack_name(prefix + "1") != branch_stack_name(prefix + "2")


@pytest.mark.parametrize(
    ("number", "expected"),
    [(42, "pr-42"), ("42", "pr-42"), ("pr-42", "pr-42"), ("#7", "pr-7"), (1, "pr-1"), (999_999_999, "pr-999999999")],
)
def test_pull_request_stack_names(number, expected):
    assert pr_stack_name(number) == expected
    assert is_branch_stack(expected)


@pytest.mark.parametrize("number", [0, -1, 1_000_000_000, "abc", "", "4 2", "\u0664\u0662", True, 1.5, None])
def test_bad_pull_request_numbers(number):
    with pytest.raises(StackError):
        pr_stack_name(number)


@pytest.mark.parametrize("branch", ["", "   ", None, 42])
def test_bad_branches(branch):
    with pytest.raises(StackError):
        branch_stack_name(branch)


def test_pull_request_wins_over_branch_and_one_is_needed():
    assert stack_name(branch="feature/x", pr=42) == "pr-42"
    with pytest.raises(StackError):
        stack_name()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("demo", False),
        ("org/sirius-demo/demo", False),
        ("org/demo", False),
        ("branch", False),  # the template stack of --copy-config-from
        ("branch-", False),
        ("branch-main", True),
        ("org/sirius-demo/branch-feature-x-0123456789", True),
        ("pr-42", True),
        ("org/pr-42", True),
        ("pr-0", False),
        ("pr-042", False),
        ("pr-x", False),
        ("branch-Upper", False),  # never produced; someone else's stack
        ("prod", False),
        ("", False),
        (None, False),
    ],
)
def test_is_branch_stack(name, expected):
    assert is_branch_stack(name) is expected


@pytest.mark.parametrize(
    ("name", "organization", "ours"),
    [
        ("pr-7", "my-org", True),
        ("pr-7", "", True),
        ("my-org/pr-7", "my-org", True),
        ("my-org/sirius-demo/pr-7", "my-org", True),
        ("other-org/pr-7", "my-org", False),  # Pulumi Cloud lists every organisation the token sees
        ("other-org/sirius-demo/pr-7", "my-org", False),
        ("my-org/pr-7", "", False),  # no organisation known: only unqualified names
        ("a/b/c/pr-7", "a", False),
    ],
)
def test_only_stacks_of_the_organisation_are_ours(name, organization, ours):
    assert stacks.in_organization(name, organization) is ours


def test_cli_branch_stacks_keeps_other_organisations_out(tmp_path, capsys):
    listing = tmp_path / "ls.json"
    listing.write_text(json.dumps([{"name": "other-org/pr-7"}, {"name": "my-org/pr-8"}, {"name": "pr-9"}]))
    code, out, _ = run(["branch-stacks", f"--stacks-json={listing}", "--organization=my-org"], capsys)
    assert (code, out.split()) == (0, ["my-org/pr-8", "pr-9"])


# --- refs and image tags -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "stack", "ref", "git_ref", "image_tag", "published"),
    [
        ({"pr": 42}, "pr-42", "pr-42", "refs/pull/42/head", "pr-42-amd64", True),
        ({"pr": "7", "branch": "feature/x"}, "pr-7", "pr-7", "refs/pull/7/head", "pr-7-amd64", True),
        ({"branch": "main"}, "branch-main", "main", "main", "latest", True),
        ({"branch": "scan-ui"}, "branch-scan-ui", "scan-ui", "scan-ui", "latest", False),
        ({"branch": "beta"}, "branch-beta", "beta", "main", "beta", True),
        ({"branch": "v1.1.0"}, "branch-v1.1.0", "v1.1.0", "v1.1.0", "v1.1.0", True),
        (
            {"branch": "feature/scan-ui"},
            f"branch-feature-scan-ui-{h('feature/scan-ui')}",
            "feature/scan-ui",
            "feature/scan-ui",
            "latest",
            False,
        ),
        ({"pr": 42, "ref": "main"}, "pr-42", "main", "main", "latest", True),
        ({"branch": "日本語", "ref": "main"}, f"branch-{h('日本語')}", "main", "main", "latest", True),
        ({"pr": 42, "image_tag": "v1.1.0"}, "pr-42", "pr-42", "refs/pull/42/head", "v1.1.0", True),
    ],
)
def test_plan_stack(kwargs, stack, ref, git_ref, image_tag, published):
    plan = plan_stack(now=NOW, **kwargs)
    assert (plan.stack, plan.ref, plan.git_ref, plan.image_tag, plan.images_published) == (
        stack,
        ref,
        git_ref,
        image_tag,
        published,
    )
    assert plan.expires_at == "2026-12-04T02:00:00Z" and plan.ttl_hours == 72
    assert plan.image_tag_override == kwargs.get("image_tag")
    # What the workflow writes into the stack config is accepted by the program.
    raw = {"ref": plan.ref, "expiresAt": plan.expires_at, "imageTag": plan.image_tag_override or ""}
    settings_ = config.parse(raw, stack=plan.stack, lookup_public_ip=lambda: "52.10.20.30")
    assert settings_.image_tag == plan.image_tag and settings_.expires_at == plan.expires_at


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"branch": "café"}, "pass a Sirius ref explicitly"),
        ({"branch": "a..b"}, "'..'"),
        ({"branch": "-x"}, "starts with '-'"),
        ({"pr": 1, "ref": "main;reboot"}, "contains ';'"),
        ({"pr": 1, "image_tag": "a/b"}, "not a Docker tag"),
        ({"pr": 1, "ttl_hours": 0}, "ttlHours"),
        ({"pr": 1, "ttl_hours": 721}, "ttlHours"),
        ({}, "give a branch or a pull request"),
    ],
)
def test_plan_stack_refuses(kwargs, says):
    with pytest.raises(StackError, match=re.escape(says)):
        plan_stack(now=NOW, **kwargs)


def test_github_output_lines_are_key_value_and_shell_safe():
    lines = plan_stack(branch="Feature/Café", ref="main", now=NOW).output_lines()
    values = dict(line.split("=", 1) for line in lines)
    assert set(values) == {
        "stack",
        "ref",
        "gitRef",
        "imageTag",
        "imageTagOverride",
        "imagesPublished",
        "expiresAt",
        "ttlHours",
        "pullRequest",
    }
    assert values["imagesPublished"] == "true" and values["pullRequest"] == ""
    # `eval "$(... --format=github)"` (README) reads each value as one word that needs no quoting.
    assert all(shlex.quote(value) == value for value in values.values() if value)


# --- expiry -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "hours", "expected"),
    [
        (NOW, 72, "2026-12-04T02:00:00Z"),
        (NOW, 1, "2026-12-01T03:00:00Z"),
        (NOW.replace(microsecond=999_999), 1, "2026-12-01T03:00:00Z"),
        (datetime(2026, 2, 27, 12, 30, 15, tzinfo=timezone.utc), 48, "2026-03-01T12:30:15Z"),
        (datetime(2026, 12, 31, 23, 0, tzinfo=timezone.utc), 2, "2027-01-01T01:00:00Z"),
        (datetime(2026, 12, 1, 4, 0, tzinfo=timezone(timedelta(hours=2))), 72, "2026-12-04T02:00:00Z"),
    ],
)
def test_expires_at(now, hours, expected):
    assert expires_at(now, hours) == expected
    assert parse_time(expected) is not None


@pytest.mark.parametrize("hours", [0, -1, 721, True, 1.5, "72"])
def test_bad_ttl(hours):
    with pytest.raises(StackError):
        expires_at(NOW, hours)


def test_naive_clock_is_refused():
    with pytest.raises(StackError, match="timezone-aware"):
        expires_at(datetime(2026, 12, 1), 72)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "soon",
        "2026-12-01",
        "2026-12-01T02:00:00",
        "2026-12-01 02:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-12-01T25:00:00Z",
        "2026-12-01T02:00:00+00:00",
        "\u0662026-12-01T02:00:00Z",
        1764554400,
        ["2026-12-01T02:00:00Z"],
    ],
)
def test_garbled_times_parse_to_none(text):
    assert parse_time(text) is None


# --- cleanup selection ------------------------------------------------------------------

STACKS = [
    {"name": "demo", "expiresAt": "2020-01-01T00:00:00Z"},  # never, even "expired"
    {"name": "org/sirius-demo/demo", "tags": {stacks.EXPIRES_TAG: "2020-01-01T00:00:00Z"}},
    {"name": "branch", "expiresAt": "2020-01-01T00:00:00Z"},  # the template stack
    {"name": "prod", "expiresAt": "2020-01-01T00:00:00Z"},  # not ours
    {"name": "pr-1", "expiresAt": "2026-12-01T01:59:59Z"},  # due
    {"name": "pr-2", "expiresAt": "2026-12-01T02:00:00Z"},  # due: exactly now
    {"name": "pr-3", "expiresAt": "2026-12-01T02:00:01Z"},  # not yet
    {"name": "org/branch-old", "tags": {stacks.EXPIRES_TAG: "2026-11-01T00:00:00Z", "pulumi:project": "x"}},  # due
    {"name": "branch-no-expiry"},  # never
    {"name": "branch-empty", "expiresAt": ""},  # never
    {"name": "branch-garbled", "expiresAt": "next tuesday"},  # never
    {"name": "branch-bad-date", "expiresAt": "2026-02-30T00:00:00Z"},  # never
    {"name": "branch-tags-not-a-map", "tags": ["2020-01-01T00:00:00Z"]},  # never
    {"name": "branch-busy", "expiresAt": "2020-01-01T00:00:00Z", "updateInProgress": True},  # not while updating
    {"name": "branch-idle", "expiresAt": "2020-01-01T00:00:00Z", "updateInProgress": False},  # due
]


def test_due_for_destruction():
    assert due_for_destruction(STACKS, NOW) == ["branch-idle", "org/branch-old", "pr-1", "pr-2"]


def test_nothing_is_due_before_its_time_and_demo_never():
    assert due_for_destruction(STACKS, datetime(2000, 1, 1, tzinfo=timezone.utc)) == []
    far_future = datetime(9999, 1, 1, tzinfo=timezone.utc)
    due = due_for_destruction(STACKS, far_future)
    assert not {"demo", "org/sirius-demo/demo", "branch", "prod", "branch-no-expiry", "branch-garbled"} & set(due)


def test_every_stack_gets_a_reason():
    verdicts = {v.name: v for v in review(STACKS, NOW)}
    assert len(verdicts) == len(STACKS)
    assert "never destroyed" in verdicts["demo"].reason
    assert "missing" in verdicts["branch-no-expiry"].reason
    assert "unreadable" in verdicts["branch-garbled"].reason
    assert verdicts["pr-3"].reason == "expires at 2026-12-01T02:00:01Z"


def test_junk_entries_are_ignored():
    entries = [
        None,
        3,
        {"name": ""},
        {"name": 5},
        {"nom": "pr-1"},
        "pr-9",
        {"name": "pr-1", "expiresAt": "2020-01-01T00:00:00Z"},
    ]
    assert due_for_destruction(entries, NOW) == ["pr-1"]
    assert stacks.stack_entries({"stacks": ["pr-2"]}) == [{"name": "pr-2"}]
    assert stacks.stack_entries("nonsense") == []


# --- SSH CIDRs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "runner", "expected"),
    [
        ("", "", "auto"),
        (None, None, "auto"),
        (" , ", "52.10.20.30", "auto"),
        ("203.0.113.0/24", "52.10.20.30", "52.10.20.30/32,203.0.113.0/24"),
        (
            "203.0.113.0/24, 2001:db8::/64\n198.51.100.7/32",
            "52.10.20.30",
            "52.10.20.30/32,203.0.113.0/24,2001:db8::/64,198.51.100.7/32",
        ),
        ("52.10.20.30/32", "52.10.20.30", "52.10.20.30/32"),
    ],
)
def test_ssh_cidrs(extra, runner, expected):
    assert ssh_cidrs(extra, runner) == expected
    if expected != "auto":
        assert config.parse({"sshCidrs": expected}, stack="t").ssh_cidrs == tuple(expected.split(","))


@pytest.mark.parametrize(
    ("extra", "runner"),
    [
        ("203.0.113.0/24", ""),
        ("203.0.113.1/24", "52.10.20.30"),
        ("nonsense", "52.10.20.30"),
        ("203.0.113.0/24", "2001:db8::1"),
    ],
)
def test_bad_ssh_cidrs(extra, runner):
    with pytest.raises(StackError):
        ssh_cidrs(extra, runner)


# --- command line ---------------------------------------------------------------------------


def run(argv, capsys, clock=lambda: NOW):
    code = main(argv, clock=clock)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_name_json_and_github(capsys):
    code, out, _ = run(["name", "--pr", "42"], capsys)
    assert code == 0
    assert json.loads(out) | {} == plan_stack(pr=42, now=NOW).as_dict()
    code, out, _ = run(
        ["name", "--branch", "feature/x", "--ref", "", "--image-tag", "", "--format", "github", "--ttl-hours", "24"],
        capsys,
    )
    assert code == 0
    values = dict(line.split("=", 1) for line in out.splitlines())
    assert values["stack"] == f"branch-feature-x-{h('feature/x')}" and values["expiresAt"] == "2026-12-02T02:00:00Z"
    code, out, _ = run(["name", "--branch", "日本語", "--stack-only"], capsys)
    assert (code, out) == (0, f"branch-{h('日本語')}\n")
    code, out, _ = run(["name", "--pr", "1", "--now", "2026-01-01T00:00:00Z", "--format", "github"], capsys)
    assert "expiresAt=2026-01-04T00:00:00Z" in out.splitlines()


@pytest.mark.parametrize(
    "argv",
    [
        ["name"],
        ["name", "--branch", "café"],
        ["name", "--pr", "x"],
        ["name", "--pr", "1", "--ttl-hours", "soon"],
        ["name", "--pr", "1", "--now", "tomorrow"],
        ["check-tag", "a b"],
        ["ssh-cidrs", "--extra", "203.0.113.0/24"],
        ["due", "--stacks-json", "/nonexistent/file.json"],
    ],
)
def test_cli_errors_exit_2(argv, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2 and out == "" and err.startswith("ci.stacks: error: ")


def test_cli_due_branch_stacks_and_summary(tmp_path, capsys):
    listing = tmp_path / "ls.json"
    listing.write_text(
        json.dumps(
            [
                {"name": "demo", "current": True},
                {"name": "pr-1", "lastUpdate": "x"},
                {"name": "branch-main"},
                {"name": "prod"},
            ]
        )
    )
    code, out, _ = run(["branch-stacks", "--stacks-json", str(listing)], capsys)
    assert (code, out.split()) == (0, ["pr-1", "branch-main"])

    expiry = tmp_path / "expiry.json"
    expiry.write_text(json.dumps(STACKS))
    code, out, err = run(["due", "--stacks-json", str(expiry), "--explain"], capsys)
    assert code == 0 and out.split() == due_for_destruction(STACKS, NOW)
    assert "demo: keep (the shared demo stack is never destroyed by cleanup)" in err
    code, out, _ = run(["due", "--stacks-json", str(expiry), "--json", "--now", "2000-01-01T00:00:00Z"], capsys)
    assert json.loads(out) == []
    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert run(["due", "--stacks-json", str(empty), "--json"], capsys)[1] == "[]\n"

    outputs = tmp_path / "out.json"
    outputs.write_text(json.dumps(OUTPUTS))
    code, out, _ = run(["summary", "--outputs-json", str(outputs), "--stack", "pr-42", "--marker"], capsys)
    assert code == 0 and out.startswith(markdown.COMMENT_MARKER) and "PRIVATE KEY" not in out

    assert run(["check-tag", "pr-42-amd64"], capsys)[1] == "pr-42-amd64\n"
    assert run(["ssh-cidrs"], capsys)[1] == "auto\n"


@pytest.mark.parametrize("outcome", ["success", "failure", "cancelled"])
def test_preview_comment_says_whether_the_preview_finished(tmp_path, capsys, outcome):
    output = tmp_path / "preview.txt"
    output.write_text("Previewing update (demo)\n```\n+ 2 to create\n" + "x" * (markdown.MAX_COMMENT_OUTPUT + 10))
    code, out, _ = run(["preview-comment", f"--output={output}", f"--outcome={outcome}", "--commit=abc"], capsys)
    assert code == 0 and out.startswith(markdown.PREVIEW_MARKER + "\n")
    assert ("**FAILED**" in out) is (outcome != "success") and "commit abc" in out
    assert out.count("```") == 2 and len(out) < markdown.MAX_COMMENT_OUTPUT + 1000  # one fence, tail only
    code, out, _ = run(["preview-comment", f"--output={tmp_path / 'missing.txt'}", "--outcome=skipped"], capsys)
    assert code == 0 and "(no output)" in out and "**FAILED** (skipped)" in out


def test_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "ci.stacks", "name", "--pr", "42", "--format", "github"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "stack=pr-42" in result.stdout.splitlines()


# --- Pulumi.branch.yaml ---------------------------------------------------------------------


def test_branch_template_only_has_declared_keys_and_valid_values():
    template = yaml.safe_load((ROOT / "Pulumi.branch.yaml").read_text())["config"]
    schema = config.load_schema()
    ours = {key.split(":", 1)[1]: value for key, value in template.items() if key.startswith(f"{config.PROJECT}:")}
    others = set(template) - {f"{config.PROJECT}:{key}" for key in ours}
    assert others == {"aws:region"} and template["aws:region"] == "us-west-2"
    assert set(ours) <= set(schema), set(ours) - set(schema)
    assert "expiresAt" not in ours  # set per deploy, never inherited
    parsed = config.parse(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in ours.items()},
        stack="branch-main",
        lookup_public_ip=lambda: "52.10.20.30",
    )
    assert parsed.instance_type == "t3.medium" and parsed.volume_size == 30
    assert parsed.ssh_cidrs == ("52.10.20.30/32",)  # auto: the machine running pulumi up
    assert parsed.acme_ca == "staging" and not parsed.https  # staging certificates once a domainSuffix is set


# --- properties ---------------------------------------------------------------------------

branch_names = st.text(min_size=1, max_size=300).filter(lambda s: s.strip() != "")
lookalikes = st.from_regex(r"(refs/heads/)?[A-Za-z0-9/_. é-]{1,24}(-[0-9a-f]{10})?", fullmatch=True).filter(
    lambda s: s.strip() != ""
)


@given(branch_names)
def test_always_a_valid_branch_stack_name(branch):
    name = branch_stack_name(branch)
    assert VALID_STACK.fullmatch(name) and len(name) <= 100
    assert name.startswith("branch-") and name != "demo" and is_branch_stack(name)
    assert name == branch_stack_name(branch)  # deterministic
    kept = name == "branch-" + branch
    assert kept != bool(HASHED.fullmatch(name))  # a kept name never looks hashed


@given(st.lists(st.one_of(branch_names, lookalikes), unique=True, max_size=60))
def test_distinct_branches_never_collide(branches):
    names = [branch_stack_name(b) for b in branches]
    assert len(set(names)) == len(names)
    assert len({n.lower() for n in names}) == len(names)  # not even on a case-insensitive backend


@given(st.integers(min_value=1, max_value=999_999_999), branch_names)
def test_pull_request_and_branch_names_never_meet(number, branch):
    assert pr_stack_name(number) != branch_stack_name(branch)
    assert is_branch_stack(pr_stack_name(number))


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 1, 1), timezones=st.just(timezone.utc)),
    st.integers(min_value=1, max_value=720),
)
def test_expiry_round_trips_and_is_due_exactly_then(now, hours):
    text = expires_at(now, hours)
    expiry = parse_time(text)
    assert expiry == now.replace(microsecond=0) + timedelta(hours=hours)
    entry = [{"name": "pr-1", "expiresAt": text}]
    assert due_for_destruction(entry, expiry) == ["pr-1"]
    assert due_for_destruction(entry, expiry - timedelta(seconds=1)) == []


stack_entry = st.fixed_dictionaries(
    {
        "name": st.one_of(
            st.sampled_from(["demo", "org/demo", "branch", "prod", "pr-1", "branch-x", "org/pr-2"]),
            st.text(max_size=20),
        )
    },
    optional={
        "expiresAt": st.one_of(
            st.none(),
            st.text(max_size=25),
            st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: d.strftime(stacks.TIME_FORMAT)),
        ),
        "updateInProgress": st.booleans(),
    },
)


@settings(max_examples=200)
@given(st.lists(stack_entry, max_size=20), st.datetimes(timezones=st.just(timezone.utc)))
def test_only_expired_branch_stacks_are_ever_due(entries, now):
    due = due_for_destruction(entries, now)
    for name in due:
        assert is_branch_stack(name) and stacks.short_stack_name(name) != "demo"
        matching = [e for e in entries if e["name"] == name]
        first = matching[0]
        assert parse_time(first.get("expiresAt")) <= now.astimezone(timezone.utc)
        assert first.get("updateInProgress") is not True


# --- DNS labels for domainSuffix ------------------------------------------------------------

DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@pytest.mark.parametrize("stack", ["pr-42", "demo", "branch-main", "branch-feature-scan-ui-0123456789", "org/proj/pr-7"])
def test_stack_names_that_are_dns_labels_are_kept(stack):
    assert rules.dns_label(stack) == stack.rsplit("/", 1)[-1]


@pytest.mark.parametrize("stack", ["Demo", "branch-v1.2", "my_stack", "a--b", "branch-" + "x" * 90, "-x-", "___"])
def test_other_stack_names_become_a_hashed_dns_label(stack):
    label = rules.dns_label(stack)
    assert DNS_LABEL.fullmatch(label) and "--" not in label and label.endswith(
        hashlib.sha256(stack.encode()).hexdigest()[:10])


@given(st.lists(st.one_of(branch_names, st.integers(1, 999_999_999)), unique=True, max_size=40))
def test_branch_and_pull_request_stacks_get_distinct_valid_dns_labels(sources):
    names = {stack_name(pr=s) if isinstance(s, int) else branch_stack_name(s) for s in sources}
    labels = {rules.dns_label(name) for name in names}
    assert len(labels) == len(names)
    assert all(DNS_LABEL.fullmatch(label) and "--" not in label for label in labels)


# --- the Elastic IP quota ---------------------------------------------------------------


def test_a_fifth_branch_demo_is_refused_naming_the_elastic_ip_quota():
    listed = ["demo", "pr-1", "pr-2", "branch-a", "branch-b", "other"]
    with pytest.raises(stacks.StackError, match=r"refusing a new demo pr-9: 4 branch demos exist .*AWS allows 5 per "
                                                 r"region .*AddressLimitExceeded.*DEMO_MAX_BRANCH_STACKS"):
        stacks.check_quota(listed, "pr-9")
    assert "redeploy" in stacks.check_quota(listed, "pr-1")  # an existing demo keeps its address
    assert "3 of 4" in stacks.check_quota(listed[:-2], "pr-9")
    assert "4 of 5" in stacks.check_quota(listed, "pr-9", limit=5)


def test_quota_command_counts_only_this_organisations_branch_stacks(tmp_path, capsys):
    ls = tmp_path / "ls.json"
    ls.write_text(json.dumps([{"name": f"org/sirius-demo/pr-{n}"} for n in (1, 2, 3)]
                             + [{"name": "other-org/sirius-demo/pr-4"}, {"name": "org/sirius-demo/demo"}]))
    assert stacks.main(["quota", f"--stacks-json={ls}", "--organization=org", "--stack=pr-9"]) == 0
    assert "3 of 4" in capsys.readouterr().out
    assert stacks.main(["quota", f"--stacks-json={ls}", "--organization=org", "--stack=pr-9", "--max=3"]) == 2
    assert "Elastic IP" in capsys.readouterr().err
