"""What a config change does to the instance, judged the way the engine diffs it.

The engine replaces a resource when its replacementTrigger changes or a
replace-only property changes; other changed properties outside ignoreChanges are
updates, and on aws:ec2/Instance an update of userData or instanceType stops and
starts the VM. A new ref or tag must do neither: only tags may change in place.
"""

from __future__ import annotations

import pytest

from tests.pulumi_mocks import run_stack

INSTANCE = "aws:ec2/instance:Instance"
# Properties of aws:ec2/instance that force a new instance in the provider.
REPLACE_ONLY = {"ami", "subnetId", "keyName", "availabilityZone", "privateIp", "tenancy"}
BASE = {"sshCidrs": "198.51.100.7/32", "ref": "v1.2.0"}


def effect(old, new) -> tuple[str, set[str]]:
    if old.replacement_trigger != new.replacement_trigger:
        return "replace", {"replacementTrigger"}
    changed = {k for k in set(old.inputs) | set(new.inputs) if old.inputs.get(k) != new.inputs.get(k)}
    changed -= set(new.ignore_changes)
    if changed & REPLACE_ONLY:
        return "replace", changed
    return ("update" if changed else "same"), changed


def instance(config):
    return run_stack({**BASE, **config}).one(INSTANCE)


@pytest.fixture(scope="module")
def base():
    return instance({})


@pytest.mark.parametrize("change", [{"ref": "v1.1.0"}, {"imageTag": "pr-7-amd64"}, {"ref": "pr-42"}, {"ref": "main"}])
def test_new_ref_or_tag_updates_tags_only(base, change):
    kind, changed = effect(base, instance(change))
    assert kind == "update" and changed == {"tags"}


@pytest.mark.parametrize("change", [{"volumeSize": "40"}, {"ami": "ami-0123456789abcdef0"}])
def test_volume_or_ami_replaces(base, change):
    assert effect(base, instance(change))[0] == "replace"


def test_boot_script_change_replaces(base, edit_host_script):
    edit_host_script("install.py")
    assert effect(base, instance({}))[0] == "replace"


def test_deploy_engine_change_does_not_replace(base, edit_host_script):
    edit_host_script("deploy.py")
    assert effect(base, instance({}))[0] == "same"


def test_same_config_is_a_no_op(base):
    assert effect(base, instance({})) == ("same", set())


def test_user_data_ignored_and_unpinned_ami_ignored(base):
    assert set(base.ignore_changes) == {"userData", "ami"}
    assert set(instance({"ami": "ami-0123456789abcdef0"}).ignore_changes) == {"userData"}
