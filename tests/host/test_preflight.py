"""The tag preflight client against the real registry of the deploy tests."""

from __future__ import annotations

import pulumi
import pytest
import requests

from infra.preflight import SIRIUS_IMAGES, RegistryClient, RegistryUnreachable, check_tags
from tests.pulumi_mocks import run_stack

from testbed.standins import TAG_PR, TAG_V1, TAG_V2

REBUILT_BY_PR = {"sirius-api", "sirius-ui"}


@pytest.fixture
def client(registry, standins):
    return RegistryClient(f"{registry.host}/siriusscan")


def retag(registry, image: str, source: str, target: str) -> None:
    """Publish image:source again as image:target through the registry API (same digest)."""
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    url = f"http://{registry.host}/v2/siriusscan/{image}/manifests"
    manifest = requests.get(f"{url}/{source}", headers={"Accept": accept}, timeout=10)
    manifest.raise_for_status()
    put = requests.put(f"{url}/{target}", data=manifest.content,
                       headers={"Content-Type": manifest.headers["Content-Type"]}, timeout=10)
    put.raise_for_status()


def test_tags_present(client):
    for tag in (TAG_V1, TAG_V2):
        result = check_tags(client, tag)
        assert result.chosen == {image: tag for image in SIRIUS_IMAGES} and not result.missing


def test_tag_missing_everywhere_names_what_was_tried(client):
    result = check_tags(client, "v9.9.9")
    assert "v9.9.9" not in result.chosen.values()
    for image in SIRIUS_IMAGES:  # `latest` is published (the program test below deletes it a while)
        assert result.chosen.get(image) == "latest" or result.missing[image] == ("v9.9.9", "v9.9.9-amd64", "latest")


def test_tag_missing_for_some_images(client):
    result = check_tags(client, TAG_PR)
    assert {image for image, tag in result.chosen.items() if tag == TAG_PR} == REBUILT_BY_PR
    assert set(result.missing) | {i for i, t in result.chosen.items() if t == "latest"} == set(SIRIUS_IMAGES) - REBUILT_BY_PR


def test_registry_down_is_a_clear_error_not_a_hang(client, registry):
    registry.stop()
    try:
        with pytest.raises(RegistryUnreachable, match=f"cannot reach registry {registry.host}"):
            check_tags(client, TAG_V1)
    finally:
        registry.start()


def test_program_preflight_falls_back_per_image_and_flows_to_the_host(registry, standins, sirius_repo, ip_echo):
    config = {"ref": "pr-7", "preflight": "true", "imageRegistry": f"{registry.host}/siriusscan",
              "sshCidrs": "198.51.100.7/32", "repoUrl": sirius_repo}
    for image in sorted(set(SIRIUS_IMAGES) - REBUILT_BY_PR):  # no latest to fall back to
        registry.delete_tag(f"siriusscan/{image}", "latest")
        standins.digests.pop((image, "latest"), None)
    with pytest.raises(pulumi.RunError) as caught:
        run_stack(config)
    message = str(caught.value)
    assert "sirius-postgres (tried pr-7-amd64, latest)" in message and "allowBuildFallback" in message

    allowed = run_stack({**config, "allowBuildFallback": "true"})
    assert any("will build on the host" in w for w in allowed.warnings)

    for image in sorted(set(SIRIUS_IMAGES) - REBUILT_BY_PR):  # latest back, now v1's digests
        retag(registry, image, TAG_V1, "latest")
    run = run_stack(config)
    assert run.outputs["imageTags"] == {image: (TAG_PR if image in REBUILT_BY_PR else "latest") for image in SIRIUS_IMAGES}
    assert any("sirius-postgres:pr-7-amd64 is not published; running latest" in w for w in run.warnings)
    deploy = next(r for r in run.of_type("command:remote:Command") if r.name == "sirius-deploy").inputs["create"]
    assert "--image-tag sirius-postgres=latest" in deploy and "--image-tag sirius-ui" not in deploy
    # The digests it saw (a fallback image's is latest's) and the pull request's commit go to the host.
    assert f"--image-digest sirius-postgres={standins.digest('sirius-postgres', 'latest')}" in deploy
    assert f"--image-digest sirius-ui={standins.digest('sirius-ui', TAG_PR)}" in deploy
    assert run.outputs["commit"] in deploy and len(run.outputs["commit"]) == 40
