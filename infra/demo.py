"""The Sirius demo as one component: network, key, host, its name, and what it reports."""

from __future__ import annotations

import pulumi

from engine.rules import ACME_CAS, API_PATH, acme_directory
from infra import dns, network
from infra.config import DemoConfig
from infra.preflight import Pins
from infra.instance import SSH_USER, DemoHost
from infra.keys import ssh_key
from infra.remote import RemoteDeploy

PROJECT_TAG = "sirius-demo"


def base_tags(config: DemoConfig) -> dict[str, str]:
    tags = {"Project": PROJECT_TAG, "Stack": config.stack, "ManagedBy": "pulumi"}
    if config.expires_at:
        tags["ExpiresAt"] = config.expires_at
    return tags


def warnings(config: DemoConfig) -> list[str]:
    """What a valid config still gets wrong, or risks, said on every preview and up."""
    found = []
    if not config.images_published and not config.image_tag_explicit:
        found.append(f"no images are published for ref {config.ref!r}; running image tag {config.image_tag!r}. "
                     "Set sirius-demo:imageTag to pick one.")
    if not config.https:
        found.append("no domain: the UI and API are plain HTTP, so the admin login and API keys cross the network "
                     "in clear. Set sirius-demo:domain (or domainSuffix) for HTTPS; see docs/dns-https.md.")
    lets_encrypt = acme_directory(config.acme_ca) in ACME_CAS.values()
    if config.https and lets_encrypt and "0.0.0.0/0" not in config.public_cidrs:
        found.append(f"publicCidrs ({', '.join(config.public_cidrs)}) leaves out 0.0.0.0/0, but Let's Encrypt checks "
                     f"{config.domain} from its own, unpublished addresses on port 80 (or 443): the certificate will "
                     "not be issued. Open publicCidrs to 0.0.0.0/0, or set acmeCa to an ACME directory those CIDRs reach.")
    return found


class SiriusDemo(pulumi.ComponentResource):
    def __init__(self, name: str, config: DemoConfig, pins: Pins,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("sirius-demo:index:Demo", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        tags = base_tags(config)

        for message in warnings(config):
            pulumi.log.warn(message, resource=self)

        where = network.placement(config, invoke)
        self.firewall = network.Firewall(name, config, where.vpc_id, tags, child)
        self.key = ssh_key(name, config, tags, child)
        self.host = DemoHost(
            name,
            config,
            subnet_id=where.subnet_id,
            security_group_id=self.firewall.group.id,
            key_name=self.key.key_name,
            pins=pins,
            boot_ready=self.firewall.egress,
            tags=tags,
            opts=child,
        )
        self.dns_record = dns.a_record(name, config, self.host.eip.public_ip, child) if config.https else None
        self.remote = RemoteDeploy(
            name,
            config,
            public_ip=self.host.eip.public_ip,
            private_key=self.key.private_key,
            instance=self.host.instance,
            boot_ready=[self.host.eip, *self.firewall.ingress, *self.firewall.egress],
            pins=pins,
            opts=child,
            dns_record=self.dns_record,
        )

        self.public_ip = self.host.eip.public_ip
        if config.https:
            self.ui_url = pulumi.Output.from_input(f"https://{config.domain}")
            self.api_url = pulumi.Output.from_input(f"https://{config.domain}{API_PATH}")
        else:
            self.ui_url = pulumi.Output.concat("http://", self.public_ip, f":{network.UI_PORT}")
            self.api_url = pulumi.Output.concat("http://", self.public_ip, f":{network.API_PORT}")
        key_file = "sirius-demo.pem" if self.key.generated else "<your private key>"
        self.ssh_command = pulumi.Output.concat("ssh -i ", key_file, f" {SSH_USER}@", self.public_ip)
        self.register_outputs(
            {"publicIp": self.public_ip, "uiUrl": self.ui_url, "apiUrl": self.api_url,
             "instanceId": self.host.instance.id, "health": self.remote.report}
        )
