"""The ref's commit, resolved where Pulumi runs (git ls-remote on a file:// repository here)."""

from __future__ import annotations

import subprocess

import pytest

from infra import gitref


def git(cwd, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "sirius.git"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "commit", "-q", "--allow-empty", "-m", "one")
    git(path, "tag", "-a", "v1.1.0", "-m", "release")  # annotated: its own object, pointing at the commit
    git(path, "commit", "-q", "--allow-empty", "-m", "two")
    git(path, "update-ref", "refs/pull/7/head", "HEAD")
    git(path, "branch", "feature/scan-ui", "HEAD~1")
    return path


def test_branches_annotated_tags_and_pull_refs_resolve_to_commits(repo):
    url = f"file://{repo}"
    head, first = git(repo, "rev-parse", "HEAD"), git(repo, "rev-parse", "HEAD~1")
    assert gitref.resolve(url, "main") == head
    assert gitref.resolve(url, "v1.1.0") == first  # the commit, not the tag object
    assert gitref.resolve(url, "refs/pull/7/head") == head
    assert gitref.resolve(url, "feature/scan-ui") == first
    assert gitref.resolve(url, "A" * 40) == "a" * 40  # a commit id is itself, no network


def test_a_branch_wins_over_a_tag_of_the_same_name():
    listing = f"{'1' * 40}\trefs/tags/main\n{'2' * 40}\trefs/heads/main\n{'3' * 40}\trefs/heads/x/main\n"
    assert gitref.pick(listing, "main") == "2" * 40


def test_a_missing_ref_and_an_unreadable_repository_are_named(repo, tmp_path):
    with pytest.raises(gitref.RefError, match=r"'nope' is not a branch, tag or pull request ref of file://"):
        gitref.resolve(f"file://{repo}", "nope")
    with pytest.raises(gitref.RefError, match=r"cannot read file://.*/absent.git with git ls-remote"):
        gitref.resolve(f"file://{tmp_path}/absent.git", "main")
