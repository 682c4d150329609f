"""Where the instance lives and who may reach it: VPC/subnet choice and the security group.

One rule resource per port and CIDR (`aws.vpc.SecurityGroupIngressRule`), as the AWS
provider recommends over inline rules. Without a domain only the UI, the API and SSH
are open; with one, HTTP and HTTPS (the host's proxy) and SSH, and the UI and API ports
are not. The databases, the broker and the engine's ports stay private to the instance.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from engine.rules import API_PORT, HTTP_PORT, HTTPS_PORT, UI_PORT  # one copy of each port, shared with the host
from infra.config import DemoConfig

SSH_PORT = 22


@dataclass(frozen=True)
class IngressRule:
    port: int
    cidr: str
    purpose: str

    @property
    def resource_suffix(self) -> str:
        """`ui-198-51-100-7-32`: every '.', ':' and '/' of the canonical CIDR becomes one '-'.

        Character by character, never a run to one dash: `1::2:3/128` and `1:2::3/128` stay
        `1--2-3-128` and `1-2--3-128`. The canonical form is unique per network, and only the
        separators change, so distinct CIDRs get distinct names and the same CIDR the same one."""
        canonical = str(ipaddress.ip_network(self.cidr, strict=False))
        return f"{self.purpose}-{re.sub(r'[.:/]', '-', canonical)}"


def ingress_rules(config: DemoConfig) -> list[IngressRule]:
    """Every port and CIDR that is let in: the whole exposure of the demo, as data."""
    # With a domain the proxy is the only way in: 80 for the ACME challenge and the
    # redirect, 443 for the demo; the raw ports would bypass TLS.
    public = ((HTTP_PORT, "http"), (HTTPS_PORT, "https")) if config.https else ((UI_PORT, "ui"), (API_PORT, "api"))
    rules = []
    for cidr in config.public_cidrs:
        rules += [IngressRule(port, cidr, purpose) for port, purpose in public]
    for cidr in config.ssh_cidrs:
        rules.append(IngressRule(SSH_PORT, cidr, "ssh"))
    return rules


def _cidr_args(cidr: str) -> dict[str, str]:
    if ipaddress.ip_network(cidr).version == 6:
        return {"cidr_ipv6": cidr}
    return {"cidr_ipv4": cidr}


@dataclass
class Placement:
    vpc_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]


def placement(config: DemoConfig, opts: pulumi.InvokeOptions) -> Placement:
    """The configured VPC and subnet, or the default VPC and a default subnet whose
    availability zone offers the instance type (t3.medium is missing from a few AZs)."""
    if config.vpc_id and config.subnet_id:
        return Placement(config.vpc_id, config.subnet_id)
    vpc_id: pulumi.Input[str] = config.vpc_id or aws.ec2.get_vpc_output(default=True, opts=opts).id
    zones = aws.ec2.get_instance_type_offerings_output(
        location_type="availability-zone",
        filters=[aws.ec2.GetInstanceTypeOfferingsFilterArgs(name="instance-type", values=[config.instance_type])],
        opts=opts,
    ).locations
    subnets = aws.ec2.get_subnets_output(
        filters=[
            aws.ec2.GetSubnetsFilterArgs(name="vpc-id", values=[vpc_id]),
            aws.ec2.GetSubnetsFilterArgs(name="map-public-ip-on-launch", values=["true"]),
            aws.ec2.GetSubnetsFilterArgs(name="availability-zone", values=zones),
        ],
        opts=opts,
    )

    def first(ids: list[str]) -> str:
        if not ids:
            raise pulumi.RunError(
                f"no public subnet of the VPC is in an availability zone offering {config.instance_type}; "
                "set sirius-demo:vpcId and sirius-demo:subnetId"
            )
        return sorted(ids)[0]

    return Placement(vpc_id, subnets.ids.apply(first))


class Firewall:
    """The security group and its rules."""

    def __init__(self, name: str, config: DemoConfig, vpc_id: pulumi.Input[str], tags: dict[str, str],
                 opts: pulumi.ResourceOptions):
        self.group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            # The same with a domain (the UI and API are then behind the proxy on 80/443): a
            # new description would replace the group, which the network interface holds.
            description=f"Sirius demo ({config.stack}): UI, API and SSH only",
            vpc_id=vpc_id,
            tags={**tags, "Name": f"{name}-sg"},
            opts=opts,
        )
        child = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=self.group))
        self.ingress = [
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-in-{rule.resource_suffix}",
                security_group_id=self.group.id,
                ip_protocol="tcp",
                from_port=rule.port,
                to_port=rule.port,
                description=f"{rule.purpose} from {rule.cidr}",
                tags=tags,
                opts=child,
                **_cidr_args(rule.cidr),
            )
            for rule in ingress_rules(config)
        ]
        # The provider drops AWS's default allow-all egress; without it the image pull fails.
        self.egress = [
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-out-{family}",
                security_group_id=self.group.id,
                ip_protocol="-1",
                description="all outbound (apt, git, ghcr.io)",
                tags=tags,
                opts=child,
                **_cidr_args(cidr),
            )
            for family, cidr in (("ipv4", "0.0.0.0/0"), ("ipv6", "::/0"))
        ]
