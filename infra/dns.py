"""The demo's name: an A record in Route 53 for the Elastic IP.

Only with a domain (infra/config.py: `domain`, or `<stack>.<domainSuffix>`). The record
is what Let's Encrypt resolves to reach the host's HTTPS proxy (an HTTP-01 challenge on
port 80), so the deploy waits for it.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.config import DemoConfig

TTL_SECONDS = 60  # short: a replaced Elastic IP is seen within a minute


def zone_name(domain: str) -> str:
    """The public hosted zone looked up when hostedZoneId is not set: the domain's parent
    (`b.example.com` for `a.b.example.com`, the domainSuffix for `<stack>.<domainSuffix>`);
    a two-label name such as `example.com` is the apex of its own zone."""
    labels = domain.split(".")
    return domain if len(labels) <= 2 else ".".join(labels[1:])


def zone_id(config: DemoConfig, opts: pulumi.InvokeOptions) -> pulumi.Input[str]:
    if config.hosted_zone_id:
        return config.hosted_zone_id
    return aws.route53.get_zone_output(name=zone_name(config.domain), private_zone=False, opts=opts).zone_id


def a_record(name: str, config: DemoConfig, public_ip: pulumi.Input[str],
             opts: pulumi.ResourceOptions) -> aws.route53.Record:
    """`<domain> A <Elastic IP>`. Never taken over: a record of that name that this stack
    does not own (another stack's demo, a hand-made entry) fails the update instead."""
    return aws.route53.Record(
        f"{name}-dns",
        zone_id=zone_id(config, pulumi.InvokeOptions(parent=opts.parent, provider=opts.provider)),
        name=config.domain,
        type="A",
        ttl=TTL_SECONDS,
        records=[public_ip],
        allow_overwrite=False,
        opts=opts,
    )
