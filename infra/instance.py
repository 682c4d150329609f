"""The EC2 instance, its AMI, its network interface and its Elastic IP.

The Elastic IP is associated with a network interface created before the instance, and
the instance boots with that interface as its primary one: it has its public address
from the first packet, so the bootstrap's downloads never see the address change (an
EipAssociation made after launch swaps a temporary public IP mid-boot).

Replacement rules: the instance is replaced when what it boots changes (host
scripts, a pinned AMI, the root volume) and never for a new ref, image tag or digest,
which the remote deploy applies in place. `userData` is ignored after creation (it holds
the first deploy's ref, tag and images) and a digest of the boot inputs is the
replacement trigger. A replacement deletes the old instance first: the interface (and so
the address) can be attached to one instance at a time. The other settings that touch
the host (docs/canary.md): instanceType stops and starts it (same volume, same
address); a new key source (keyName, sshPublicKey, or a generated key) replaces it, as
EC2 cannot change an instance's key pair. The interface keeps the subnet it was created
in (infra/network.py), and the instance waits for the egress rules its boot downloads need.
"""

from __future__ import annotations

import hashlib
import json

import pulumi
import pulumi_aws as aws

from infra import bootstrap
from infra.config import DemoConfig
from infra.preflight import Pins

CANONICAL_OWNER = "099720109477"
UBUNTU_AMI_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
SSH_USER = "ubuntu"
VOLUME_TYPE = "gp3"


def ami_id(config: DemoConfig, opts: pulumi.InvokeOptions) -> pulumi.Input[str]:
    if config.ami:
        return config.ami
    return aws.ec2.get_ami_output(
        owners=[CANONICAL_OWNER],
        most_recent=True,
        filters=[
            aws.ec2.GetAmiFilterArgs(name="name", values=[UBUNTU_AMI_NAME]),
            aws.ec2.GetAmiFilterArgs(name="architecture", values=["x86_64"]),
            aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
        ],
        opts=opts,
    ).id


def boot_digest(config: DemoConfig) -> str:
    """What forces a new instance: the boot scripts, a pinned AMI, the root volume."""
    inputs = {
        "boot": bootstrap.boot_files_digest(),
        "ami": config.ami or "latest-ubuntu-24.04",
        "volume": [config.volume_size, VOLUME_TYPE, True],
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


class DemoHost:
    """Network interface and its Elastic IP first (the address goes into the UI's public
    URLs and is the host's from boot), then the instance on that interface."""

    def __init__(self, name: str, config: DemoConfig, *, subnet_id: pulumi.Input[str],
                 security_group_id: pulumi.Input[str], key_name: pulumi.Input[str],
                 pins: Pins, boot_ready: list[pulumi.Resource], tags: dict[str, str], opts: pulumi.ResourceOptions):
        self.interface = aws.ec2.NetworkInterface(
            f"{name}-eni",
            subnet_id=subnet_id,
            security_groups=[security_group_id],
            description=f"Sirius demo ({config.stack}): the host's primary interface, with the Elastic IP",
            tags={**tags, "Name": f"{name}-eni"},
            # A picked subnet stays the one the interface was created in: a new public subnet with
            # a lower id, or a zone that stops offering the type, must not move the interface
            # (which replaces the instance and deletes its volume, demo data and all). A subnetId
            # set in the config is followed.
            opts=opts if config.subnet_id else pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(ignore_changes=["subnetId"])),
        )
        self.eip = aws.ec2.Eip(
            f"{name}-eip",
            domain="vpc",
            network_interface=self.interface.id,
            tags={**tags, "Name": f"{name}-eip"},
            opts=opts,
        )
        digest = boot_digest(config)
        ignore = ["userData"] if config.ami else ["userData", "ami"]
        self.instance = aws.ec2.Instance(
            f"{name}-host",
            ami=ami_id(config, pulumi.InvokeOptions(parent=opts.parent, provider=opts.provider)),
            instance_type=config.instance_type,
            primary_network_interface=aws.ec2.InstancePrimaryNetworkInterfaceArgs(
                network_interface_id=self.interface.id,
            ),
            key_name=key_name,
            # The first deploy's ref, tag and images, pulled at boot; ignored after creation.
            user_data=bootstrap.render_user_data(
                config.ref, config.image_tag, bootstrap.first_images(config.image_registry, pins.tags, pins.digests)),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_size=config.volume_size,
                volume_type=VOLUME_TYPE,
                encrypted=True,
                delete_on_termination=True,
                tags={**tags, "Name": f"{name}-root"},
            ),
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
            ),
            tags={
                **tags,
                "Name": f"sirius-demo-{config.stack}",
                "Ref": config.ref,
                "ImageTag": config.image_tag,
                "BootDigest": digest[:16],
            },
            opts=pulumi.ResourceOptions.merge(
                opts,
                pulumi.ResourceOptions(
                    # A new ref or tag is deployed over SSH; editing user_data would stop/start the VM.
                    # Without a pinned AMI, a newer Ubuntu image must not replace a running demo.
                    ignore_changes=ignore,
                    replacement_trigger=digest,
                    # The primary interface cannot be on the old and the new instance at once.
                    delete_before_replace=True,
                    # Associated before the instance boots; the boot's downloads need the egress rules.
                    depends_on=[self.eip, *boot_ready],
                ),
            ),
        )
