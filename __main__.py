"""sirius-demo: a live Sirius Scan demo on EC2, from prebuilt images.

Reads and validates the stack config (infra/config.py), builds the demo component
(infra/demo.py) and exports what a user needs to reach it.
"""

import pulumi

from infra import config, preflight
from infra.demo import SiriusDemo
from infra.publicip import lookup_public_ipv4

settings = config.load(pulumi.get_stack(), lookup_public_ip=lookup_public_ipv4)
pins = preflight.run(settings)
demo = SiriusDemo("sirius", settings, pins)

pulumi.export("publicIp", demo.public_ip)
pulumi.export("uiUrl", demo.ui_url)
pulumi.export("apiUrl", demo.api_url)
pulumi.export("https", settings.https)  # false: the login crosses the network in clear
if settings.https:
    pulumi.export("domain", settings.domain)
pulumi.export("imageTag", settings.image_tag)
pulumi.export("ref", settings.ref)
pulumi.export("instanceId", demo.host.instance.id)
pulumi.export("imageTags", pins.tags)
# What the last deploy was asked to run (empty with preflight: false): the canary's inputs.
pulumi.export("imageDigests", pins.digests)
pulumi.export("commit", pins.commit)
pulumi.export("sshCommand", demo.ssh_command)
pulumi.export("health", demo.remote.report)
pulumi.export("deploySeconds", demo.remote.deploy_seconds)
pulumi.export("adminPassword", demo.remote.admin_password)
pulumi.export("nightlyReset", settings.nightly_reset)
if demo.remote.reset is not None:
    # What .github/workflows/reset.yml replaces to reset the demo (docs/reset.md).
    pulumi.export("resetUrn", demo.remote.reset.urn)
if demo.key.generated:
    # Save it with: pulumi stack output --show-secrets sshPrivateKey > sirius-demo.pem && chmod 600 sirius-demo.pem
    pulumi.export("sshPrivateKey", demo.key.private_key)
