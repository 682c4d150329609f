"""The commit a Sirius ref points at, asked where Pulumi runs: `git ls-remote` on repoUrl.

The commit is one of the deploy's inputs (infra/remote.py): a new commit on `main` with
no new image still redeploys, and the host checks out exactly this commit, even when the
branch moves again between preview and up. https:// and file:// repositories alike.
"""

from __future__ import annotations

import os
import subprocess

from engine import rules

TIMEOUT = 60  # seconds for one ls-remote


class RefError(RuntimeError):
    """The ref cannot be resolved: not in the repository, or the repository cannot be read."""


def pick(listing: str, git_ref: str) -> str | None:
    """The commit of `git_ref` in `git ls-remote` output: a branch before a tag (as git fetch
    does), an annotated tag by the commit it points at (`^{}`), a full `refs/...` exactly."""
    refs: dict[str, str] = {}
    for line in listing.splitlines():
        sha, _, name = line.strip().partition("\t")
        if rules.is_commit(sha) and name:
            refs[name] = sha
    names = [git_ref] if git_ref.startswith("refs/") else [f"refs/heads/{git_ref}", f"refs/tags/{git_ref}"]
    for name in names:
        if f"{name}^{{}}" in refs:
            return refs[f"{name}^{{}}"]
        if name in refs:
            return refs[name]
    return None


def resolve(repo_url: str, git_ref: str) -> str:
    """The 40-hex commit `git_ref` points at in `repo_url` now (a commit id is itself)."""
    if rules.is_commit(git_ref.lower()) and not git_ref.startswith("refs/"):
        return git_ref.lower()
    if not rules.is_repo_url(repo_url) or rules.ref_problem(git_ref):
        raise RefError(f"cannot resolve {git_ref!r} in {repo_url!r}: not a valid repository URL and ref")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # a private repository fails instead of asking
    try:
        result = subprocess.run(["git", "ls-remote", repo_url, git_ref, f"{git_ref}^{{}}"], capture_output=True, text=True,
                                timeout=TIMEOUT, env=env)
    except FileNotFoundError:
        raise RefError("git is not installed here; the preflight needs it to resolve the ref to a commit "
                       "(install git, or set sirius-demo:preflight false)") from None
    except subprocess.TimeoutExpired:
        raise RefError(f"git ls-remote {repo_url} did not answer within {TIMEOUT} s") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        raise RefError(f"cannot read {repo_url} with git ls-remote: {last}")
    commit = pick(result.stdout, git_ref)
    if commit is None:
        raise RefError(f"{git_ref!r} is not a branch, tag or pull request ref of {repo_url}; "
                       "expected an existing ref (git ls-remote lists them)")
    return commit
