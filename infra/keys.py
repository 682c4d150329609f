"""The SSH key pair: bring your own (public key or existing pair) or a generated one.

A generated ED25519 key lives in the stack state as a secret (pulumi-tls), so
`pulumi up` needs no key setup; the private key reaches users only as a secret output.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from infra.config import DemoConfig


@dataclass
class SshKey:
    key_name: pulumi.Input[str]
    private_key: pulumi.Output[str]  # always a secret
    generated: bool


def ssh_key(name: str, config: DemoConfig, tags: dict[str, str], opts: pulumi.ResourceOptions) -> SshKey:
    if config.key_name:
        return SshKey(config.key_name, pulumi.Output.secret(config.ssh_private_key), generated=False)
    if config.ssh_public_key:
        pair = aws.ec2.KeyPair(f"{name}-key", public_key=config.ssh_public_key, tags=tags, opts=opts)
        return SshKey(pair.key_name, pulumi.Output.secret(config.ssh_private_key), generated=False)
    generated = tls.PrivateKey(f"{name}-ssh", algorithm="ED25519", opts=opts)
    pair = aws.ec2.KeyPair(f"{name}-key", public_key=generated.public_key_openssh, tags=tags, opts=opts)
    return SshKey(pair.key_name, pulumi.Output.secret(generated.private_key_openssh), generated=True)
