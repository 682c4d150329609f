"""__main__.py under the SDK's mocks, per stack configuration: what preview would see."""

from __future__ import annotations

import base64
import io
import re
import shlex
import zipfile

import pulumi
import pytest

from tests.conftest import FAKE_PUBLIC_IP
from tests.pulumi_mocks import FAKE_IP, FAKE_ZONE_ID, ROOT, run_stack

SSH_ONLY = {"sshCidrs": "198.51.100.7/32"}
INSTANCE = "aws:ec2/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAfakekey\n-----END OPENSSH PRIVATE KEY-----\n"
TAGGABLE = {
    "aws:ec2/instance:Instance",
    "aws:ec2/eip:Eip",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/keyPair:KeyPair",
    "aws:ec2/networkInterface:NetworkInterface",
    INGRESS,
    EGRESS,
}

STACKS = {
    "demo": {},
    "release": {"ref": "v1.1.0"},
    "pull-request": {"ref": "pr-42"},
    "explicit-tag": {"ref": "feature/scan-ui", "imageTag": "pr-9-amd64"},
}


def deploy_command(run) -> list[str]:
    """The engine's deploy as the remote command runs it (sudo python3 engine.pyz deploy ...)."""
    [deploy] = [r for r in run.of_type("command:remote:Command") if r.name.endswith("-deploy")]
    argv = shlex.split(deploy.inputs["create"])
    assert argv[:4] == ["sudo", "python3", "/opt/sirius-demo/engine.pyz", "deploy"]
    return argv


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.fixture(scope="module")
def runs(ip_echo):
    return {name: run_stack(cfg, stack=name, ip_lookup_url=ip_echo) for name, cfg in STACKS.items()}


@pytest.mark.parametrize("stack", STACKS)
def test_instance_shape(runs, stack):
    instance = runs[stack].one(INSTANCE).inputs
    assert instance["instanceType"] == "t3.medium"
    root = instance["rootBlockDevice"]
    assert (root["volumeSize"], root["volumeType"], root["encrypted"], root["deleteOnTermination"]) == (30, "gp3", True, True)
    assert instance["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}
    assert instance["ami"] == "ami-0fedcba9876543210"


ENI = "aws:ec2/networkInterface:NetworkInterface"
EIP = "aws:ec2/eip:Eip"


@pytest.mark.parametrize("stack", STACKS)
def test_the_host_boots_with_its_elastic_ip(runs, stack):
    """The address never changes under a booting host: the Elastic IP sits on a network
    interface that exists, in the chosen subnet and security group, before the instance
    does, and the instance boots on it (no temporary public IP, no association later)."""
    run = runs[stack]
    interface, eip, host = run.one(ENI), run.one(EIP), run.one(INSTANCE)
    assert interface.inputs["subnetId"] == "subnet-0aaaaaaaaaaaaaaa1"
    assert interface.inputs["securityGroups"] == [run.one("aws:ec2/securityGroup:SecurityGroup").name + "-id"]
    assert eip.inputs["networkInterface"] == interface.name + "-id"
    assert host.inputs["primaryNetworkInterface"] == {"networkInterfaceId": interface.name + "-id"}
    assert not run.of_type("aws:ec2/eipAssociation:EipAssociation")
    assert not {"associatePublicIpAddress", "subnetId", "vpcSecurityGroupIds"} & set(host.inputs)
    assert any(urn.endswith(f"$aws:ec2/eip:Eip::{eip.name}") for urn in host.dependencies)  # associated first
    assert host.delete_before_replace  # the interface is the old instance's until it is gone


@pytest.mark.parametrize(
    ("stack", "ref", "tag"),
    [("demo", "main", "latest"), ("release", "v1.1.0", "v1.1.0"), ("pull-request", "pr-42", "pr-42-amd64"),
     ("explicit-tag", "feature/scan-ui", "pr-9-amd64")],
)
def test_tags_and_outputs_carry_ref_and_image_tag(runs, stack, ref, tag):
    run = runs[stack]
    instance = run.one(INSTANCE)
    assert instance.tags["Ref"] == ref and instance.tags["ImageTag"] == tag
    assert instance.tags["Name"] == f"sirius-demo-{stack}"
    assert {instance.tags[k] for k in ("Project", "Stack", "ManagedBy")} == {"sirius-demo", stack, "pulumi"}
    assert run.outputs["imageTag"] == tag and run.outputs["ref"] == ref
    argv = deploy_command(run)
    assert flag(argv, "--tag") == tag and flag(argv, "--ref") == ref
    assert flag(argv, "--public-host") == FAKE_IP
    assert (flag(argv, "--health-timeout"), flag(argv, "--build-timeout")) == ("600", "3600")


def test_pull_request_fetches_the_pull_ref(runs):
    argv = deploy_command(runs["pull-request"])
    assert flag(argv, "--git-ref") == "refs/pull/42/head"


def test_exact_firewall(runs):
    run = runs["demo"]
    rules = {(r.inputs["fromPort"], r.inputs["toPort"], r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6"), r.inputs["ipProtocol"])
             for r in run.of_type(INGRESS)}
    assert rules == {(3000, 3000, "0.0.0.0/0", "tcp"), (9001, 9001, "0.0.0.0/0", "tcp"), (22, 22, f"{FAKE_PUBLIC_IP}/32", "tcp")}
    egress = {(r.inputs["ipProtocol"], r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6")) for r in run.of_type(EGRESS)}
    assert egress == {("-1", "0.0.0.0/0"), ("-1", "::/0")}
    group = run.one("aws:ec2/securityGroup:SecurityGroup").inputs
    assert "ingress" not in group and "egress" not in group  # rules live in their own resources
    ports = {r.inputs["fromPort"] for r in run.of_type(INGRESS)}
    assert ports.isdisjoint({5432, 6379, 5672, 15672, 5174, 50051})


def test_rules_per_cidr_and_ipv6(ip_echo):
    run = run_stack({"publicCidrs": '["10.0.0.0/8", "2001:db8::/32"]', "sshCidrs": "198.51.100.7/32,2001:db8::1/128"})
    by_port: dict[int, set[str]] = {}
    for rule in run.of_type(INGRESS):
        by_port.setdefault(rule.inputs["fromPort"], set()).add(rule.inputs.get("cidrIpv4") or rule.inputs.get("cidrIpv6"))
    assert by_port == {3000: {"10.0.0.0/8", "2001:db8::/32"}, 9001: {"10.0.0.0/8", "2001:db8::/32"},
                       22: {"198.51.100.7/32", "2001:db8::1/128"}}
    assert len({r.name for r in run.of_type(INGRESS)}) == 6


def test_every_taggable_resource_is_tagged(runs):
    for resource in runs["demo"].resources:
        if resource.type in TAGGABLE:
            assert resource.tags.get("Project") == "sirius-demo", resource.name
            assert resource.tags.get("Stack") == "demo", resource.name


def test_resources_live_in_the_component(runs):
    run = runs["demo"]
    component = run.one("sirius-demo:index:Demo")
    assert component.parent.endswith("pulumi:pulumi:Stack::sirius-demo-demo")
    for resource in run.resources:
        if resource is not component:
            assert resource.parent.endswith("::sirius") or "SecurityGroup" in resource.parent, resource.name


def test_outputs_and_generated_key(runs):
    run = runs["demo"]
    assert run.outputs["publicIp"] == FAKE_IP
    assert run.outputs["uiUrl"] == f"http://{FAKE_IP}:3000"
    assert run.outputs["apiUrl"] == f"http://{FAKE_IP}:9001"
    assert run.outputs["instanceId"] == "i-0123456789abcdef0"
    assert run.outputs["sshCommand"] == f"ssh -i sirius-demo.pem ubuntu@{FAKE_IP}"
    assert run.secret_outputs == {"sshPrivateKey", "adminPassword"}
    assert run.one("tls:index/privateKey:PrivateKey").inputs["algorithm"] == "ED25519"
    assert run.outputs["sshPrivateKey"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


def test_existing_key_pair_by_name(ip_echo):
    run = run_stack({"keyName": "team-key", "sshPrivateKey": PRIVATE_KEY}, secret_keys=("sshPrivateKey",),
                    ip_lookup_url=ip_echo)
    assert not run.of_type("tls:index/privateKey:PrivateKey") and not run.of_type("aws:ec2/keyPair:KeyPair")
    assert run.one(INSTANCE).inputs["keyName"] == "team-key"
    assert "sshPrivateKey" not in run.outputs


def test_own_public_key(ip_echo):
    public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake me@laptop"
    run = run_stack({"sshPublicKey": public, "sshPrivateKey": PRIVATE_KEY}, secret_keys=("sshPrivateKey",),
                    ip_lookup_url=ip_echo)
    assert run.one("aws:ec2/keyPair:KeyPair").inputs["publicKey"] == public
    assert not run.of_type("tls:index/privateKey:PrivateKey")


def test_user_data_is_secret_free(runs):
    for run in runs.values():
        user_data = run.one(INSTANCE).inputs["userData"]
        assert not re.search(r"PRIVATE KEY|PASSWORD=|NEXTAUTH_SECRET=|AKIA[0-9A-Z]{16}", user_data)


def test_user_data_is_the_boot_engine_with_the_first_deploys_ref_tag_and_images(runs):
    """user_data: the same boot engine for every stack, and as data the first deploy's ref,
    tag and images (pulled while Pulumi waits); never the address or a secret. Later changes
    are ignored (tests/test_replacement.py): they are deployed over SSH."""
    engines = set()
    for stack, run in runs.items():
        text = run.one(INSTANCE).inputs["userData"]
        engines.add(text.split("<<'BOOT_ENGINE'\n", 1)[1].split("\nBOOT_ENGINE\n")[0])
        boot = shlex.split(text.rstrip().rsplit("\nexec ", 1)[1])
        assert boot[:5] == ["python3", "/opt/sirius-demo/boot.pyz", "bootstrap", "--state-dir", "/var/lib/sirius-demo"]
        ref, tag = run.outputs["ref"], run.outputs["imageTag"]
        assert (flag(boot, "--ref"), flag(boot, "--tag")) == (ref, tag), stack
        pulls = [boot[i + 1] for i, arg in enumerate(boot) if arg == "--pull"]
        assert pulls == [f"ghcr.io/siriusscan/{image}:{tag}" for image in sorted(run.outputs["imageTags"])]
        assert FAKE_IP not in text
    [encoded] = engines
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(encoded))) as zf:
        assert zf.read("engine/install.py") == open("engine/install.py", "rb").read()
        assert "engine/deploy.py" not in zf.namelist()


def test_preview_with_unknown_address(ip_echo):
    run = run_stack({"ref": "v1.1.0"}, preview=True, ip_lookup_url=ip_echo)
    instance = run.one(INSTANCE).inputs
    [deploy] = [r for r in run.of_type("command:remote:Command") if r.name.endswith("-deploy")]
    assert isinstance(deploy.inputs["create"], pulumi.output.Unknown)  # it needs the Elastic IP
    assert instance["rootBlockDevice"]["volumeSize"] == 30 and instance["instanceType"] == "t3.medium"
    assert {"publicIp", "uiUrl", "apiUrl", "instanceId", "sshCommand"} <= run.unknown_outputs
    assert run.outputs["imageTag"] == "v1.1.0"
    assert len(run.of_type(INGRESS)) == 3


def test_unpublished_branch_warns(ip_echo):
    run = run_stack({"ref": "feature/scan-ui"}, ip_lookup_url=ip_echo)
    assert any("no images are published for ref 'feature/scan-ui'" in w for w in run.warnings)
    assert run.outputs["imageTag"] == "latest"
    assert not any("no images are published" in w for w in run_stack({"ref": "main"}, ip_lookup_url=ip_echo).warnings)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"ref": "main branch"}, "ref"),
        ({"ref": "x;reboot"}, "ref"),
        ({"ref": "$(curl evil)"}, "ref"),
        ({"ref": "`id`"}, "ref"),
        ({"ref": "../etc"}, "ref"),
        ({"imageTag": "bad tag!"}, "imageTag"),
        ({"publicCidrs": '["10.0.0.0/40"]'}, "publicCidrs"),
        ({"volumeSize": "thirty"}, "volumeSize"),
        ({"volumeSize": "10"}, "volumeSize"),
        ({"sshCidrs": "0.0.0.0/0"}, "sshCidrs"),
        ({"domain": "demo_1.example.com"}, "domain"),
        ({"domain": "localhost"}, "domain"),
        ({"domainSuffix": "demos.example.com;id"}, "domainSuffix"),
        ({"domain": "demo.example.com", "domainSuffix": "demos.example.com"}, "domainSuffix"),
        ({"domain": "demo.example.com", "hostedZoneId": "zone-1"}, "hostedZoneId"),
        ({"domain": "demo.example.com", "acmeEmail": "ops"}, "acmeEmail"),
        ({"domain": "demo.example.com", "acmeCa": "letsencrypt"}, "acmeCa"),
    ],
)
def test_bad_input_stops_before_any_resource(config, key, ip_echo):
    with pytest.raises(pulumi.RunError) as caught:
        run_stack(config, ip_lookup_url=ip_echo)
    assert f"sirius-demo:{key}:" in str(caught.value)


@pytest.mark.parametrize("config", [{"ref": "a b", "volumeSize": "thirty"},
                                    {"domain": "demo.example.com", "hostedZoneId": "zone-1", "acmeCa": "x"}])
def test_bad_input_registers_nothing(ip_echo, config):
    from tests import pulumi_mocks

    monitor_requests = []
    original = pulumi_mocks.CapturingMonitor.RegisterResource

    def spy(self, request):
        monitor_requests.append(request.type)
        return original(self, request)

    pulumi_mocks.CapturingMonitor.RegisterResource = spy
    try:
        with pytest.raises(pulumi.RunError):
            run_stack(config, ip_lookup_url=ip_echo)
    finally:
        pulumi_mocks.CapturingMonitor.RegisterResource = original
    assert [t for t in monitor_requests if t != "pulumi:pulumi:Stack"] == []  # only the root stack


def test_failed_ip_lookup_is_a_clear_error(closed_port_url):
    with pytest.raises(pulumi.RunError) as caught:
        run_stack({}, ip_lookup_url=closed_port_url)
    assert "sirius-demo:sshCidrs" in str(caught.value) and "pulumi config set sshCidrs" in str(caught.value)


def test_expiry_tag_on_branch_stacks(ip_echo):
    run = run_stack({"ref": "feature/x", "expiresAt": "2026-12-01T02:00:00Z"}, stack="feature-x", ip_lookup_url=ip_echo)
    for resource in run.resources:
        if resource.type in TAGGABLE:
            assert resource.tags.get("ExpiresAt") == "2026-12-01T02:00:00Z", resource.name
    assert "ExpiresAt" not in run_stack({}, ip_lookup_url=ip_echo).one(INSTANCE).tags


# --- DNS and HTTPS ----------------------------------------------------------------------------

RECORD = "aws:route53/record:Record"
GET_ZONE = "aws:route53/getZone:getZone"
HTTPS = {"domain": "demo.example.com", **SSH_ONLY}


def ingress_by_port(run) -> dict[int, set[str]]:
    by_port: dict[int, set[str]] = {}
    for rule in run.of_type(INGRESS):
        by_port.setdefault(rule.inputs["fromPort"], set()).add(rule.inputs.get("cidrIpv4") or rule.inputs.get("cidrIpv6"))
        assert rule.inputs["toPort"] == rule.inputs["fromPort"] and rule.inputs["ipProtocol"] == "tcp"
    return by_port


@pytest.fixture(scope="module")
def https_run():
    return run_stack(HTTPS)


def test_a_domain_gets_an_a_record_for_the_elastic_ip_in_its_parent_zone(https_run):
    record = https_run.one(RECORD).inputs
    assert (record["name"], record["type"], record["ttl"], record["records"]) == ("demo.example.com", "A", 60, [FAKE_IP])
    assert record["allowOverwrite"] is False  # another stack's record fails the update, never changes hands
    assert record["zoneId"] == FAKE_ZONE_ID
    assert https_run.invoked(GET_ZONE) == [{"name": "example.com", "privateZone": False}]


def test_a_configured_zone_is_used_without_a_lookup():
    run = run_stack({**HTTPS, "domain": "a.b.example.com", "hostedZoneId": "Z0123456789ABCDEFGHIJ"})
    assert run.one(RECORD).inputs["zoneId"] == "Z0123456789ABCDEFGHIJ"
    assert run.invoked(GET_ZONE) == []


def test_a_deeper_name_is_looked_up_in_its_parent():
    run = run_stack({**HTTPS, "domain": "a.b.example.com"})
    assert run.invoked(GET_ZONE) == [{"name": "b.example.com", "privateZone": False}]


def test_with_a_domain_only_http_https_and_ssh_are_open():
    run = run_stack({**HTTPS, "publicCidrs": "0.0.0.0/0,::/0"})
    assert ingress_by_port(run) == {80: {"0.0.0.0/0", "::/0"}, 443: {"0.0.0.0/0", "::/0"}, 22: {"198.51.100.7/32"}}
    assert len({r.name for r in run.of_type(INGRESS)}) == 5
    # The same group as without a domain: a new description would replace it under the interface.
    plain = run_stack(SSH_ONLY)
    assert run.one("aws:ec2/securityGroup:SecurityGroup").inputs == plain.one("aws:ec2/securityGroup:SecurityGroup").inputs


def test_https_urls_and_outputs(https_run):
    outputs = https_run.outputs
    assert (outputs["uiUrl"], outputs["apiUrl"]) == ("https://demo.example.com", "https://demo.example.com/sirius-api")
    assert (outputs["https"], outputs["domain"], outputs["publicIp"]) == (True, "demo.example.com", FAKE_IP)
    assert not any("plain HTTP" in w for w in https_run.warnings)


def test_the_deploy_knows_the_domain_and_waits_for_its_record(https_run):
    argv = deploy_command(https_run)
    assert (flag(argv, "--domain"), flag(argv, "--acme-ca")) == ("demo.example.com", "production")
    assert "--acme-email" not in argv
    assert flag(argv, "--public-host") == FAKE_IP
    [deploy] = [r for r in https_run.of_type("command:remote:Command") if r.name.endswith("-deploy")]
    assert https_run.one(RECORD).urn.split("::")[-1] in {urn.split("::")[-1] for urn in deploy.dependencies}


def test_the_acme_account_email_and_ca_reach_the_deploy():
    argv = deploy_command(run_stack({**HTTPS, "acmeEmail": "ops@example.com", "acmeCa": "staging"}))
    assert (flag(argv, "--acme-email"), flag(argv, "--acme-ca")) == ("ops@example.com", "staging")


def test_without_a_domain_plain_http_as_before_and_said_so(runs):
    run = runs["demo"]
    assert not run.of_type(RECORD) and GET_ZONE not in run.invokes
    assert set(ingress_by_port(run)) == {3000, 9001, 22}
    assert run.outputs["https"] is False and "domain" not in run.outputs
    assert any("plain HTTP" in w and "sirius-demo:domain" in w for w in run.warnings)
    assert "--domain" not in deploy_command(run) and "--acme-ca" not in deploy_command(run)


def test_a_branch_stack_with_a_suffix_is_named_after_the_stack_with_staging_certificates():
    """What branch-demo.yml deploys: Pulumi.branch.yaml's config, plus domainSuffix."""
    import yaml

    template = yaml.safe_load((ROOT / "Pulumi.branch.yaml").read_text())["config"]
    config = {key.split(":", 1)[1]: str(value) for key, value in template.items() if key.startswith("sirius-demo:")}
    run = run_stack({**config, **SSH_ONLY, "ref": "pr-42", "domainSuffix": "demos.example.com"}, stack="pr-42")
    assert run.one(RECORD).inputs["name"] == "pr-42.demos.example.com"
    assert run.invoked(GET_ZONE) == [{"name": "demos.example.com", "privateZone": False}]
    argv = deploy_command(run)
    assert (flag(argv, "--domain"), flag(argv, "--acme-ca")) == ("pr-42.demos.example.com", "staging")
    assert run.outputs["uiUrl"] == "https://pr-42.demos.example.com"


def test_a_preview_with_a_domain_knows_the_urls_before_the_address():
    run = run_stack(HTTPS, preview=True)
    assert run.outputs["uiUrl"] == "https://demo.example.com" and "publicIp" in run.unknown_outputs
    assert run.one(RECORD).inputs["name"] == "demo.example.com"


def test_an_apex_name_is_looked_up_as_its_own_zone():
    run = run_stack({**HTTPS, "domain": "example.com"})
    assert run.invoked(GET_ZONE) == [{"name": "example.com", "privateZone": False}]
    assert run.one(RECORD).inputs["name"] == "example.com"


@pytest.mark.parametrize(("config", "warned"), [
    ({"publicCidrs": "203.0.113.0/24"}, True),
    ({"publicCidrs": "::/0"}, True),  # the record is an A record: validation comes over IPv4
    ({"publicCidrs": "0.0.0.0/0,::/0"}, False),
    ({"publicCidrs": "203.0.113.0/24", "acmeCa": "https://ca.internal/directory"}, False),  # a CA of your own
])
def test_narrow_public_cidrs_warn_that_lets_encrypt_cannot_validate(config, warned):
    run = run_stack({**HTTPS, **config})
    assert any("Let's Encrypt checks demo.example.com" in w for w in run.warnings) == warned
