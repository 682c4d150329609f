"""What a config change does to the resources, stated as plain invariants over what the
program registers (not as a model of the engine's diff).

Which changes of aws:ec2/Instance force a new instance is the provider's business (its
schema marks them ForceNew); this program registers: `ami` (ignored unless pinned),
`keyName`, `primaryNetworkInterface` (the interface with the Elastic IP), and, inside
`rootBlockDevice`, `encrypted` and `kmsKeyId`. Others it does not set: `availabilityZone`,
`subnetId`, `privateIp`, `tenancy`, `placementGroup`, `securityGroups`, `ebsBlockDevices`,
`hibernation`. `instanceType` and `userData` are updated in place by stopping and starting
the VM, which is why a new ref or tag must not touch them. What the program forces itself
is the `replacementTrigger`: a digest of the boot scripts, a pinned AMI and the volume.
"""

from __future__ import annotations

import pytest

from tests.pulumi_mocks import run_stack

INSTANCE = "aws:ec2/instance:Instance"
COMMAND = "command:remote:Command"
BASE = {"sshCidrs": "198.51.100.7/32", "ref": "v1.2.0"}


def registered(config) -> dict[str, object]:
    return {resource.name: resource for resource in run_stack({**BASE, **config}).resources}


def differences(old: dict, new: dict) -> set[tuple[str, str]]:
    """(resource, property) pairs whose input differs, outside the resource's ignoreChanges;
    ("resource", "replacementTrigger") when its trigger differs."""
    assert old.keys() == new.keys()
    found = set()
    for name, before in old.items():
        after = new[name]
        if before.replacement_trigger != after.replacement_trigger:
            found.add((name, "replacementTrigger"))
        for key in set(before.inputs) | set(after.inputs):
            if key not in after.ignore_changes and before.inputs.get(key) != after.inputs.get(key):
                found.add((name, key))
    return found


@pytest.fixture(scope="module")
def base():
    return registered({})


@pytest.mark.parametrize("change", [{"ref": "v1.1.0"}, {"imageTag": "pr-7-amd64"}, {"ref": "pr-42"}, {"ref": "main"}])
def test_a_new_ref_or_tag_changes_only_tags_and_the_deploy(base, change):
    assert differences(base, registered(change)) <= {
        ("sirius-host", "tags"), ("sirius-deploy", "create"), ("sirius-deploy", "triggers")}
    assert ("sirius-host", "tags") in differences(base, registered(change))


@pytest.mark.parametrize("change", [{"volumeSize": "40"}, {"ami": "ami-0123456789abcdef0"}])
def test_a_new_volume_or_pinned_ami_replaces_the_instance(base, change):
    assert ("sirius-host", "replacementTrigger") in differences(base, registered(change))


def test_a_boot_script_change_replaces_the_instance(base, edit_host_script):
    edit_host_script("install.py")
    assert ("sirius-host", "replacementTrigger") in differences(base, registered({}))


def test_a_deploy_engine_change_leaves_the_instance_alone(base, edit_host_script):
    edit_host_script("deploy.py")
    assert not {name for name, _ in differences(base, registered({}))} & {"sirius-host", "sirius-eni", "sirius-eip"}


def test_the_same_config_registers_the_same_resources(base):
    assert differences(base, registered({})) == set()


def test_user_data_and_an_unpinned_ami_are_ignored_after_creation(base):
    assert set(base["sirius-host"].ignore_changes) == {"userData", "ami"}
    assert set(registered({"ami": "ami-0123456789abcdef0"})["sirius-host"].ignore_changes) == {"userData"}


def test_a_new_public_subnet_with_a_lower_id_does_not_move_the_host(base, monkeypatch):
    """The picked subnet is kept in state: moving the interface would replace the instance and
    delete its volume (demo data and all)."""
    from tests import pulumi_mocks

    monkeypatch.setattr(pulumi_mocks, "FAKE_SUBNETS", ["subnet-00000000000000000", *pulumi_mocks.FAKE_SUBNETS])
    moved = registered({})
    assert moved["sirius-eni"].inputs["subnetId"] == "subnet-00000000000000000"  # what a fresh stack would pick
    assert differences(base, moved) == set()  # an existing one keeps its subnet
    assert base["sirius-eni"].ignore_changes == ["subnetId"]


def test_a_subnet_set_in_the_config_is_followed():
    chosen = registered({"vpcId": "vpc-0123456789abcdef0", "subnetId": "subnet-0123456789abcdef0"})
    assert chosen["sirius-eni"].inputs["subnetId"] == "subnet-0123456789abcdef0"
    assert chosen["sirius-eni"].ignore_changes == []


def test_the_instance_waits_for_the_egress_rules_its_boot_needs(base):
    depends = {urn.rsplit("::", 1)[-1] for urn in base["sirius-host"].dependencies}
    assert {"sirius-out-ipv4", "sirius-out-ipv6", "sirius-eip"} <= depends


def test_user_data_names_the_first_deploy_yet_a_new_ref_never_touches_the_host(base):
    """user_data carries the first deploy's ref and tag, so it differs per ref; the instance
    ignores it after creation (an update would stop and start the VM): a later ref or tag is
    deployed over SSH."""
    later = registered({"ref": "v1.1.0"})
    assert base["sirius-host"].inputs["userData"] != later["sirius-host"].inputs["userData"]
    assert "userData" in later["sirius-host"].ignore_changes
    assert not {key for name, key in differences(base, later) if name == "sirius-host"} - {"tags"}
    assert base["sirius-host"].replacement_trigger == later["sirius-host"].replacement_trigger
