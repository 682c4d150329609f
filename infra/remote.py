"""Deploy and health over SSH (pulumi-command), after the instance has booted.

wait for boot -> install the deploy engine -> deploy the tag -> health report, plus
the admin password read back as a secret, and the reset command the nightly reset
workflow replaces (unless nightlyReset is off). pulumi-command runs a command again whenever
any of its inputs changes: for the deploy that is its triggers (a new instance, ref,
image tag, per-image tag, deploy engine, and the image digests and commit the preflight
pinned: docs/canary.md) and its command line itself, which carries
healthTimeout, repoUrl, imageRegistry, the public address and, with a domain, domain,
acmeCa and acmeEmail. Each re-run deploys in
place; the instance itself is never touched. The `health` output is the report taken
right after the last deploy, not a live reading. Values reach the commands on
the command line, quoted by infra/commands.py (`environment` would need AcceptEnv,
which Ubuntu does not allow); no secret is ever on a command line.
"""

from __future__ import annotations

import pulumi
from pulumi_command import remote

from engine import rules
from engine.bootstrap import PREPULL_SECONDS
from infra import bootstrap, commands
from infra.config import DemoConfig
from infra.instance import SSH_USER
from infra.preflight import Pins, offline_note

# A new instance takes a minute or two before sshd answers: ~40 dials of up to 15 s.
DIAL_ATTEMPTS = 40
DIAL_TIMEOUT = 15
# Boot = the OS setup (Docker from its apt repository, a few minutes at worst), then the pull
# of the first deploy's images (at most engine.bootstrap.PREPULL_SECONDS).
BOOT_SETUP_SECONDS = 900 + PREPULL_SECONDS
# The longest `pulumi up` the settings allow (longest_up_seconds): the workflows' job timeouts
# cover it, because a job killed halfway through an update leaves the stack locked.
RESOURCES_SECONDS = 600  # the AWS resources before the first command (instance, Elastic IP, DNS record)
DEPLOY_MARGIN_SECONDS = 900  # fetch and pull retries, up's minimum, the certificate, health, password


def engine_run_seconds(health_timeout: int, build_timeout: int, *, falls_back: bool) -> int:
    """One `engine deploy` or `engine reset` on the host: its deadline (healthTimeout, which a
    wait for the host's deploy lock shares), local builds (added to it), a rollback or a
    reset's fallback with a fresh healthTimeout, and the margin."""
    return health_timeout + build_timeout + (health_timeout if falls_back else 0) + DEPLOY_MARGIN_SECONDS


def longest_up_seconds(health_timeout: int, build_timeout: int, *, nightly_reset: bool = True) -> int:
    """Resources, SSH dials, the boot (OS setup and the first pull), then the deploy and, with
    a nightly reset, the reset command in the same up: Pulumi runs it when it creates it (the
    first up) and reset.yml's up replaces it, after a deploy when the pins moved. The reset
    depends on the deploy, and a deploy that rolls back exits 1 and ends the up: so either a
    deploy with its rollback, or a healthy deploy then a reset with its fallback. A reset
    deploys the same remembered settings, so it may build again."""
    dials = DIAL_ATTEMPTS * DIAL_TIMEOUT
    alone = engine_run_seconds(health_timeout, build_timeout, falls_back=True)
    if nightly_reset:
        then_reset = (engine_run_seconds(health_timeout, build_timeout, falls_back=False)
                      + engine_run_seconds(health_timeout, build_timeout, falls_back=True))
        alone = max(alone, then_reset)
    return RESOURCES_SECONDS + dials + BOOT_SETUP_SECONDS + alone


class RemoteDeploy:
    def __init__(
        self,
        name: str,
        config: DemoConfig,
        *,
        public_ip: pulumi.Output[str],
        private_key: pulumi.Output[str],
        instance: pulumi.Resource,
        boot_ready: list[pulumi.Resource],
        pins: Pins,
        opts: pulumi.ResourceOptions,
        dns_record: pulumi.Resource | None = None,
    ):
        connection = remote.ConnectionArgs(
            host=public_ip,
            user=SSH_USER,
            private_key=private_key,
            dial_error_limit=DIAL_ATTEMPTS,
            per_dial_timeout=DIAL_TIMEOUT,
        )
        spec = public_ip.apply(lambda ip: commands.settings_for(config, ip, image_tags=pins.tags, image_digests=pins.digests,
                                                                commit=pins.commit))
        instance_id = instance.id  # type: ignore[attr-defined]

        def command(suffix: str, depends_on: list[pulumi.Resource], secret_stdout: bool = False,
                    **kwargs) -> remote.Command:
            extra = pulumi.ResourceOptions(
                depends_on=depends_on, additional_secret_outputs=["stdout"] if secret_stdout else None
            )
            return remote.Command(
                f"{name}-{suffix}",
                connection=connection,
                add_previous_output_in_env=False,
                opts=pulumi.ResourceOptions.merge(opts, extra),
                **kwargs,
            )

        self.wait = command(
            "wait-boot",
            [instance, *boot_ready],
            create=spec.apply(
                lambda s: commands.shell(commands.wait_boot_argv(s, BOOT_SETUP_SECONDS))
            ),
            stdin=bootstrap.WAIT_BOOT.read_text(),
            triggers=[instance_id],
            logging=remote.Logging.STDERR,
        )
        engine_digest = bootstrap.engine_digest()
        self.engine = command(
            "engine",
            [self.wait],
            create=commands.install_engine(),
            stdin=bootstrap.encoded_engine(),
            triggers=[instance_id, engine_digest],
            logging=remote.Logging.STDERR,
        )
        self.deploy = command(
            "deploy",
            # The host's proxy asks for its certificate during the deploy: the name must resolve.
            [self.engine, *([dns_record] if dns_record else [])],
            create=spec.apply(lambda s: commands.shell(commands.sudo(commands.deploy_argv(s)))),
            # Re-runs for any change of these triggers or of the command line above (healthTimeout,
            # repoUrl, imageRegistry, the address, domain, acmeCa, acmeEmail): pulumi-command runs
            # `create` again on any input change. pins.trigger(): the digests and the commit the
            # preflight saw (the canary: a moved `latest` or a new commit on main redeploys).
            triggers=[instance_id, config.ref, config.image_tag, dict(sorted(pins.tags.items())), engine_digest,
                      pins.trigger()],
            logging=remote.Logging.STDERR,
        )
        if not pins.pinned:
            self.deploy.urn.apply(lambda urn: pulumi.log.warn(offline_note(urn), resource=self.deploy))
        self.health = command(
            "health",
            [self.deploy],
            create=spec.apply(lambda s: commands.shell(commands.sudo(commands.health_argv(s)))),
            triggers=[self.deploy.stdout],
            logging=remote.Logging.STDERR,
        )
        self.admin_password_command = command(
            "admin-password",
            [self.deploy],
            create=spec.apply(lambda s: commands.shell(commands.read_admin_password(s))),
            triggers=[instance_id],
            logging=remote.Logging.NONE,
            secret_stdout=True,
        )

        # The nightly reset (docs/reset.md): .github/workflows/reset.yml runs a full
        # `pulumi up --replace` of this command, and replacing it runs `create` again:
        # through pulumi's own SSH connection, so the key stays in the stack and sshCidrs
        # `auto` lets the runner in as for a deploy. Its command line names no setting (the
        # engine resets to what the host's last healthy deploy was asked for), so no config change
        # ever re-runs it; Pulumi runs it once when it creates it (nightlyReset turned on).
        # Its report (no secret in it) is logged for the workflow's summary.
        self.reset = None
        if config.nightly_reset != rules.NIGHTLY_RESET_OFF:
            self.reset = command(
                "reset",
                # After the health report and the password are read: a reset wipes the stack first.
                [self.deploy, self.health, self.admin_password_command],
                create=spec.apply(lambda s: commands.shell(commands.sudo(commands.reset_argv(s.state_dir)))),
                logging=remote.Logging.STDOUT_AND_STDERR,
            )

        # The health report taken right after the last deploy (the health command re-runs only
        # when the deploy's output changes): the state then, not now.
        self.report = self.health.stdout.apply(commands.report_of)
        self.deploy_seconds = self.deploy.stdout.apply(lambda out: commands.report_of(out).get("totalSeconds"))
        self.admin_password = pulumi.Output.secret(self.admin_password_command.stdout.apply(lambda out: out.strip()))
