"""Run __main__.py under the Pulumi SDK's mocks and capture what it registers.

`run_stack(config)` returns every resource registration as the engine receives it
(type, name, inputs, parent, options such as ignoreChanges and replacementTrigger),
the stack outputs (with their secret/known flags), invokes and log messages: what
`pulumi preview` would see, without a cloud or a CLI.
"""

from __future__ import annotations

import asyncio
import logging
import os
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "sirius-demo"
FAKE_IP = "52.12.34.56"
FAKE_AMI = "ami-0fedcba9876543210"
FAKE_VPC = "vpc-0a1b2c3d4e5f60718"
FAKE_ZONE_ID = "Z0FAKEZONE0123456789"  # what the mocked route53 getZone answers
FAKE_SUBNETS = ["subnet-0bbbbbbbbbbbbbbb2", "subnet-0aaaaaaaaaaaaaaa1"]
SECRET_SIG, SECRET_VALUE = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"
FAKE_ADMIN_PASSWORD = "fake-admin-password-0123"
FAKE_REPORT = {"schema": 1, "status": "healthy", "imageTag": "latest", "totalSeconds": 42.5,
               "services": {"sirius-ui": {"state": "running", "health": "healthy"}}, "builtLocally": []}
FAKE_PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZS1rZXktZm9yLXRlc3Rz\n-----END OPENSSH PRIVATE KEY-----\n"
# What the mocked aws.ec2.getInstanceType answers (AWS's figures), for types the rule's table lacks.
FAKE_INSTANCE_TYPES = {
    "m1.small": {"memorySize": 1740, "defaultVcpus": 1, "supportedArchitectures": ["i386", "x86_64"]},
    "m5zn.large": {"memorySize": 8192, "defaultVcpus": 2, "supportedArchitectures": ["x86_64"]},
}


@dataclass
class Registration:
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str
    ignore_changes: list[str]
    replace_on_changes: list[str]
    replacement_trigger: Any
    delete_before_replace: bool
    dependencies: list[str]
    additional_secret_outputs: list[str]
    urn: str
    raw: dict[str, Any] = field(default_factory=dict)  # inputs as sent, secrets still wrapped

    def is_secret(self, *path: str) -> bool:
        value: Any = self.raw
        for key in path:
            if isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE:
                return True
            value = value[key]
        return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE

    @property
    def tags(self) -> dict[str, str]:
        return self.inputs.get("tags") or {}


@dataclass
class StackRun:
    resources: list[Registration]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    unknown_outputs: set[str]
    invokes: list[str]
    warnings: list[str] = field(default_factory=list)
    invoke_args: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (token, arguments)

    def invoked(self, token: str) -> list[dict[str, Any]]:
        return [args for name, args in self.invoke_args if name == token]

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Registration:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {len(found)}"
        return found[0]


class DemoMocks(pulumi_mocks.Mocks):
    def __init__(self, preview: bool):
        self.preview = preview
        self.invokes: list[str] = []
        self.invoke_args: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "aws:ec2/eip:Eip" and not self.preview:
            state.update(publicIp=FAKE_IP, allocationId="eipalloc-0123456789abcdef0")
        elif args.typ == "tls:index/privateKey:PrivateKey" and not self.preview:
            state.update(publicKeyOpenssh="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests", privateKeyOpenssh=FAKE_PRIVATE_KEY)
        elif args.typ == "aws:ec2/keyPair:KeyPair" and not self.preview:
            state.setdefault("keyName", f"{args.name}-1a2b3c")
        elif args.typ == "aws:route53/record:Record":
            state["fqdn"] = args.inputs["name"]
        elif args.typ == "command:remote:Command" and not self.preview:
            state["stdout"] = self._command_stdout(args.name)
            state["stderr"] = ""
        resource_id = None if self.preview else f"{args.name}-id"
        if args.typ == "aws:ec2/instance:Instance" and not self.preview:
            resource_id = "i-0123456789abcdef0"
        return resource_id, state

    @staticmethod
    def _command_stdout(name: str) -> str:
        import json

        if name.endswith("-admin-password"):
            return FAKE_ADMIN_PASSWORD + "\n"
        if name.endswith(("-deploy", "-health", "-wait-boot")):
            return "progress line\n" + json.dumps(FAKE_REPORT) + "\n"
        return ""

    def call(self, args: pulumi_mocks.MockCallArgs):
        self.invokes.append(args.token)
        self.invoke_args.append((args.token, dict(args.args)))
        answers = {
            "aws:ec2/getAmi:getAmi": {"id": FAKE_AMI, "imageId": FAKE_AMI, "architecture": "x86_64"},
            "aws:ec2/getVpc:getVpc": {"id": FAKE_VPC, "default": True},
            "aws:ec2/getSubnets:getSubnets": {"id": "us-west-2", "ids": FAKE_SUBNETS},
            "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": {
                "id": "us-west-2",
                "instanceTypes": ["t3.medium"] * 3,
                "locations": ["us-west-2a", "us-west-2b", "us-west-2c"],
                "locationTypes": ["availability-zone"] * 3,
            },
            "aws:route53/getZone:getZone": {"id": FAKE_ZONE_ID, "zoneId": FAKE_ZONE_ID,
                                            "name": args.args.get("name"), "privateZone": False},
            "aws:ec2/getInstanceType:getInstanceType": FAKE_INSTANCE_TYPES.get(args.args.get("instanceType"), {}),
        }
        return answers.get(args.token, {}), []


class CapturingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: DemoMocks):
        super().__init__(mocks)
        self.requests: list[Any] = []

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        if request.type != "pulumi:pulumi:Stack":
            self.requests.append(request)
        return super().RegisterResource(request)


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _registration(request) -> Registration:
    trigger = _value(request.replacement_trigger) if request.HasField("replacement_trigger") else None
    return Registration(
        type=request.type,
        name=request.name,
        inputs=rpc.deserialize_properties(request.object),
        parent=request.parent,
        ignore_changes=list(request.ignoreChanges),
        replace_on_changes=list(request.replaceOnChanges),
        replacement_trigger=trigger,
        delete_before_replace=request.deleteBeforeReplace,
        dependencies=list(request.dependencies),
        additional_secret_outputs=list(request.additionalSecretOutputs),
        urn=f"{request.parent}::{request.type}::{request.name}",
        raw=_value(request.object),
    )


def _value(proto_value) -> Any:
    from google.protobuf import json_format

    return json_format.MessageToDict(proto_value)


def run_stack(
    config: dict[str, Any] | None = None,
    *,
    stack: str = "demo",
    preview: bool = False,
    secret_keys: tuple[str, ...] = (),
    ip_lookup_url: str | None = None,
    env: dict[str, str | None] | None = None,
) -> StackRun:
    """Run __main__.py for one stack configuration; raises what the program raises.

    Keys with a namespace (`aws:region`) are passed as they are, the others in the project's;
    None removes a key. `env` sets (None: unsets) environment variables for the run;
    SSH_AUTH_SOCK is unset unless it names one, so the caller's own agent plays no part."""
    # The tag preflight asks a registry over the network: off unless a test turns it on.
    config = {"preflight": "false", **(config or {})}
    full_config = {"aws:region": "us-west-2"}
    for key, value in config.items():
        full_key = key if ":" in key else f"{PROJECT}:{key}"
        if value is None:
            full_config.pop(full_key, None)
        else:
            full_config[full_key] = value if isinstance(value, str) else _json(value)
    env = {"SSH_AUTH_SOCK": None, **(env or {})}
    if ip_lookup_url is not None:
        env["SIRIUS_DEMO_IP_LOOKUP_URL"] = ip_lookup_url
    mocks = DemoMocks(preview)
    monitor = CapturingMonitor(mocks)
    warnings = _Warnings()
    logger = logging.getLogger(f"pulumi-mocks-{id(monitor)}")
    logger.addHandler(warnings)
    logger.propagate = False

    settings.ROOT.set(None)
    pulumi.runtime.set_all_config(full_config, [f"{PROJECT}:{k}" for k in secret_keys])
    pulumi_mocks.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, logger=logger, monitor=monitor)
    root = settings.get_root_resource()

    previous_env = {name: os.environ.get(name) for name in env}
    previous_cwd = os.getcwd()
    _set_env(env)
    os.chdir(ROOT)
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")))
        outputs, secret, unknown = {}, set(), set()
        for name, value in root.outputs.items():
            output = pulumi.Output.from_input(value)
            resolved, known, is_secret = _sync_await(
                asyncio.gather(output.future(with_unknowns=True), output.is_known(), output.is_secret())
            )
            outputs[name] = resolved if known else None
            if is_secret:
                secret.add(name)
            if not known:
                unknown.add(name)
    finally:
        os.chdir(previous_cwd)
        _set_env(previous_env)
        logger.removeHandler(warnings)
    return StackRun(
        resources=[_registration(r) for r in monitor.requests],
        outputs=outputs,
        secret_outputs=secret,
        unknown_outputs=unknown,
        invokes=list(mocks.invokes),
        warnings=warnings.messages,
        invoke_args=list(mocks.invoke_args),
    )


def _set_env(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
