"""Rehearse a deploy on this machine's Docker Engine, without AWS.

    python -m tools.rehearse --ref v1.1.0
    python -m tools.rehearse --ref pr-42 --tag pr-42-amd64
    python -m tools.rehearse --ref main --registry 127.0.0.1:5000/siriusscan --repo file:///srv/sirius.git
    python -m tools.rehearse --domain demo.sirius.test --acme-ca https://127.0.0.1:14000/dir \
        -- --acme-ca-root /tmp/pebble-roots.pem --proxy-http-port 5002   # HTTPS with a private CA
    python -m tools.rehearse --reset    # the nightly reset of the rehearsal's demo (docs/reset.md)
    python -m tools.rehearse --ref main --pin    # the canary's way: the digests and commit the preflight sees
    python -m tools.rehearse --down

Runs the very engine zipapp that the instance runs, with the same flags
(infra/commands.py), so a ref that fails here fails on EC2 too, in a minute instead of
twenty. The UI and API listen on 127.0.0.1 only, and the scanner firewall is left out
(--no-firewall: this machine's iptables are not the demo host's; `-- --firewall` adds it). Progress per phase streams to the
terminal; the report ends as a table with each service's timings and the critical path.
No AWS and no region: everything runs on this machine's Docker Engine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from pulumi import RunError

from engine import report as engine_report
from engine import settings
from infra import bootstrap, commands, preflight
from infra.config import ConfigError, load_schema, parse

DEFAULT_HOME = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sirius-demo" / "rehearsal"


def _flag_of(option: settings.Option) -> str:
    """The rehearsal's flag for an engine option: the engine's, or its --no- form for a setting on by default."""
    return f"--no-{option.flag[2:]}" if option.kind is bool and option.default else option.flag


# The stack setting each flag stands for (the engine's table): its rule checks the flag, its
# default is the flag's. The rehearsal offers the stack settings listed here.
REHEARSED_KEYS = ("ref", "imageTag", "repoUrl", "imageRegistry", "healthTimeout", "domain", "acmeCa", "acmeEmail",
                  "rollback", "demoData")
FLAG_OF_SETTING = {key: _flag_of(settings.BY_KEY[key]) for key in REHEARSED_KEYS}


class FlagError(ValueError):
    """Bad flags, each named by its flag (not the stack setting whose rule refused it)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("invalid flags:\n" + "\n".join(f"  {flag}: {message}" for flag, message in problems))


def build_spec(args: argparse.Namespace) -> settings.Settings:
    try:
        return _build_spec(args)
    except ConfigError as err:
        raise FlagError([(FLAG_OF_SETTING.get(key, key), message) for key, message in err.problems]) from None


def _build_spec(args: argparse.Namespace) -> settings.Settings:
    """Validate the flags with the stack config's own rules, then build the deploy as the program does."""
    raw = {key: getattr(args, settings.BY_KEY[key].name) for key in REHEARSED_KEYS}
    config = parse({**raw, "sshCidrs": "127.0.0.1/32"}, stack="rehearsal")
    home = Path(args.home).resolve()
    overrides = {name: getattr(args, name) for name in ("build_timeout", "pull_attempts", "pull_delay", "min_free_gb")
                 if getattr(args, name) is not None}
    if args.pin:  # what `pulumi up` does: ask the registry and the repository, pin what they say now
        pins = preflight.run(config)
        overrides.update(image_tags=pins.tags, image_digests=pins.digests, commit=pins.commit)
    # This machine's firewall is not the demo host's: no DOCKER-USER rules, no boot unit
    # here (a test Engine runs without iptables). `-- --firewall` puts them in anyway.
    return commands.settings_for(config, config.domain or "localhost", project_dir=str(home / "sirius"),
                                 state_dir=str(home / "state"), bind_address="127.0.0.1", firewall=False, **overrides)


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_report(report: dict) -> str:
    """The deploy report as a table a person reads at a glance (Kamal's deploy output is the model)."""
    r = engine_report.from_json(report)  # the engine's own reader: every key there, old reports included
    lines = [
        f"status: {r.status}  tag: {r.image_tag}  ref: {r.ref}  commit: {(r.commit or '')[:12]}  total: {r.total_seconds}s",
    ]
    if r.error:
        lines.append(f"error: {r.error}")
    for image, change in sorted(r.moved.items()):
        lines.append(f"moved: {image} {change.get('from') or 'a local build'} -> {change.get('to') or 'a local build'}")
    if r.commit_range:
        lines.append(f"commits: {r.commit_range.get('from')}..{r.commit_range.get('to')}")
    for image, fallback in r.image_fallbacks.items():
        lines.append(f"WARNING: {image} runs {fallback['running']}, not {fallback['wanted']}: other commits' images")
    if r.start_interval_note:
        lines.append(f"note: health checks at upstream's intervals: {r.start_interval_note}")
    lines.append("phase     seconds")
    lines += [f"{name:<9} {value:>7}" for name, value in engine_report.to_json(r.phases).items()]
    services = r.services
    if services:
        width = max(len(name) for name in services)
        lines.append(f"{'service':<{width}}  {'health':<10} {'created':>7} {'started':>7} {'healthy':>7}  "
                     f"{'built':<5} {'recreated':<9} image")
        for name in sorted(services, key=lambda n: (services[n].healthy_seconds is None, services[n].healthy_seconds or 0, n)):
            s = services[name]
            digest = (s.digest or "")[:19]
            lines.append(
                f"{name:<{width}}  {s.health:<10} {_seconds(s.created_seconds):>7} "
                f"{_seconds(s.started_seconds):>7} {_seconds(s.healthy_seconds):>7}  "
                f"{'yes' if s.built_locally else 'no':<5} {'yes' if s.recreated else 'no':<9} "
                f"{s.image + (f' ({digest})' if digest else '')}"
            )
    if r.critical_path:
        lines.append("critical path: " + " -> ".join(
            f"{name} ({_seconds(services[name].healthy_seconds if name in services else None)}s)" for name in r.critical_path))
    lines += _after_the_gate(r)
    return "\n".join(lines)


def _after_the_gate(r) -> list[str]:
    """Rollback, demo data and disk care of the report `r` (engine/report.py), one line each
    when they happened."""
    lines = []
    if isinstance(r, engine_report.ResetReport):
        reset = r.reset
        lines.append(f"reset: the demo is {reset.demo}; removed the containers of {len(reset.removed_services)} "
                     f"services and the volumes {' '.join(reset.removed_volumes) or '(none)'}")
    rollback = r.rollback
    if rollback and rollback.status == "healthy":
        to = rollback.to or engine_report.Served()
        lines.append(f"ROLLED BACK in {rollback.seconds}s: serving ref {to.ref}, tag {to.image_tag}, "
                     f"commit {(to.commit or '')[:12]}")
    elif rollback:
        lines.append(f"rollback {rollback.status}: {rollback.reason}")
    if demo := r.demo_data_line():
        lines.append(f"demo data: {demo}")
    if r.disk:
        lines.append(f"disk: {r.disk.removed_images} unused images removed, "
                     f"{r.disk.free_gb_before} -> {r.disk.free_gb_after} GiB free")
    return lines


def run_deploy(spec: settings.Settings, home: Path, engine_args: list[str] = ()) -> tuple[int, dict | None]:
    """Run the engine zipapp; progress goes straight to our stderr, the report is parsed from stdout."""
    home.mkdir(parents=True, exist_ok=True)
    engine = home / "engine.pyz"
    engine.write_bytes(bootstrap.engine_archive())
    argv = [*commands.deploy_argv(spec, engine=str(engine)), *engine_args]
    result = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    try:
        return result.returncode, commands.report_of(result.stdout)
    except ValueError:
        return result.returncode, None


def run_reset(home: Path, engine_args: list[str] = ()) -> tuple[int, dict | None]:
    """`engine reset` of the rehearsal's demo: its last healthy deploy's settings again, on fresh data."""
    home.mkdir(parents=True, exist_ok=True)
    engine = home / "engine.pyz"
    engine.write_bytes(bootstrap.engine_archive())
    result = subprocess.run([*commands.reset_argv(str(home / "state"), engine=str(engine)), *engine_args],
                            stdout=subprocess.PIPE, text=True)
    try:
        return result.returncode, commands.report_of(result.stdout)
    except ValueError:
        return result.returncode, None


def down(home: Path) -> int:
    project = home / "sirius"
    if not (project / "docker-compose.yaml").exists():
        print(f"nothing to remove under {home}")
        return 0
    argv = ["docker", "compose", "--project-directory", str(project), "-f", str(project / "docker-compose.yaml"),
            "down", "--volumes", "--remove-orphans"]
    return subprocess.run(argv).returncode


def make_parser() -> argparse.ArgumentParser:
    """Every flag with its help and its default: the stack settings' defaults (Pulumi.yaml), the engine's."""
    schema = {key: setting.default for key, setting in load_schema().items()}
    engine = {f.name: f.default for f in fields(settings.Settings)}
    parser = argparse.ArgumentParser(prog="python -m tools.rehearse", description=__doc__.split("\n\n")[0],
                                     epilog="The stack setting each flag stands for, and its rule: docs/operations.md.")
    add = parser.add_argument
    add("--ref", default=schema["ref"], help="Sirius git branch, tag, pr-N or commit (setting ref; default %(default)s)")
    add("--tag", dest="image_tag", default=schema["imageTag"],
        help="image tag of every service (setting imageTag; default: derived from --ref, e.g. latest for main)")
    add("--registry", default=schema["imageRegistry"], help="registry/namespace of the images (default %(default)s)")
    add("--repo", dest="repo_url", default=schema["repoUrl"], help="git URL of the Sirius compose project, https:// or file:// "
        "(default %(default)s)")
    add("--home", default=str(DEFAULT_HOME), help="working directory of the rehearsal (default %(default)s)")
    add("--health-timeout", type=int, default=int(schema["healthTimeout"]),
        help="seconds the deploy may take to become healthy, 60 to 3600 (default %(default)s)")
    for flag, what in (("--build-timeout", "seconds local builds may take in all"),
                       ("--pull-attempts", "tries per image pull"),
                       ("--pull-delay", "seconds before the first pull retry, doubling"),
                       ("--min-free-gb", "GiB Docker's disk must have free")):
        add(flag, type=int, help=f"{what} (default: the engine's, {engine[flag[2:].replace('-', '_')]:g})")
    add("--domain", default=schema["domain"], help="serve HTTPS through the proxy for this DNS name (default: none, "
        "plain HTTP on 127.0.0.1:3000 and :9001)")
    add("--acme-ca", default=schema["acmeCa"], help="with --domain: production, staging or an https:// ACME "
        "directory URL (default %(default)s)")
    add("--acme-email", default=schema["acmeEmail"], help="with --domain: the ACME account's email (default: none)")
    add("--no-rollback", dest="rollback", action="store_false",
        help="leave a failed deploy running instead of putting back the last healthy one (default: roll back)")
    add("--no-demo-data", dest="demo_data", action="store_false",
        help="do not load the demo company's hosts after the first healthy deploy (default: load them)")
    add("--pin", action="store_true", help="run the preflight first and pin its image digests and the ref's commit, "
        "as pulumi up does (docs/canary.md; default: the tags as they are)")
    add("--reset", action="store_true", help="reset the rehearsal's demo as the nightly reset does, after a deploy "
        "(docs/reset.md; default: deploy)")
    add("--down", action="store_true", help="remove the rehearsal's containers and volumes, then stop "
        "(default: deploy)")
    add("engine_args", nargs=argparse.REMAINDER, help="after --: more engine flags, e.g. -- --acme-ca-root FILE "
        "(the engine checks them; default: none)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    args.engine_args = args.engine_args[1:] if args.engine_args[:1] == ["--"] else args.engine_args

    if args.down:
        return down(Path(args.home))
    if args.reset:
        code, report = run_reset(Path(args.home).resolve(), args.engine_args)
        print(format_report(report) if report else "the engine printed no report")
        return code
    try:
        spec = build_spec(args)
    except FlagError as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    except RunError as err:  # the preflight's (--pin): registry unreachable, tag or ref missing
        parser.exit(2, f"{parser.prog}: --pin: {err}\n")
    print(f"rehearsing {spec.ref} (tag {spec.image_tag}) from {spec.repo_url} on the local Docker Engine", file=sys.stderr)
    code, report = run_deploy(spec, Path(args.home).resolve(), args.engine_args)
    print(format_report(report) if report else "the engine printed no report")
    return code


if __name__ == "__main__":
    sys.exit(main())
