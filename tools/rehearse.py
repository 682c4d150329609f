"""Rehearse a deploy on this machine's Docker Engine, without AWS.

    python -m tools.rehearse --ref v1.1.0
    python -m tools.rehearse --ref pr-42 --tag pr-42-amd64
    python -m tools.rehearse --ref main --registry 127.0.0.1:5000/siriusscan --repo file:///srv/sirius.git
    python -m tools.rehearse --domain demo.sirius.test --acme-ca https://127.0.0.1:14000/dir \
        -- --acme-ca-root /tmp/pebble-roots.pem --proxy-http-port 5002   # HTTPS with a private CA
    python -m tools.rehearse --down

Runs the very engine zipapp that the instance runs, with the same flags
(infra/commands.py), so a ref that fails here fails on EC2 too, in a minute instead of
twenty. The UI and API listen on 127.0.0.1 only, and the scanner firewall is left out
(--no-firewall: this machine's iptables are not the demo host's; `-- --firewall` adds it). Progress per phase streams to the
terminal; the report ends as a table with each service's timings and the critical path.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from engine import settings
from infra import bootstrap, commands
from infra.config import ConfigError, parse

DEFAULT_HOME = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sirius-demo" / "rehearsal"


def build_spec(args: argparse.Namespace) -> commands.DeploySpec:
    """Validate the flags with the stack config's own rules, then build the deploy."""
    raw = {"ref": args.ref, "imageTag": args.tag or "", "repoUrl": args.repo, "imageRegistry": args.registry,
           "healthTimeout": str(args.health_timeout), "sshCidrs": "127.0.0.1/32", "domain": args.domain,
           "acmeCa": args.acme_ca, "acmeEmail": args.acme_email, "rollback": args.rollback, "demoData": args.demo_data}
    config = parse(raw, stack="rehearsal")
    home = Path(args.home).resolve()
    return commands.DeploySpec(
        repo_url=config.repo_url,
        ref=config.ref,
        git_ref=config.git_ref,
        image_tag=config.image_tag,
        public_host=config.domain or "localhost",
        health_timeout=config.health_timeout,
        registry=config.image_registry,
        project_dir=str(home / "sirius"),
        state_dir=str(home / "state"),
        bind_address="127.0.0.1",
        build_timeout=args.build_timeout,
        pull_attempts=args.pull_attempts,
        pull_delay=args.pull_delay,
        min_free_gb=args.min_free_gb,
        rollback=config.rollback,
        demo_data=config.demo_data,
        domain=config.domain,
        acme_email=config.acme_email,
        acme_ca=config.acme_ca,
        # This machine's firewall is not the demo host's: no DOCKER-USER rules, no boot unit
        # here (a test Engine runs without iptables). `-- --firewall` puts them in anyway.
        firewall=False,
    )


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_report(report: dict) -> str:
    """The deploy report as a table a person reads at a glance (Kamal's deploy output is the model)."""
    lines = [
        f"status: {report.get('status')}  tag: {report.get('imageTag')}  ref: {report.get('ref')}"
        f"  commit: {(report.get('commit') or '')[:12]}  total: {report.get('totalSeconds')}s",
    ]
    if report.get("error"):
        lines.append(f"error: {report['error']}")
    for image, fallback in (report.get("imageFallbacks") or {}).items():
        lines.append(f"WARNING: {image} runs {fallback['running']}, not {fallback['wanted']}: other commits' images")
    if report.get("startIntervalNote"):
        lines.append(f"note: health checks at upstream's intervals: {report['startIntervalNote']}")
    phases = report.get("phases") or {}
    lines.append("phase     seconds")
    lines += [f"{name:<9} {phases[name]:>7}" for name in ("install", "fetch", "check", "pull", "build", "up", "healthy")
              if name in phases]
    services = report.get("services") or {}
    if services:
        width = max(len(name) for name in services)
        lines.append(f"{'service':<{width}}  {'health':<10} {'created':>7} {'started':>7} {'healthy':>7}  "
                     f"{'built':<5} {'recreated':<9} image")
        for name in sorted(services, key=lambda n: (services[n].get("healthySeconds") is None, services[n].get("healthySeconds") or 0, n)):
            s = services[name]
            digest = (s.get("digest") or "")[:19]
            image = s.get("image", "") + (f" ({digest})" if digest else "")
            lines.append(
                f"{name:<{width}}  {s.get('health', ''):<10} {_seconds(s.get('createdSeconds')):>7} "
                f"{_seconds(s.get('startedSeconds')):>7} {_seconds(s.get('healthySeconds')):>7}  "
                f"{'yes' if s.get('builtLocally') else 'no':<5} {'yes' if s.get('recreated') else 'no':<9} {image}"
            )
    path = report.get("criticalPath") or []
    if path:
        lines.append("critical path: " + " -> ".join(
            f"{name} ({_seconds((services.get(name) or {}).get('healthySeconds'))}s)" for name in path))
    lines += _after_the_gate(report)
    return "\n".join(lines)


def _after_the_gate(report: dict) -> list[str]:
    """Rollback, demo data and disk care, one line each when they happened."""
    lines = []
    rollback = report.get("rollback") or {}
    if rollback.get("status") == "healthy":
        to = rollback.get("to") or {}
        lines.append(f"ROLLED BACK in {rollback.get('seconds')}s: serving ref {to.get('ref')}, tag {to.get('imageTag')}, "
                     f"commit {(to.get('commit') or '')[:12]}")
    elif rollback:
        lines.append(f"rollback {rollback.get('status')}: {rollback.get('reason')}")
    demo = report.get("demoData") or {}
    if demo:
        lines.append(f"demo data: {demo.get('loaded')} hosts loaded" + (f" ({demo['reason']})" if demo.get("reason") else ""))
    disk = report.get("disk") or {}
    if disk:
        lines.append(f"disk: {disk.get('removedImages')} unused images removed, "
                     f"{disk.get('freeGbBefore')} -> {disk.get('freeGbAfter')} GiB free")
    return lines


def run_deploy(spec: commands.DeploySpec, home: Path, engine_args: list[str] = ()) -> tuple[int, dict | None]:
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


def down(home: Path) -> int:
    project = home / "sirius"
    if not (project / "docker-compose.yaml").exists():
        print(f"nothing to remove under {home}")
        return 0
    argv = ["docker", "compose", "--project-directory", str(project), "-f", str(project / "docker-compose.yaml"),
            "down", "--volumes", "--remove-orphans"]
    return subprocess.run(argv).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rehearse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="main", help="Sirius git ref (default main)")
    parser.add_argument("--tag", help="image tag (default: derived from --ref)")
    parser.add_argument("--registry", default=commands.DEFAULT_REGISTRY, help="registry/namespace of the images")
    parser.add_argument("--repo", default=settings.REPO_URL, help="git URL of the project")
    parser.add_argument("--home", default=str(DEFAULT_HOME), help=f"working directory (default {DEFAULT_HOME})")
    parser.add_argument("--health-timeout", type=int, default=600)
    parser.add_argument("--build-timeout", type=int)
    parser.add_argument("--pull-attempts", type=int)
    parser.add_argument("--pull-delay", type=int)
    parser.add_argument("--min-free-gb", type=int)
    parser.add_argument("--domain", default="", help="HTTPS through the proxy for this name (default: none)")
    parser.add_argument("--acme-ca", default="production", help="production, staging or an ACME directory URL")
    parser.add_argument("--acme-email", default="")
    parser.add_argument("--no-rollback", dest="rollback", action="store_false")
    parser.add_argument("--no-demo-data", dest="demo_data", action="store_false")
    parser.add_argument("--down", action="store_true", help="remove the rehearsal's containers and volumes")
    parser.add_argument("engine_args", nargs=argparse.REMAINDER,
                        help="after --: more engine flags, e.g. -- --acme-ca-root FILE (the engine checks them)")
    args = parser.parse_args(argv)
    args.engine_args = args.engine_args[1:] if args.engine_args[:1] == ["--"] else args.engine_args

    if args.down:
        return down(Path(args.home))
    try:
        spec = build_spec(args)
    except ConfigError as err:
        parser.exit(2, f"{err}\n")
    print(f"rehearsing {spec.ref} (tag {spec.image_tag}) from {spec.repo_url} on the local Docker Engine", file=sys.stderr)
    code, report = run_deploy(spec, Path(args.home).resolve(), args.engine_args)
    print(format_report(report) if report else "the engine printed no report")
    return code


if __name__ == "__main__":
    sys.exit(main())
