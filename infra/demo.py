"""The Sirius demo as one component: network, key, host, and what it reports."""

from __future__ import annotations

import pulumi

from collections.abc import Mapping

from infra import network
from infra.config import DemoConfig
from infra.instance import SSH_USER, DemoHost
from infra.keys import ssh_key
from infra.remote import RemoteDeploy

PROJECT_TAG = "sirius-demo"


def base_tags(config: DemoConfig) -> dict[str, str]:
    tags = {"Project": PROJECT_TAG, "Stack": config.stack, "ManagedBy": "pulumi"}
    if config.expires_at:
        tags["ExpiresAt"] = config.expires_at
    return tags


class SiriusDemo(pulumi.ComponentResource):
    def __init__(self, name: str, config: DemoConfig, image_tags: Mapping[str, str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("sirius-demo:index:Demo", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        tags = base_tags(config)

        if not config.images_published and not config.image_tag_explicit:
            pulumi.log.warn(
                f"no images are published for ref {config.ref!r}; running image tag {config.image_tag!r}. "
                "Set sirius-demo:imageTag to pick one.",
                resource=self,
            )

        where = network.placement(config, invoke)
        self.firewall = network.Firewall(name, config, where.vpc_id, tags, child)
        self.key = ssh_key(name, config, tags, child)
        self.host = DemoHost(
            name,
            config,
            subnet_id=where.subnet_id,
            security_group_id=self.firewall.group.id,
            key_name=self.key.key_name,
            image_tags=image_tags,
            tags=tags,
            opts=child,
        )
        self.remote = RemoteDeploy(
            name,
            config,
            public_ip=self.host.eip.public_ip,
            private_key=self.key.private_key,
            instance=self.host.instance,
            boot_ready=[self.host.eip, *self.firewall.ingress, *self.firewall.egress],
            image_tags=image_tags,
            opts=child,
        )

        self.public_ip = self.host.eip.public_ip
        self.ui_url = pulumi.Output.concat("http://", self.public_ip, f":{network.UI_PORT}")
        self.api_url = pulumi.Output.concat("http://", self.public_ip, f":{network.API_PORT}")
        key_file = "sirius-demo.pem" if self.key.generated else "<your private key>"
        self.ssh_command = pulumi.Output.concat("ssh -i ", key_file, f" {SSH_USER}@", self.public_ip)
        self.register_outputs(
            {"publicIp": self.public_ip, "uiUrl": self.ui_url, "apiUrl": self.api_url,
             "instanceId": self.host.instance.id, "health": self.remote.report}
        )
