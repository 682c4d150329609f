"""The policy pack (policy/): every rule on crafted props, the pack's wiring through
pulumi_policy's own analyzer, and the program's resources under mocks passing it all.

`pulumi preview --policy-pack policy` needs the CLI; here the same analyzer servicer the
CLI talks to (pulumi_policy's gRPC Analyze/AnalyzeStack handlers) is fed the very
property structs the program registers, unknowns and secrets included.
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import runpy
import tarfile
from pathlib import Path

import pulumi
import pytest

pulumi_policy = pytest.importorskip("pulumi_policy")

from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer

from policy import rules
from tests.pulumi_mocks import FAKE_PRIVATE_KEY, run_stack

ROOT = Path(__file__).resolve().parent.parent
PACK_DIR = ROOT / "policy"
INSTANCE, VOLUME, LT = rules.INSTANCE, rules.VOLUME, rules.LAUNCH_TEMPLATE
SG, SG_RULE, INGRESS, EGRESS = rules.SECURITY_GROUP, rules.SECURITY_GROUP_RULE, rules.INGRESS_RULE, rules.EGRESS_RULE
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
OPEN_SSH = "ingress from {}: tcp 22 includes SSH (22), which must never be open to the internet"
ONLY = "only ports 80, 443, 3000, 9001 may be public"
NOT_ALLOWED = "instance type {!r} is not allowed; allowed: t3.medium, t3.large"
ENCRYPT = "{} is {}; EBS volumes must be encrypted"
IMDS = 'metadataOptions.httpTokens is {}; IMDSv2 must be required: set httpTokens to "required"'
HINT = "; generate secrets on the host or pass them as Pulumi secrets"
TAGS_NEEDED = "; every taggable resource needs Project, Stack"
GOOD_TAGS = {"Project": "sirius-demo", "Stack": "demo"}
GOOD_INSTANCE = {
    "instanceType": "t3.medium",
    "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
    "rootBlockDevice": {"volumeSize": 30, "volumeType": "gp3", "encrypted": True},
    "associatePublicIpAddress": True,
    "userData": "#!/bin/bash\necho hello\n",
    "tags": GOOD_TAGS,
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def targz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --- each rule, compliant and not --------------------------------------------------

CASES = [
    # IMDSv2
    ("imdsv2", rules.imdsv2_required, INSTANCE, GOOD_INSTANCE, None, []),
    ("imdsv2-optional", rules.imdsv2_required, INSTANCE, {"metadataOptions": {"httpTokens": "optional"}}, None,
     [IMDS.format("'optional'")]),
    ("imdsv2-missing", rules.imdsv2_required, INSTANCE, {"instanceType": "t3.medium"}, None,
     [IMDS.format("not set (AWS defaults to optional)")]),
    ("imdsv2-endpoint-off", rules.imdsv2_required, INSTANCE, {"metadataOptions": {"httpEndpoint": "disabled"}}, None, []),
    ("imdsv2-launch-template", rules.imdsv2_required, LT, {"metadataOptions": {"httpTokens": "optional"}}, None,
     [IMDS.format("'optional'")]),
    ("imdsv2-other-type", rules.imdsv2_required, rules.EIP, {"domain": "vpc"}, None, []),
    # encryption
    ("ebs-ok", rules.volumes_encrypted, INSTANCE,
     {**GOOD_INSTANCE, "ebsBlockDevices": [{"deviceName": "/dev/sdf", "encrypted": True}]}, None, []),
    ("ebs-no-root-device", rules.volumes_encrypted, INSTANCE, {"instanceType": "t3.medium"}, None,
     [ENCRYPT.format("rootBlockDevice.encrypted", "not set")]),
    ("ebs-root-and-attached", rules.volumes_encrypted, INSTANCE,
     {"rootBlockDevice": {"encrypted": False},
      "ebsBlockDevices": [{"deviceName": "/dev/sdf", "encrypted": False}, {"deviceName": "/dev/sdg", "encrypted": True},
                          {"volumeSize": 8}]}, None,
     [ENCRYPT.format("rootBlockDevice.encrypted", "False"), ENCRYPT.format("ebsBlockDevices[0] (/dev/sdf).encrypted", "False"),
      ENCRYPT.format("ebsBlockDevices[2].encrypted", "not set")]),
    ("ebs-volume-ok", rules.volumes_encrypted, VOLUME, {"size": 8, "encrypted": True}, None, []),
    ("ebs-volume-plain", rules.volumes_encrypted, VOLUME, {"size": 8, "encrypted": False}, None,
     [ENCRYPT.format("volume.encrypted", "False")]),
    ("ebs-volume-unset", rules.volumes_encrypted, VOLUME, {"size": 8}, None, [ENCRYPT.format("volume.encrypted", "not set")]),
    ("ebs-launch-template", rules.volumes_encrypted, LT,
     {"blockDeviceMappings": [{"deviceName": "/dev/sda1", "ebs": {"encrypted": "false"}}, {"deviceName": "/dev/sdb"}]}, None,
     [ENCRYPT.format("blockDeviceMappings[0].ebs.encrypted", "'false'")]),
    # ingress: the vpc rule resources
    ("ingress-ui", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 3000, "toPort": 3000}, None, []),
    ("ingress-api-v6", rules.no_open_ingress, INGRESS,
     {"cidrIpv6": "::/0", "ipProtocol": "tcp", "fromPort": 9001, "toPort": 9001}, None, []),
    ("ingress-http", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 80, "toPort": 80}, None, []),
    ("ingress-https-v6", rules.no_open_ingress, INGRESS,
     {"cidrIpv6": "::/0", "ipProtocol": "6", "fromPort": 443.0, "toPort": 443.0}, None, []),
    ("ingress-range-http-to-https", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 80, "toPort": 443}, None,
     [f"ingress from 0.0.0.0/0: tcp 80-443 is open; {ONLY}"]),
    ("ingress-alternate-http", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 8443, "toPort": 8443}, None,
     [f"ingress from 0.0.0.0/0: tcp 8443 is open; {ONLY}"]),
    ("ingress-https-only-configured", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 9001, "toPort": 9001}, {"publicPorts": [80, 443]},
     ["ingress from 0.0.0.0/0: tcp 9001 is open; only ports 80, 443 may be public"]),
    ("ingress-ssh-own-cidr", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "198.51.100.7/32", "ipProtocol": "tcp", "fromPort": 22, "toPort": 22}, None, []),
    ("ingress-private-db", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "10.0.0.0/8", "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432}, None, []),
    ("ingress-ssh-world", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 22, "toPort": 22}, None, [OPEN_SSH.format("0.0.0.0/0")]),
    ("ingress-ssh-world-v6", rules.no_open_ingress, INGRESS,
     {"cidrIpv6": "::/0", "ipProtocol": "6", "fromPort": 22.0, "toPort": 22.0}, None, [OPEN_SSH.format("::/0")]),
    ("ingress-range-with-ssh", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 20, "toPort": 25}, None,
     ["ingress from 0.0.0.0/0: tcp 20-25 includes SSH (22), which must never be open to the internet"]),
    ("ingress-range-ui-to-api", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 3000, "toPort": 9001}, None,
     [f"ingress from 0.0.0.0/0: tcp 3000-9001 is open; {ONLY}"]),
    ("ingress-other-port", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "udp", "fromPort": 5432, "toPort": 5432}, None,
     [f"ingress from 0.0.0.0/0: udp 5432 is open; {ONLY}"]),
    ("ingress-all-traffic", rules.no_open_ingress, INGRESS, {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "-1"}, None,
     [f"ingress from 0.0.0.0/0: all protocols and ports are open, SSH (22) included; {ONLY}"]),
    ("ingress-icmp", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "icmp", "fromPort": -1, "toPort": -1}, None,
     [f"ingress from 0.0.0.0/0: protocol icmp is open; {ONLY}"]),
    ("ingress-tcp-no-ports", rules.no_open_ingress, INGRESS, {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp"}, None,
     ["ingress from 0.0.0.0/0: tcp 0-65535 includes SSH (22), which must never be open to the internet"]),
    ("ingress-configured-ports", rules.no_open_ingress, INGRESS,
     {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 3000, "toPort": 3000}, {"publicPorts": [443]},
     ["ingress from 0.0.0.0/0: tcp 3000 is open; only ports 443 may be public"]),
    ("egress-world-ignored", rules.no_open_ingress, EGRESS, {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "-1"}, None, []),
    # ingress: inline rules and the classic rule resource
    ("sg-inline", rules.no_open_ingress, SG,
     {"ingress": [{"protocol": "tcp", "fromPort": 3000, "toPort": 3000, "cidrBlocks": ["0.0.0.0/0"]},
                  {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"], "ipv6CidrBlocks": ["::/0"]},
                  {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["203.0.113.0/24"]}],
      "egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]}, None,
     ["ingress[1] from 0.0.0.0/0: tcp 22 includes SSH (22), which must never be open to the internet",
      "ingress[1] from ::/0: tcp 22 includes SSH (22), which must never be open to the internet"]),
    ("sg-inline-all", rules.no_open_ingress, SG,
     {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]}, None,
     [f"ingress[0] from 0.0.0.0/0: all protocols and ports are open, SSH (22) included; {ONLY}"]),
    ("sg-no-ingress", rules.no_open_ingress, SG, {"description": "x", "tags": GOOD_TAGS}, None, []),
    ("sg-rule-ingress", rules.no_open_ingress, SG_RULE,
     {"type": "ingress", "protocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"]}, None,
     ["ingress from 0.0.0.0/0: tcp 0-65535 includes SSH (22), which must never be open to the internet"]),
    ("sg-rule-ingress-ui", rules.no_open_ingress, SG_RULE,
     {"type": "ingress", "protocol": "tcp", "fromPort": 9001, "toPort": 9001, "ipv6CidrBlocks": ["::/0"]}, None, []),
    ("sg-rule-egress", rules.no_open_ingress, SG_RULE,
     {"type": "egress", "protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}, None, []),
    # instance types
    ("type-medium", rules.allowed_instance_type, INSTANCE, GOOD_INSTANCE, None, []),
    ("type-large", rules.allowed_instance_type, INSTANCE, {"instanceType": "t3.large"}, None, []),
    ("type-xlarge", rules.allowed_instance_type, INSTANCE, {"instanceType": "t3.xlarge"}, None, [NOT_ALLOWED.format("t3.xlarge")]),
    ("type-configured", rules.allowed_instance_type, INSTANCE, {"instanceType": "t3.medium"},
     {"allowedInstanceTypes": ["m5.large"]}, ["instance type 't3.medium' is not allowed; allowed: m5.large"]),
    ("type-launch-template", rules.allowed_instance_type, LT, {"instanceType": "p4d.24xlarge"}, None,
     [NOT_ALLOWED.format("p4d.24xlarge")]),
    ("type-launch-template-unset", rules.allowed_instance_type, LT, {"namePrefix": "x"}, None, []),
    # secrets in user data
    ("ud-clean", rules.no_secrets_in_user_data, INSTANCE, GOOD_INSTANCE, None, []),
    ("ud-dollar-refs", rules.no_secrets_in_user_data, INSTANCE,
     {"userData": 'PASSWORD=$DB_PASSWORD\nADMIN_PASSWORD="${X}"\nEMPTY_PASSWORD=\nQ_PASSWORD=\'\'\n'
                  "url=postgresql://postgres:$pw@db:5432/x\n"}, None, []),
    ("ud-private-key", rules.no_secrets_in_user_data, INSTANCE,
     {"userData": "#!/bin/bash\ncat >/root/.ssh/id <<EOF\n" + FAKE_PRIVATE_KEY + "EOF\n"}, None,
     [f"userData contains a private key block (line 3){HINT}"]),
    ("ud-rsa-key", rules.no_secrets_in_user_data, INSTANCE,
     {"userData": "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"}, None,
     [f"userData contains a private key block (line 1){HINT}"]),
    ("ud-access-keys", rules.no_secrets_in_user_data, INSTANCE,
     {"userData": "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nexport X=ASIAIOSFODNN7EXAMPLE\n"}, None,
     [f"userData contains an AWS access key id (line 1){HINT}", f"userData contains an AWS access key id (line 2){HINT}"]),
    ("ud-literal-password", rules.no_secrets_in_user_data, INSTANCE,
     {"userData": "#!/bin/sh\nDB_PASSWORD=hunter2 ./run\n"}, None,
     [f"userData contains a literal password assignment (line 2){HINT}"]),
    ("ud-quoted-literal-password", rules.no_secrets_in_user_data, INSTANCE,
     {"userData": "x\ny\nmysql --password='s3cr3t'\n"}, None,
     [f"userData contains a literal password assignment (line 3){HINT}"]),
    ("ud-url-password", rules.no_secrets_in_user_data, INSTANCE,
     {"userData": "DATABASE_URL=postgresql://postgres:hunter2@db:5432/x\n"}, None,
     [f"userData contains a password in a URL (line 1){HINT}"]),
    ("ud-base64", rules.no_secrets_in_user_data, INSTANCE,
     {"userDataBase64": b64(b"#!/bin/bash\nPASSWORD=hunter2\n")}, None,
     [f"userDataBase64 contains a literal password assignment (line 2){HINT}"]),
    ("ud-base64-gzip", rules.no_secrets_in_user_data, INSTANCE,
     {"userDataBase64": b64(gzip.compress(b"#!/bin/bash\nKEY=AKIAIOSFODNN7EXAMPLE\n"))}, None,
     [f"userDataBase64 contains an AWS access key id (line 2){HINT}"]),
    ("ud-base64-clean", rules.no_secrets_in_user_data, INSTANCE, {"userDataBase64": b64(b"#!/bin/bash\necho hi\n")}, None, []),
    ("ud-embedded-archive", rules.no_secrets_in_user_data, INSTANCE,
     {"userData": "#!/bin/bash\nbase64 -d <<'X' | tar -xzf -\n"
                  + "\n".join(b64(targz({"run.sh": "echo\nKEY=AKIAIOSFODNN7EXAMPLE\n", "ok.sh": "echo ok\n"}))[i:i + 76]
                              for i in range(0, 4000, 76)).rstrip("\n") + "\nX\n"}, None,
     [f"userData, embedded base64, archive member run.sh contains an AWS access key id (line 2){HINT}"]),
    ("ud-launch-template", rules.no_secrets_in_user_data, LT, {"userData": b64(FAKE_PRIVATE_KEY.encode())}, None,
     [f"userData (base64) contains a private key block (line 1){HINT}"]),
    ("ud-spot-request-clean", rules.no_secrets_in_user_data, "aws:ec2/spotInstanceRequest:SpotInstanceRequest",
     {"userData": "#!/bin/bash\necho hi\n"}, None, []),
    ("ud-spot-request", rules.no_secrets_in_user_data, "aws:ec2/spotInstanceRequest:SpotInstanceRequest",
     {"userData": "DB_PASSWORD=hunter2\n"}, None, [f"userData contains a literal password assignment (line 1){HINT}"]),
    ("ud-other-type", rules.no_secrets_in_user_data, VOLUME, {"userData": FAKE_PRIVATE_KEY}, None, []),
    # tags
    ("tags-ok", rules.required_tags, INSTANCE, GOOD_INSTANCE, None, []),
    ("tags-none", rules.required_tags, rules.EIP, {"domain": "vpc"}, None, ["missing tags Project, Stack" + TAGS_NEEDED]),
    ("tags-one-missing", rules.required_tags, INGRESS, {"tags": {"Project": "sirius-demo"}}, None,
     ["missing tag Stack" + TAGS_NEEDED]),
    ("tags-empty-value", rules.required_tags, "aws:ec2/keyPair:KeyPair", {"tags": {"Project": "p", "Stack": " "}}, None,
     ["missing tag Stack" + TAGS_NEEDED]),
    ("tags-unlisted-type", rules.required_tags, "aws:s3/bucket:Bucket", {"tags": {}}, None,
     ["missing tags Project, Stack" + TAGS_NEEDED]),
    ("tags-untaggable", rules.required_tags, rules.EIP_ASSOCIATION, {"instanceId": "i-1"}, None, []),
    ("tags-configured", rules.required_tags, VOLUME, {"tags": GOOD_TAGS}, {"requiredTags": ["Owner"]},
     ["missing tag Owner; every taggable resource needs Owner"]),
    # volume size (advisory)
    ("size-30", rules.volume_size, INSTANCE, GOOD_INSTANCE, None, []),
    ("size-root-40", rules.volume_size, INSTANCE, {"rootBlockDevice": {"volumeSize": 40.0},
                                                   "ebsBlockDevices": [{"volumeSize": 20}, {"volumeSize": 100}]}, None,
     ["rootBlockDevice.volumeSize is 40 GiB, over the 30 GiB the demo needs",
      "ebsBlockDevices[1].volumeSize is 100 GiB, over the 30 GiB the demo needs"]),
    ("size-volume", rules.volume_size, VOLUME, {"size": 31}, None, ["size is 31 GiB, over the 30 GiB the demo needs"]),
    ("size-configured", rules.volume_size, VOLUME, {"size": 31}, {"maxVolumeGib": 50}, []),
    ("size-launch-template", rules.volume_size, LT, {"blockDeviceMappings": [{"ebs": {"volumeSize": 64}}]}, None,
     ["blockDeviceMappings[0].ebs.volumeSize is 64 GiB, over the 30 GiB the demo needs"]),
]


@pytest.mark.parametrize(("rule", "type_", "props", "config", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(rule, type_, props, config, expected):
    assert rule(type_, props, config) == expected


def test_messages_never_quote_the_secret():
    for _, rule, type_, props, config, _expected in CASES:
        if rule is rules.no_secrets_in_user_data:
            text = " ".join(rule(type_, props, config))
            for secret in ("hunter2", "s3cr3t", "AKIAIOSFODNN7EXAMPLE", "ZmFrZS1rZXktZm9yLXRlc3Rz", "MIIB"):
                assert secret not in text


def test_a_bad_instance_reports_exactly_its_violations():
    bad = {"instanceType": "m5.24xlarge", "metadataOptions": {"httpTokens": "optional"},
           "rootBlockDevice": {"volumeSize": 500, "encrypted": False}, "userData": "PASSWORD=hunter2\n",
           "tags": {"Project": "sirius-demo"}}
    assert rules.check_all(INSTANCE, bad) == {
        "imdsv2-required": [IMDS.format("'optional'")],
        "ebs-encrypted": [ENCRYPT.format("rootBlockDevice.encrypted", "False")],
        "allowed-instance-types": [NOT_ALLOWED.format("m5.24xlarge")],
        "no-secrets-in-user-data": [f"userData contains a literal password assignment (line 1){HINT}"],
        "required-tags": ["missing tag Stack" + TAGS_NEEDED],
        "volume-size": ["rootBlockDevice.volumeSize is 500 GiB, over the 30 GiB the demo needs"],
    }
    assert rules.check_all(INSTANCE, GOOD_INSTANCE) == {}


def test_check_all_takes_config_per_rule():
    config = {"allowed-instance-types": {"allowedInstanceTypes": ["t3.medium"]}}
    assert rules.check_all(INSTANCE, {**GOOD_INSTANCE, "instanceType": "t3.large"}, config) == {
        "allowed-instance-types": ["instance type 't3.large' is not allowed; allowed: t3.medium"]}


STACK_INSTANCE = rules.StackResource(INSTANCE, "urn:pulumi:demo::sirius-demo::aws:ec2/instance:Instance::host",
                                     {"associatePublicIpAddress": True})


@pytest.mark.parametrize(
    ("resources", "flagged"),
    [
        ([STACK_INSTANCE], True),
        ([STACK_INSTANCE, rules.StackResource(rules.EIP_ASSOCIATION, "urn:a", {"instanceId": UNKNOWN})], False),
        ([STACK_INSTANCE, rules.StackResource(rules.EIP, "urn:e", {"instance": "i-0123"})], False),
        ([STACK_INSTANCE, rules.StackResource(rules.EIP, "urn:e", {"domain": "vpc"})], True),
        ([rules.StackResource(INSTANCE, "urn:i", {"associatePublicIpAddress": False})], False),
    ],
)
def test_public_ip_without_elastic_ip_is_advised(resources, flagged):
    found = rules.public_ip_has_elastic_ip(resources)
    if flagged:
        message = ("associatePublicIpAddress is true but the stack has no Elastic IP for it "
                   "(aws:ec2/eipAssociation:EipAssociation); its address changes on every stop/start")
        assert found == [(message, STACK_INSTANCE.urn)]
    else:
        assert found == []


# --- unknown values (pulumi preview) ---------------------------------------------

UNKNOWN_PROPS = [
    (INSTANCE, {"metadataOptions": UNKNOWN, "rootBlockDevice": UNKNOWN, "ebsBlockDevices": UNKNOWN, "userData": UNKNOWN,
                "userDataBase64": UNKNOWN, "instanceType": UNKNOWN, "tags": UNKNOWN}),
    (INSTANCE, {"metadataOptions": {"httpTokens": UNKNOWN}, "rootBlockDevice": {"encrypted": UNKNOWN, "volumeSize": UNKNOWN},
                "ebsBlockDevices": [UNKNOWN, {"encrypted": UNKNOWN}], "instanceType": "t3.medium",
                "tags": {"Project": UNKNOWN, "Stack": "demo"}}),
    (INSTANCE, {"metadataOptions": {"httpTokens": pulumi.output.Unknown()}, "userData": pulumi.output.Unknown(),
                "rootBlockDevice": {"encrypted": True}, "tags": {"Project": "p", "Stack": pulumi.output.Unknown()}}),
    (INGRESS, {"cidrIpv4": UNKNOWN, "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "tags": GOOD_TAGS}),
    (INGRESS, {"cidrIpv4": "0.0.0.0/0", "ipProtocol": UNKNOWN, "fromPort": UNKNOWN, "toPort": 22, "tags": GOOD_TAGS}),
    (SG, {"ingress": UNKNOWN, "tags": GOOD_TAGS}),
    (SG, {"ingress": [UNKNOWN, {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": UNKNOWN}], "tags": GOOD_TAGS}),
    (SG_RULE, {"type": UNKNOWN, "cidrBlocks": ["0.0.0.0/0"], "protocol": "-1"}),
    (VOLUME, {"encrypted": UNKNOWN, "size": UNKNOWN, "tags": GOOD_TAGS}),
    (LT, {"metadataOptions": UNKNOWN, "blockDeviceMappings": UNKNOWN, "userData": UNKNOWN, "tags": GOOD_TAGS}),
]


@pytest.mark.parametrize(("type_", "props"), UNKNOWN_PROPS)
def test_unknown_values_are_skipped_not_fatal(type_, props):
    assert rules.check_all(type_, props) == {}


GARBLED = {"metadataOptions": None, "rootBlockDevice": "x", "ebsBlockDevices": "y", "ingress": 5, "tags": None}


@pytest.mark.parametrize("type_", [INSTANCE, VOLUME, LT, SG, INGRESS])
def test_garbled_shapes_fail_closed_like_missing_ones(type_):
    """A value of the wrong shape counts as not set: the mandatory rules still report it."""
    assert rules.check_all(type_, GARBLED) == rules.check_all(type_, {})
    assert "required-tags" in rules.check_all(type_, GARBLED)
    if type_ == INSTANCE:
        assert {"imdsv2-required", "ebs-encrypted"} <= set(rules.check_all(type_, GARBLED))


# --- the pack, through pulumi_policy's analyzer ----------------------------------------


def load_pack():
    namespace = runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="sirius_policy_pack")
    return namespace


@pytest.fixture(scope="module")
def pack():
    return load_pack()


def analyzer(pack, policy_config: dict | None = None) -> _PolicyAnalyzerServicer:
    servicer = _PolicyAnalyzerServicer(pack["PACK_NAME"], "0.1.0", pack["build_policies"](), EnforcementLevel.MANDATORY)
    if policy_config:
        request = proto.ConfigureAnalyzerRequest()
        for name, (level, properties) in policy_config.items():
            entry = proto.PolicyConfig(enforcementLevel=level)
            entry.properties.update(properties)
            request.policyConfig[name].CopyFrom(entry)
        servicer.Configure(request, None)
    return servicer


def struct(raw: dict) -> struct_pb2.Struct:
    return json_format.ParseDict(raw, struct_pb2.Struct())


def analyze(servicer, type_: str, raw: dict, name: str = "r") -> list[tuple[str, int, str]]:
    urn = f"urn:pulumi:demo::sirius-demo::{type_}::{name}"
    response = servicer.Analyze(proto.AnalyzeRequest(type=type_, properties=struct(raw), urn=urn, name=name), None)
    return [(d.policyName, d.enforcementLevel, d.message) for d in response.diagnostics]


def analyze_stack(servicer, resources) -> list[tuple[str, int, str, str]]:
    request = proto.AnalyzeStackRequest(resources=[
        proto.AnalyzerResource(type=r.type, properties=struct(r.raw), urn=r.urn, name=r.name) for r in resources
    ])
    response = servicer.AnalyzeStack(request, None)
    return [(d.policyName, d.enforcementLevel, d.message, d.urn) for d in response.diagnostics]


def test_pack_project_file_and_requirements():
    import yaml

    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    requirements = (PACK_DIR / "requirements.txt").read_text()
    assert "pulumi-policy>=" in requirements


def test_pack_wires_every_rule(pack):
    policies = pack["build_policies"]()
    by_name = {p.name: p for p in policies}
    assert list(by_name) == [r.name for r in rules.RESOURCE_RULES] + [rules.STACK_RULE_NAME]
    for rule in rules.RESOURCE_RULES:
        policy = by_name[rule.name]
        assert isinstance(policy, pulumi_policy.ResourceValidationPolicy)
        assert policy.enforcement_level == (EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY)
        assert (policy.config_schema.properties if policy.config_schema else {}) == dict(rule.config)
    assert by_name["volume-size"].enforcement_level == EnforcementLevel.ADVISORY
    assert isinstance(by_name[rules.STACK_RULE_NAME], pulumi_policy.StackValidationPolicy)
    assert by_name[rules.STACK_RULE_NAME].enforcement_level == EnforcementLevel.ADVISORY
    info = analyzer(pack).GetAnalyzerInfo(None, None)
    assert info.name == "sirius-demo-guardrails" and len(info.policies) == len(policies)


def test_analyzer_reports_mandatory_and_advisory_violations(pack):
    servicer = analyzer(pack)
    bad = {"instanceType": "t3.2xlarge", "metadataOptions": {"httpTokens": "optional"},
           "rootBlockDevice": {"volumeSize": 64, "encrypted": False}, "tags": GOOD_TAGS,
           "userData": "#!/bin/bash\n" + FAKE_PRIVATE_KEY}
    found = analyze(servicer, INSTANCE, bad)
    assert sorted((name, level) for name, level, _ in found) == sorted([
        ("imdsv2-required", proto.MANDATORY), ("ebs-encrypted", proto.MANDATORY),
        ("allowed-instance-types", proto.MANDATORY), ("no-secrets-in-user-data", proto.MANDATORY),
        ("volume-size", proto.ADVISORY),
    ])
    messages = {name: message for name, _, message in found}
    assert messages["allowed-instance-types"].endswith(NOT_ALLOWED.format("t3.2xlarge"))
    assert "ZmFrZS1rZXktZm9yLXRlc3Rz" not in " ".join(messages.values())
    open_ssh = {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "tags": GOOD_TAGS}
    assert [(n, lvl) for n, lvl, _ in analyze(servicer, INGRESS, open_ssh)] == [
        ("no-public-ingress-except-ui-api", proto.MANDATORY)]


def test_analyzer_takes_policy_config(pack):
    servicer = analyzer(pack, {
        "allowed-instance-types": (proto.MANDATORY, {"allowedInstanceTypes": ["t3.small"]}),
        "volume-size": (proto.DISABLED, {}),
        "no-public-ingress-except-ui-api": (proto.MANDATORY, {"publicPorts": [443]}),  # numbers arrive as floats
    })
    found = analyze(servicer, INSTANCE, {**GOOD_INSTANCE, "rootBlockDevice": {"volumeSize": 64, "encrypted": True}})
    assert [(name, lvl) for name, lvl, _ in found] == [("allowed-instance-types", proto.MANDATORY)]
    assert found[0][2].endswith("instance type 't3.medium' is not allowed; allowed: t3.small")
    https = {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "tags": GOOD_TAGS}
    assert analyze(servicer, INGRESS, https) == []
    ui = analyze(servicer, INGRESS, {**https, "fromPort": 3000, "toPort": 3000})
    assert [m.split("\n")[-1] for _, _, m in ui] == ["ingress from 0.0.0.0/0: tcp 3000 is open; only ports 443 may be public"]


def test_analyzer_does_not_trip_on_unknowns_or_secrets(pack):
    servicer = analyzer(pack)
    raw = {**GOOD_INSTANCE, "userData": UNKNOWN, "metadataOptions": {"httpTokens": UNKNOWN}, "keyName": UNKNOWN,
           "tags": {**GOOD_TAGS, "Name": {**SECRET_SIG, "value": "secret-name"}}}
    assert analyze(servicer, INSTANCE, raw) == []


# --- the program's own resources pass the whole pack ------------------------------------

OWN_KEY = {"sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake me@laptop", "sshPrivateKey": FAKE_PRIVATE_KEY}
PROGRAM_STACKS = {
    "demo": ({"ref": "main"}, False, ()),
    "release": ({"ref": "v1.1.0", "sshCidrs": "198.51.100.7/32"}, False, ()),
    "pr-42": ({"ref": "pr-42", "expiresAt": "2026-12-01T02:00:00Z"}, False, ()),
    "explicit-tag": ({"ref": "feature/scan-ui", "imageTag": "pr-9-amd64"}, False, ()),
    "own-key": ({**OWN_KEY, "sshCidrs": "198.51.100.7/32,2001:db8::1/128", "publicCidrs": '["0.0.0.0/0", "::/0"]'},
                False, ("sshPrivateKey",)),
    "existing-key": ({"keyName": "team-key", "sshPrivateKey": FAKE_PRIVATE_KEY, "instanceType": "t3.large"},
                     False, ("sshPrivateKey",)),
    "preview": ({"ref": "v1.1.0"}, True, ()),
    "preview-pr": ({"ref": "pr-42", **OWN_KEY}, True, ("sshPrivateKey",)),
    "https": ({"domain": "demo.example.com", "publicCidrs": "0.0.0.0/0,::/0", "acmeEmail": "ops@example.com"},
              False, ()),
    "pr-7": ({"ref": "pr-7", "domainSuffix": "demos.example.com", "acmeCa": "staging",
              "hostedZoneId": "Z0123456789ABCDEFGHIJ"}, False, ()),
    "preview-https": ({"domain": "demo.example.com"}, True, ()),
}


@pytest.fixture(scope="module")
def program_runs(ip_echo):
    return {
        name: run_stack(config, stack=name, preview=preview, secret_keys=secret, ip_lookup_url=ip_echo)
        for name, (config, preview, secret) in PROGRAM_STACKS.items()
    }


@pytest.mark.parametrize("stack", PROGRAM_STACKS)
def test_program_resources_pass_every_rule(program_runs, stack):
    run = program_runs[stack]
    assert run.resources
    for resource in run.resources:
        assert rules.check_all(resource.type, resource.inputs) == {}, resource.name
    stack_resources = [rules.StackResource(r.type, r.urn, rules.plain(r.inputs)) for r in run.resources]
    assert rules.public_ip_has_elastic_ip(stack_resources) == []


@pytest.mark.parametrize("stack", PROGRAM_STACKS)
def test_program_resources_pass_the_pack_through_the_analyzer(pack, program_runs, stack):
    servicer = analyzer(pack)
    run = program_runs[stack]
    for resource in run.resources:
        assert analyze(servicer, resource.type, resource.raw, resource.name) == [], resource.name
    assert analyze_stack(servicer, run.resources) == []


def test_the_public_ports_are_the_engines():
    """The pack runs on its own (no engine/ next to it), so its default list is a copy: of
    exactly the ports the program can open to the world, with a domain and without."""
    from engine import rules as engine_rules

    expected = {engine_rules.HTTP_PORT, engine_rules.HTTPS_PORT, engine_rules.UI_PORT, engine_rules.API_PORT}
    assert sorted(rules.DEFAULTS["publicPorts"]) == sorted(expected)


def test_https_stacks_open_only_http_and_https_to_the_world(program_runs):
    """Not vacuous: the HTTPS stacks really open 80 and 443 to /0, and the pack accepts them."""
    for stack in ("https", "pr-7"):
        world = {(r.inputs["fromPort"], r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6"))
                 for r in program_runs[stack].of_type(INGRESS) if r.inputs["fromPort"] != 22}
        assert {port for port, _ in world} == {80, 443} and "0.0.0.0/0" in {cidr for _, cidr in world}


def test_the_rules_really_look_at_the_program(program_runs):
    """Not vacuous: the user data was scanned (archive members included) and every
    taggable resource was checked, in a run where the address is known."""
    run = program_runs["demo"]
    instance = run.one(INSTANCE)
    where = [w for w, _ in rules.user_data_findings(INSTANCE, rules.plain(instance.inputs))]
    assert "userData" in where and any("archive member engine/install.py" in w for w in where)
    checked = [r for r in run.resources if r.type in rules.TAGGABLE_TYPES]
    assert {r.type for r in checked} >= {INSTANCE, rules.EIP, SG, INGRESS, EGRESS, "aws:ec2/keyPair:KeyPair"}
    # What the program would look like with the guardrails broken, per rule:
    assert rules.check_all(INSTANCE, {**instance.inputs, "metadataOptions": {"httpTokens": "optional"}}) == {
        "imdsv2-required": [IMDS.format("'optional'")]}
    assert "required-tags" in rules.check_all(INSTANCE, {**instance.inputs, "tags": {"Name": "x"}})


@pytest.mark.parametrize(
    ("config", "rule", "secret"),
    [
        ({"sshCidrs": "0.0.0.0/0", "allowOpenSsh": "true"}, "no-public-ingress-except-ui-api", ()),
        ({"sshCidrs": "::/0", "allowOpenSsh": "true"}, "no-public-ingress-except-ui-api", ()),
        ({"instanceType": "m5.xlarge", "sshCidrs": "198.51.100.7/32"}, "allowed-instance-types", ()),
        ({"volumeSize": "64", "sshCidrs": "198.51.100.7/32"}, "volume-size", ()),
    ],
)
def test_the_pack_catches_what_the_config_still_allows(config, rule, secret):
    run = run_stack(config, secret_keys=secret)
    flagged = {name for r in run.resources for name in rules.check_all(r.type, r.inputs)}
    assert flagged == {rule}


# --- the pack as the CLI starts it: a process serving the analyzer over gRPC ------------------


@pytest.fixture(scope="module")
def pack_process():
    """`python -m pulumi.policy <engine> policy`, what `pulumi preview --policy-pack policy` spawns
    (the pack prints its port, then serves); stopped by its own pid."""
    import subprocess
    import sys

    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    # pulumi_policy writes the port without a flush: unbuffered, as the CLI runs it, or it never
    # reaches the pipe (a shell with PYTHONUNBUFFERED set hides that).
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "pulumi.policy", "127.0.0.1:1", str(PACK_DIR)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read() if process.poll() is not None else port
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_the_pack_process_serves_the_policies(pack_process, program_runs):
    from google.protobuf import empty_pb2

    info = pack_process.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "sirius-demo-guardrails"
    assert [p.name for p in info.policies] == [r.name for r in rules.RESOURCE_RULES] + [rules.STACK_RULE_NAME]
    for stack in ("demo", "preview"):
        for resource in program_runs[stack].resources:
            request = proto.AnalyzeRequest(type=resource.type, properties=struct(resource.raw), urn=resource.urn,
                                           name=resource.name)
            assert list(pack_process.Analyze(request).diagnostics) == [], (stack, resource.name)
    bad = {"cidrIpv6": "::/0", "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "tags": GOOD_TAGS}
    response = pack_process.Analyze(proto.AnalyzeRequest(type=INGRESS, properties=struct(bad), urn="urn:x", name="x"))
    assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
        ("no-public-ingress-except-ui-api", proto.MANDATORY)]


# Filler bytes (incompressible) that make the wrapped base64 end on a full 76-character line
# without padding, and on a short line with '==' padding: the two shapes of a last line.
LAST_LINES = {"full-line": 49, "short-padded-line": 1}


@pytest.mark.parametrize("filler", LAST_LINES.values(), ids=list(LAST_LINES))
def test_an_embedded_archive_is_read_whatever_its_last_line(filler):
    import base64
    import gzip
    import hashlib
    import textwrap

    secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    noise = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(8))[:filler]
    encoded = base64.b64encode(gzip.compress(secret.encode() + noise, mtime=0)).decode()
    lines = textwrap.wrap(encoded, 76)
    assert (len(lines[-1]) == 76 and not encoded.endswith("=")) if filler == 49 else encoded.endswith("==")
    user_data = "#!/bin/bash\nbase64 -d <<'HOST_SCRIPTS' | tar -xzf -\n" + "\n".join(lines) + "\nHOST_SCRIPTS\n"
    found = rules.no_secrets_in_user_data("aws:ec2/instance:Instance", {"userData": user_data})
    assert found and "private key" in found[0].lower()
