"""The canary under the SDK's mocks, with the preflight against a fake registry on 127.0.0.1
and a file:// Sirius repository: what the tag and the ref point at is an input of the deploy.

The same digests and commit give identical deploy inputs (`pulumi up` is a no-op); a moved
`latest` of one image, or a new commit on main with no new image, changes the deploy's
inputs and nothing else that is not ignored (the instance stays put)."""

from __future__ import annotations

import shlex
import subprocess
import threading
from collections.abc import Iterator

import pulumi
import pytest

from infra import preflight
from tests.pulumi_mocks import run_stack
from tests.test_preflight import FakeRegistry, index
from tests.test_replacement import differences

COMMAND = "command:remote:Command"


def git(cwd, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def registry() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def latest(registry) -> FakeRegistry:
    """Every image published as `latest`, each with a manifest of its own."""
    registry.tags = {(image, "latest"): release(image, 1) for image in preflight.SIRIUS_IMAGES}
    registry.token_status, registry.denied, registry.fail_next = 200, set(), {}
    return registry


def release(image: str, build: int) -> dict:
    """An OCI index whose content (and so digest) differs per image and build."""
    manifest = index("amd64")
    manifest["annotations"] = {"build": f"{image}-{build}"}
    return manifest


@pytest.fixture
def sirius(tmp_path) -> tuple[str, object]:
    """A Sirius-shaped repository: main with one commit. file:// URL and its path."""
    repo = tmp_path / "sirius.git"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "one")
    return f"file://{repo}", repo


def stack(registry: FakeRegistry, repo_url: str, **extra: str):
    config = {"sshCidrs": "198.51.100.7/32", "ref": "main", "preflight": "true",
              "imageRegistry": registry.registry, "repoUrl": repo_url, **extra}
    return {r.name: r for r in run_stack(config).resources}


def deploy_inputs(resources) -> tuple[object, object]:
    deploy = resources["sirius-deploy"]
    return deploy.inputs["triggers"], deploy.inputs["create"]


def flags(resources, name: str) -> list[str]:
    argv = shlex.split(resources["sirius-deploy"].inputs["create"])
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == name]


def test_the_same_registry_state_and_commit_give_identical_deploy_inputs(latest, sirius):
    url, repo = sirius
    first, second = stack(latest, url), stack(latest, url)
    assert deploy_inputs(first) == deploy_inputs(second)
    assert differences(first, second) == set()
    # The host is told to run exactly what the preflight saw.
    assert flags(first, "--commit") == [git(repo, "rev-parse", "HEAD")]
    pinned = dict(item.split("=", 1) for item in flags(first, "--image-digest"))
    assert set(pinned) == set(preflight.SIRIUS_IMAGES) and all(d.startswith("sha256:") for d in pinned.values())


def test_a_moved_latest_of_one_image_changes_only_the_deploy(latest, sirius):
    url, _ = sirius
    before = stack(latest, url)
    latest.tags[("sirius-ui", "latest")] = release("sirius-ui", 2)  # Sirius CI pushed a new UI
    after = stack(latest, url)
    assert deploy_inputs(before) != deploy_inputs(after)
    assert differences(before, after) == {("sirius-deploy", "triggers"), ("sirius-deploy", "create")}
    old = dict(item.split("=", 1) for item in flags(before, "--image-digest"))
    new = dict(item.split("=", 1) for item in flags(after, "--image-digest"))
    assert {image for image in old if old[image] != new[image]} == {"sirius-ui"}
    assert flags(before, "--commit") == flags(after, "--commit")


def test_a_new_commit_on_main_with_no_new_image_changes_only_the_deploy(latest, sirius):
    url, repo = sirius
    before = stack(latest, url)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "two")
    after = stack(latest, url)
    assert differences(before, after) == {("sirius-deploy", "triggers"), ("sirius-deploy", "create")}
    assert flags(after, "--commit") == [git(repo, "rev-parse", "HEAD")] != flags(before, "--commit")
    assert flags(before, "--image-digest") == flags(after, "--image-digest")


def test_the_trigger_carries_the_commit_and_every_digest(latest, sirius):
    url, repo = sirius
    [pins] = [t for t in stack(latest, url)["sirius-deploy"].inputs["triggers"] if isinstance(t, dict) and "commit" in t]
    assert pins["commit"] == git(repo, "rev-parse", "HEAD")
    assert set(pins["digests"]) == set(preflight.SIRIUS_IMAGES)


def test_a_ref_missing_from_the_repository_is_refused_before_any_resource(latest, sirius):
    url, _ = sirius
    with pytest.raises(pulumi.RunError, match=r"preflight: 'no-such-branch' is not a branch, tag or pull request ref"):
        run_stack({"sshCidrs": "198.51.100.7/32", "ref": "no-such-branch", "imageTag": "latest", "preflight": "true",
                   "imageRegistry": latest.registry, "repoUrl": url})


def test_a_flaky_token_service_is_an_error_not_a_redeploy_with_other_tags(latest, sirius):
    url, _ = sirius
    latest.token_status = 503
    with pytest.raises(pulumi.RunError, match=r"preflight: registry unreachable: the token service .* HTTP 503"):
        stack(latest, url)


DEPLOY_URN = "urn:pulumi:demo::sirius-demo::sirius-demo:index:Demo$command:remote:Command::sirius-deploy"


def test_offline_the_preview_says_moving_tags_need_replace_with_the_deploys_urn():
    run = run_stack({"sshCidrs": "198.51.100.7/32", "ref": "main"}, preview=True)
    [note] = [w for w in run.warnings if w.startswith("preflight: off")]
    assert "a moved tag (latest) or a new commit of the ref does not redeploy" in note
    assert note.endswith(f"pulumi up --replace '{DEPLOY_URN}'")
    deploy = next(r for r in run.of_type(COMMAND) if r.name == "sirius-deploy")
    assert {"commit": "", "digests": {}} in deploy.inputs["triggers"]


def test_with_the_preflight_on_there_is_no_offline_note(latest, sirius):
    url, _ = sirius
    run = run_stack({"sshCidrs": "198.51.100.7/32", "ref": "main", "preflight": "true",
                     "imageRegistry": latest.registry, "repoUrl": url})
    assert not [w for w in run.warnings if w.startswith("preflight: off")]
    assert run.outputs["commit"] and set(run.outputs["imageDigests"]) == set(preflight.SIRIUS_IMAGES)
