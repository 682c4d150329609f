"""docs/iam-policy.json grants what the program's resources and look-ups need, and no more.

The program runs under the SDK mocks for stacks that between them register every resource
type and make every look-up it can; each AWS type must be in NEEDS (a new one fails here
until the policy covers it), and the policy's actions are exactly what they need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.pulumi_mocks import FAKE_PRIVATE_KEY, run_stack

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "docs" / "iam-policy.json"
SSH = {"sshCidrs": "198.51.100.7/32"}

# What the AWS provider calls for each resource type (create, read, update, delete, tags) and
# each look-up (invoke), and what it calls whenever it starts.
PROVIDER = {"sts:GetCallerIdentity"}
NEEDS: dict[str, set[str]] = {
    "aws:ec2/instance:Instance": {
        "ec2:RunInstances", "ec2:DescribeInstances", "ec2:DescribeInstanceAttribute",
        "ec2:DescribeInstanceCreditSpecifications", "ec2:DescribeVolumes", "ec2:DescribeInstanceTypes",
        "ec2:ModifyInstanceAttribute", "ec2:ModifyInstanceMetadataOptions", "ec2:StopInstances",
        "ec2:StartInstances", "ec2:TerminateInstances", "ec2:CreateTags", "ec2:DeleteTags", "ec2:DescribeTags"},
    "aws:ec2/networkInterface:NetworkInterface": {
        "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:DeleteNetworkInterface", "ec2:CreateTags", "ec2:DeleteTags"},
    "aws:ec2/eip:Eip": {
        "ec2:AllocateAddress", "ec2:DescribeAddresses", "ec2:DescribeAddressesAttribute", "ec2:AssociateAddress",
        "ec2:DisassociateAddress", "ec2:ReleaseAddress", "ec2:CreateTags", "ec2:DeleteTags"},
    "aws:ec2/keyPair:KeyPair": {"ec2:ImportKeyPair", "ec2:DescribeKeyPairs", "ec2:DeleteKeyPair", "ec2:CreateTags",
                                "ec2:DeleteTags"},
    "aws:ec2/securityGroup:SecurityGroup": {
        "ec2:CreateSecurityGroup", "ec2:DescribeSecurityGroups", "ec2:DeleteSecurityGroup",
        "ec2:RevokeSecurityGroupEgress",  # the provider removes AWS's default egress rule
        "ec2:CreateTags", "ec2:DeleteTags"},
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {
        "ec2:AuthorizeSecurityGroupIngress", "ec2:DescribeSecurityGroupRules", "ec2:ModifySecurityGroupRules",
        "ec2:RevokeSecurityGroupIngress", "ec2:CreateTags", "ec2:DeleteTags"},
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": {
        "ec2:AuthorizeSecurityGroupEgress", "ec2:DescribeSecurityGroupRules", "ec2:ModifySecurityGroupRules",
        "ec2:RevokeSecurityGroupEgress", "ec2:CreateTags", "ec2:DeleteTags"},
    "aws:route53/record:Record": {"route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets",
                                  "route53:GetChange", "route53:GetHostedZone"},
    # look-ups
    "aws:ec2/getAmi:getAmi": {"ec2:DescribeImages"},
    "aws:ec2/getVpc:getVpc": {"ec2:DescribeVpcs"},
    "aws:ec2/getSubnets:getSubnets": {"ec2:DescribeSubnets"},
    "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": {"ec2:DescribeInstanceTypeOfferings"},
    "aws:ec2/getInstanceType:getInstanceType": {"ec2:DescribeInstanceTypes"},
    "aws:route53/getZone:getZone": {"route53:ListHostedZones", "route53:GetHostedZone",
                                    "route53:ListTagsForResource"},
}
STATE_BUCKET = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"}
STACKS = [
    ({**SSH}, ()),
    ({**SSH, "domain": "demo.example.com"}, ()),
    ({**SSH, "domainSuffix": "demos.example.com", "acmeCa": "staging"}, ()),
    ({**SSH, "keyName": "team-key", "sshPrivateKey": FAKE_PRIVATE_KEY}, ("sshPrivateKey",)),
    ({**SSH, "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake me@laptop", "sshPrivateKey": FAKE_PRIVATE_KEY},
     ("sshPrivateKey",)),
    ({**SSH, "vpcId": "vpc-0123456789abcdef0", "subnetId": "subnet-0123456789abcdef0", "ami": "ami-0123456789abcdef0"},
     ()),
    ({**SSH, "instanceType": "m5zn.large", "preflight": "true"}, ()),  # the instance type look-up
]


@pytest.fixture(scope="module")
def used() -> set[str]:
    """Every AWS resource type and look-up the program registers, over the stacks above."""
    from infra import preflight

    found: set[str] = set()
    original = preflight.run
    preflight.run = lambda settings: preflight.Pins({})  # the registry preflight is not AWS; it would go to the network
    try:
        for config, secret in STACKS:
            run = run_stack(config, secret_keys=secret)
            found |= {r.type for r in run.resources if r.type.startswith("aws:")}
            found |= {token for token in run.invokes if token.startswith("aws:")}
    finally:
        preflight.run = original
    return found


def granted() -> dict[str, set[str]]:
    statements = json.loads(POLICY.read_text())["Statement"]
    by_sid = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        by_sid[statement["Sid"]] = set([actions] if isinstance(actions, str) else actions)
    return by_sid


def test_every_aws_type_and_look_up_the_program_uses_is_accounted_for(used):
    assert "aws:ec2/instance:Instance" in used and "aws:route53/getZone:getZone" in used
    assert "aws:ec2/getInstanceType:getInstanceType" in used
    assert used <= set(NEEDS), f"add to NEEDS and to docs/iam-policy.json: {sorted(used - set(NEEDS))}"


def test_the_policy_grants_what_the_program_needs(used):
    actions = set().union(*granted().values())
    needed = PROVIDER.union(*(NEEDS[item] for item in used))
    assert needed <= actions, f"docs/iam-policy.json lacks {sorted(needed - actions)}"


def test_the_policy_grants_nothing_else(used):
    by_sid = granted()
    assert by_sid.pop("StateBucket") == STATE_BUCKET
    actions = set().union(*by_sid.values())
    needed = PROVIDER.union(*(NEEDS[item] for item in used))
    assert actions <= needed, f"docs/iam-policy.json grants what nothing needs: {sorted(actions - needed)}"
    assert not any("*" in action for action in actions)


def test_changes_and_deletions_are_limited_to_the_demos_resources():
    statements = {s["Sid"]: s for s in json.loads(POLICY.read_text())["Statement"]}
    scoped = statements["ChangeAndDeleteOnlyTheDemos"]
    assert scoped["Condition"] == {"StringEquals": {"aws:ResourceTag/Project": "sirius-demo"}}
    from infra.demo import PROJECT_TAG

    assert PROJECT_TAG == "sirius-demo"
    destructive = {a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
                   if a.startswith("ec2:") and a.split(":")[1].startswith(("Delete", "Terminate", "Release", "Revoke",
                                                                           "Modify", "Stop", "Disassociate"))}
    assert destructive <= set(scoped["Action"]), sorted(destructive - set(scoped["Action"]))
