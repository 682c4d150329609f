"""A newcomer's config mistakes, each caught by name with its fix, all in one run, before
any resource: misspelt keys, another namespace's keys, instance types Sirius cannot run on,
stale refs, a dead SSH agent. Under the SDK mocks, as `pulumi preview` runs the program."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pulumi
import pytest

from engine import instancetypes, rules
from infra import config, sshagent
from infra.config import ConfigError, parse
from tests import pulumi_mocks
from tests.pulumi_mocks import run_stack

INSTANCE = "aws:ec2/instance:Instance"


@pytest.fixture
def registered(monkeypatch) -> list[str]:
    """The types of every resource the program registers (the root stack left out)."""
    seen: list[str] = []
    original = pulumi_mocks.CapturingMonitor.RegisterResource

    def spy(self, request):
        if request.type != "pulumi:pulumi:Stack":
            seen.append(request.type)
        return original(self, request)

    monkeypatch.setattr(pulumi_mocks.CapturingMonitor, "RegisterResource", spy)
    return seen


def refused(config_: dict, registered: list[str], **kwargs) -> str:
    with pytest.raises(pulumi.RunError) as caught:
        run_stack(config_, **kwargs)
    assert registered == [], "a resource was registered before the config error"
    return str(caught.value)


@pytest.mark.parametrize(
    ("config_", "names", "fix"),
    [
        ({"instancetype": "t3.large"}, "sirius-demo:instancetype:", "did you mean instanceType?"),
        ({"instanceTpye": "t3.large"}, "sirius-demo:instanceTpye:", "did you mean instanceType?"),
        ({"instanceType": "t3.nano"}, "sirius-demo:instanceType:", "at least 4 GiB"),
        ({"instanceType": "t4g.medium"}, "sirius-demo:instanceType:", "arm64"),
        ({"ref": "demo"}, "sirius-demo:ref:", "use main (tag latest) or v1.1.0 or later"),
        ({"ref": "v1.0.0"}, "sirius-demo:ref:", "use v1.1.0 or later"),
        ({"ref": "dev"}, "sirius-demo:ref:", "use main"),
        ({"region": "us-east-1"}, "sirius-demo:region:", "`pulumi config set aws:region VALUE`"),
        ({"aws:region": "us-west-2a"}, "aws:region:", "availability zone of us-west-2"),
        ({"aws:regoin": "us-west-2"}, "aws:regoin:", "did you mean aws:region?"),
    ],
)
def test_each_mistake_stops_before_any_resource_naming_key_and_fix(config_, names, fix, registered, ip_echo):
    message = refused(config_, registered, ip_lookup_url=ip_echo)
    assert names in message and fix in message, message


def test_instance_type_messages_say_what_to_use(registered, ip_echo):
    for name in ("t3.nano", "t4g.medium"):
        assert "use t3.medium" in refused({"instanceType": name}, registered, ip_lookup_url=ip_echo)


def test_three_bad_keys_are_reported_in_one_run(registered, ip_echo):
    message = refused({"instanceTpye": "t3.large", "ref": "demo", "volumeSize": "10"}, registered,
                      ip_lookup_url=ip_echo)
    for key in ("sirius-demo:instanceTpye:", "sirius-demo:ref:", "sirius-demo:volumeSize:"):
        assert key in message, message


def test_cross_checks_run_over_every_key_that_parsed(registered, ip_echo):
    """A bad value elsewhere no longer hides the checks across keys."""
    message = refused({"ref": "a b", "sshCidrs": "0.0.0.0/0", "subnetId": "subnet-0123456789abcdef0",
                       "domain": "demo.example.com", "domainSuffix": "demos.example.com"}, registered,
                      ip_lookup_url=ip_echo)
    for key in ("sirius-demo:ref:", "sirius-demo:sshCidrs:", "sirius-demo:vpcId:", "sirius-demo:domainSuffix:"):
        assert key in message, message


def test_a_valid_stack_still_deploys_with_a_known_good_type(ip_echo):
    run = run_stack({"instanceType": "t3.large"}, ip_lookup_url=ip_echo)
    assert run.one(INSTANCE).inputs["instanceType"] == "t3.large"


# --- instance types AWS knows and the table does not ---------------------------------------------


def test_an_unknown_type_is_judged_by_aws_data_when_the_preflight_is_on(registered, ip_echo):
    """m1.small is not in the table: with the preflight on the program asks AWS
    (aws.ec2.getInstanceType) and refuses its 1.7 GiB, before the tag preflight and any resource."""
    message = refused({"instanceType": "m1.small", "preflight": "true"}, registered, ip_lookup_url=ip_echo)
    assert "sirius-demo:instanceType:" in message and "1.69922 GiB" in message and "at least 4 GiB" in message


def test_aws_data_is_not_asked_with_the_preflight_off_or_for_table_types(ip_echo):
    run = run_stack({"instanceType": "m5zn.large"}, ip_lookup_url=ip_echo)
    assert "aws:ec2/getInstanceType:getInstanceType" not in run.invokes
    assert run.one(INSTANCE).inputs["instanceType"] == "m5zn.large"


def test_aws_data_that_cannot_be_read_names_the_key_and_the_offline_way():
    def broken(name: str):
        raise RuntimeError("InvalidInstanceType: x9.huge does not exist")

    with pytest.raises(ConfigError) as caught:
        parse({"instanceType": "x9.huge"}, stack="t", lookup_public_ip=lambda: "52.1.1.1",
              describe_instance_type=broken)
    message = dict(caught.value.problems)["instanceType"]
    assert "x9.huge does not exist" in message and "preflight: false" in message


def test_aws_data_of_a_good_type_is_accepted():
    spec = instancetypes.InstanceSpec(vcpus=2, memory_mib=8192, amd64=True)
    demo = parse({"instanceType": "m5zn.large"}, stack="t", lookup_public_ip=lambda: "52.1.1.1",
                 describe_instance_type=lambda name: spec)
    assert demo.instance_type == "m5zn.large"


@pytest.mark.parametrize(
    ("name", "spec", "says"),
    [
        ("t3.micro", None, "1 GiB"),
        ("t2.small", None, "2 GiB"),
        ("a1.large", None, "arm64"),
        ("c6gn.large", None, "arm64"),
        ("x1.tiny", instancetypes.InstanceSpec(1, 8192, True), "1 vCPU"),
        ("x1.tiny", instancetypes.InstanceSpec(2, 8192, False), "arm64"),
        ("t3 medium", None, "expected family.size"),
    ],
)
def test_the_shared_instance_type_rule(name, spec, says):
    assert says in instancetypes.instance_type_problem(name, spec)


@pytest.mark.parametrize("name", ["t3.medium", "t3.large", "t3a.medium", "t2.medium", "m5.large", "c5.large"])
def test_types_that_run_sirius_pass_the_rule(name):
    assert instancetypes.instance_type_problem(name) is None


def test_the_policy_pack_applies_the_same_rule():
    from policy import rules as policy_rules

    for name in ("t3.nano", "t4g.medium", "t3.medium"):
        found = policy_rules.check_all(INSTANCE, {"instanceType": name}).get("instance-type-runs-sirius", [])
        expected = instancetypes.instance_type_problem(name)
        assert found == ([f"instanceType: {expected}"] if expected else []), name


# --- refs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["demo", "dev", "v1.0.0", "v0.4.1"])
def test_stale_refs_are_refused_with_the_reason_and_what_to_use(ref):
    with pytest.raises(ConfigError) as caught:
        parse({"ref": ref}, stack="t", lookup_public_ip=lambda: "52.1.1.1")
    message = dict(caught.value.problems)["ref"]
    assert ("stale" in message or "older than v1.1.0" in message or "unmaintained" in message) and "use " in message


def test_the_engine_still_takes_the_stale_branch_for_its_compatibility_check():
    assert rules.release_problem("demo") is None and rules.stale_ref_problem("demo")


# --- keys -----------------------------------------------------------------------------------------


def test_an_unknown_key_far_from_any_lists_the_settings():
    with pytest.raises(ConfigError) as caught:
        parse({"zzz": "1"}, stack="t", lookup_public_ip=lambda: "52.1.1.1")
    message = dict(caught.value.problems)["zzz"]
    assert "did you mean" not in message and "pulumi config rm zzz" in message and "instanceType" in message


def test_keys_are_checked_against_the_schema_it_is_given():
    """The declared keys come from Pulumi.yaml (a key another branch declares is accepted there),
    never from a list in the code: take a key out of the schema and it is refused."""
    without = {key: setting for key, setting in config.load_schema().items() if key != "demoData"}
    with pytest.raises(ConfigError) as caught:
        parse({"demoData": "false"}, stack="t", lookup_public_ip=lambda: "52.1.1.1", schema=without)
    assert "is not a setting of this project" in dict(caught.value.problems)["demoData"]
    assert parse({"demoData": "false"}, stack="t", lookup_public_ip=lambda: "52.1.1.1").engine_settings["demo_data"] is False


def test_region_from_the_environment_or_the_profile_is_enough(tmp_path):
    base = {"HOME": str(tmp_path)}
    ok = dict(stack="t", lookup_public_ip=lambda: "52.1.1.1", provider_config={})
    with pytest.raises(ConfigError) as caught:
        parse({}, environ=base, **ok)
    assert "pulumi config set aws:region us-west-2" in dict(caught.value.problems)["aws:region"]
    parse({}, environ={**base, "AWS_REGION": "eu-west-1"}, **ok)
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[profile work]\nregion = eu-central-1\n")
    parse({}, environ={**base, "AWS_PROFILE": "work"}, **ok)
    with pytest.raises(ConfigError):
        parse({}, environ=base, **ok)  # the default profile has none


def test_an_unset_region_under_mocks_is_caught(registered, ip_echo, tmp_path):
    message = refused({"aws:region": None}, registered, ip_lookup_url=ip_echo,
                      env={"AWS_REGION": None, "AWS_DEFAULT_REGION": None, "AWS_PROFILE": None,
                           "AWS_CONFIG_FILE": str(tmp_path / "none")})
    assert "aws:region: is not set" in message


# --- SSH agent ------------------------------------------------------------------------------------


def test_a_dead_ssh_agent_socket_is_caught_before_any_resource(registered, ip_echo, tmp_path):
    stale = tmp_path / "agent.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(stale))  # a socket file nobody listens on: what a closed terminal's agent leaves
    for path in (str(stale), str(tmp_path / "gone.sock")):
        message = refused({}, registered, ip_lookup_url=ip_echo, env={"SSH_AUTH_SOCK": path})
        assert "SSH_AUTH_SOCK (environment):" in message and path in message
        assert "env -u SSH_AUTH_SOCK pulumi up" in message and 'eval "$(ssh-agent)"' in message


def test_a_live_ssh_agent_is_fine(tmp_path, ip_echo):
    path = tmp_path / "live.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if path.exists():
                break
            time.sleep(0.05)
        assert sshagent.problem(str(path)) is None
        run = run_stack({}, ip_lookup_url=ip_echo, env={"SSH_AUTH_SOCK": str(path)})
        assert run.of_type(INSTANCE)
    finally:
        os.kill(agent.pid, signal.SIGTERM)
        agent.wait(timeout=10)


def test_an_unset_or_empty_agent_variable_is_fine():
    assert sshagent.problem(None) is None and sshagent.problem("") is None
