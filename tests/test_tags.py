"""Image tag resolution: the table of rules from the issue."""

import pytest

from engine.rules import plan_ref, release_problem, resolve_image_tag

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("ref", "image_tag", "expected_tag", "git_ref", "published"),
    [
        ("main", None, "latest", "main", True),
        ("demo", None, "latest", "demo", False),  # stale since 2025-11: no longer mapped to latest
        ("v1.1.0", None, "v1.1.0", "v1.1.0", True),
        ("v0.4.1", None, "v0.4.1", "v0.4.1", True),
        ("v1.0.0-rc.1", None, "v1.0.0-rc.1", "v1.0.0-rc.1", True),
        ("pr-42", None, "pr-42-amd64", "refs/pull/42/head", True),
        ("refs/pull/42/merge", None, "pr-42-amd64", "refs/pull/42/head", True),
        ("refs/pull/7/head", None, "pr-7-amd64", "refs/pull/7/head", True),
        (f"sha-{COMMIT}", None, f"sha-{COMMIT}", COMMIT, True),
        (COMMIT, None, f"sha-{COMMIT}", COMMIT, True),
        (COMMIT.upper(), None, f"sha-{COMMIT}", COMMIT, True),
        ("beta", None, "beta", "main", True),  # beta images are latest's digests, built from main
        ("feature/scan-ui", None, "latest", "feature/scan-ui", False),
        ("sirius-demo", None, "latest", "sirius-demo", False),
        ("v1.1", None, "latest", "v1.1", False),
        ("feature/scan-ui", "pr-9-amd64", "pr-9-amd64", "feature/scan-ui", True),
        ("main", "v1.1.0", "v1.1.0", "main", True),
        ("pr-42", "latest", "latest", "refs/pull/42/head", True),
    ],
)
def test_plan_ref(ref, image_tag, expected_tag, git_ref, published):
    plan = plan_ref(ref, image_tag)
    assert (plan.image_tag, plan.git_ref, plan.published) == (expected_tag, git_ref, published)
    assert resolve_image_tag(ref, image_tag) == expected_tag


def test_pull_request_number_is_kept():
    assert plan_ref("pr-42").pull_request == 42
    assert plan_ref("main").pull_request is None


@pytest.mark.parametrize("ref", ["v1.0.0", "v0.4.1", "v1.0.9-rc.1"])
def test_releases_before_the_key_file_contract_are_refused_naming_v1_1_0(ref):
    problem = release_problem(ref)
    assert problem is not None and "v1.1.0" in problem


@pytest.mark.parametrize("ref", ["v1.1.0", "v1.2.0", "v2.0.0", "main", "beta", "pr-7", "feature/x"])
def test_supported_refs_pass(ref):
    assert release_problem(ref) is None


def test_dev_is_refused_as_unmaintained():
    assert "unmaintained" in release_problem("dev")
