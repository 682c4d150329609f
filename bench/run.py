"""Deploy benchmark on the stand-in images: ratios measured in one run.

    sudo venv/bin/python -m bench.run [--pairs 5]

Starts the tests' private dockerd and registry (testbed/harness.py), then takes
pairs in turn and reports each figure as the median of the pairs' ratios:

  fresh_vs_floor            deploy.sh on an empty engine vs. the floor
                            `docker compose pull && docker compose up -d --wait`
                            on the same project and images          (target <= 1.15)
  leaf_tag_change_vs_fresh  v1 -> v2 (only the UI image changed), in place,
                            vs. a fresh deploy of v2                 (target <= 0.5)
  noop_vs_fresh             deploying the running tag again vs. fresh (target <= 0.2)
  ssh_leaf_tag_change_vs_fresh  the same UI-only change through the remote
                            command the program generates, over SSH   (target <= 0.5)

Images are removed from the engine before every fresh run, so pulls are real.
Writes bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from infra import bootstrap, commands
from testbed.harness import (
    SERVICE_IMAGES,
    TAG_V1,
    TAG_V2,
    DockerEngine,
    Registry,
    StandIns,
    check_ports_free,
    host_session_lock,
    make_sirius_repo,
    remove_project,
    remove_sirius_images,
    write_loopback_override,
)
from testbed.sshd import SshHost

RESULTS = Path(__file__).resolve().parent / "results.json"
TARGETS = {
    "fresh_vs_floor": 1.15,
    "leaf_tag_change_vs_fresh": 0.5,
    "noop_vs_fresh": 0.2,
    "ssh_leaf_tag_change_vs_fresh": 0.5,
}


class Bench:
    def __init__(self, engine: DockerEngine, registry: Registry, repo_url: str, work: Path):
        self.engine = engine
        self.registry = registry
        self.repo_url = repo_url
        self.work = work

    def spec(self, tag: str) -> commands.DeploySpec:
        return commands.DeploySpec(
            repo_url=self.repo_url, ref="main", git_ref="main", image_tag=tag, public_host="127.0.0.1",
            health_timeout=300, registry=f"{self.registry.host}/siriusscan", project_dir=str(self.work / "sirius"),
            state_dir=str(self.work / "state"), min_free_gb=1,
        )

    def reset(self) -> None:
        """Empty engine: no project, no images, no checkout; the registry keeps its images."""
        remove_project(self.engine)
        remove_sirius_images(self.engine)
        for name in ("sirius", "state", "floor"):
            shutil.rmtree(self.work / name, ignore_errors=True)

    def timed(self, argv: list[str], cwd: Path | None = None, stdin: str | None = None) -> float:
        started = time.perf_counter()
        result = subprocess.run(argv, cwd=cwd, env=self.engine.env, input=stdin, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
        return elapsed

    def deploy(self, tag: str) -> float:
        return self.timed(commands.deploy_argv(self.spec(tag), bin_dir=str(bootstrap.HOST_DIR)))

    def fresh(self, tag: str) -> float:
        self.reset()
        return self.deploy(tag)

    def floor(self, tag: str) -> float:
        """The plain compose path on the same project and images, timed from the same start."""
        self.reset()
        checkout = self.work / "floor"
        started = time.perf_counter()
        subprocess.run(["git", "clone", "-q", "--depth", "1", self.repo_url, str(checkout)], check=True)
        (checkout / "secrets").mkdir(exist_ok=True)
        (checkout / "secrets" / "sirius_api_key.txt").write_text("0" * 64)
        (checkout / ".env").write_text(
            "POSTGRES_PASSWORD=p\nDATABASE_URL=postgresql://postgres:p@sirius-postgres:5432/sirius\n"
            f"NEXTAUTH_SECRET=s\nINITIAL_ADMIN_PASSWORD=a\nIMAGE_TAG={tag}\n"
            "SIRIUS_API_KEY_FILE=/run/secrets/sirius_api_key\n"  # as upstream's installer writes it
        )
        override = "services:\n" + "".join(
            f"  {service}:\n    image: {self.registry.host}/siriusscan/{image}:{tag}\n"
            for service, image in SERVICE_IMAGES.items()
        )
        (checkout / "registry.yaml").write_text(override)
        # the fixture publishes on all addresses, like upstream: bind them to 127.0.0.1 here
        compose = ["docker", "compose", "-f", "docker-compose.yaml", "-f", write_loopback_override(checkout),
                   "-f", "registry.yaml"]
        for args in (["pull", "--quiet"], ["up", "-d", "--wait"]):
            result = subprocess.run(compose + args, cwd=checkout, env=self.engine.env, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"floor {args[0]} failed: {result.stderr[-2000:]}")
        return time.perf_counter() - started


def ssh_tag_change(bench: Bench, ssh: SshHost) -> float:
    """v1 deployed, then v2 through the exact remote deploy command the program builds."""
    bench.fresh(TAG_V1)
    command = commands.shell(commands.sudo(commands.deploy_argv(bench.spec(TAG_V2), bin_dir=str(bootstrap.HOST_DIR))))
    started = time.perf_counter()
    result = ssh.run(command)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"ssh deploy failed: {result.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5, help="pairs per figure (default 5)")
    args = parser.parse_args()

    with host_session_lock():  # the real-Docker tests share these ports
        return measure(args.pairs)


def measure(pairs: int) -> int:
    check_ports_free(wait=30)
    work = Path(tempfile.mkdtemp(prefix="sdb-", dir="/tmp"))
    engine, registry = DockerEngine(), Registry()
    images = None
    try:
        engine.start()
        registry.start()
        images = StandIns(engine, registry)
        images.publish()
        bench = Bench(engine, registry, make_sirius_repo(work / "sirius.git", registry.host), work)
        ratios: dict[str, list[float]] = {key: [] for key in TARGETS}
        seconds: dict[str, list[float]] = {k: [] for k in ("fresh", "floor", "leaf", "noop", "ssh_leaf")}
        with SshHost(engine.env) as ssh:
            for pair in range(pairs):
                # Alternate which side of a pair runs first, so drift hits both.
                if pair % 2:
                    floor, fresh = bench.floor(TAG_V1), bench.fresh(TAG_V1)
                else:
                    fresh, floor = bench.fresh(TAG_V1), bench.floor(TAG_V1)
                ratios["fresh_vs_floor"].append(fresh / floor)
                if not pair % 2:
                    bench.fresh(TAG_V1)  # the floor's project is running: start from ours (untimed)
                noop = bench.deploy(TAG_V1)  # v1 is running: deploy it again
                ratios["noop_vs_fresh"].append(noop / fresh)
                leaf = bench.deploy(TAG_V2)  # v1 running -> v2, only the UI changed
                fresh_v2 = bench.fresh(TAG_V2)
                ratios["leaf_tag_change_vs_fresh"].append(leaf / fresh_v2)
                ssh_leaf = ssh_tag_change(bench, ssh)
                ratios["ssh_leaf_tag_change_vs_fresh"].append(ssh_leaf / fresh_v2)
                for key, value in (("fresh", fresh), ("floor", floor), ("leaf", leaf), ("noop", noop),
                                   ("ssh_leaf", ssh_leaf)):
                    seconds[key].append(value)
                print(f"pair {pair + 1}/{pairs}: fresh {fresh:.1f}s floor {floor:.1f}s noop {noop:.1f}s "
                      f"leaf {leaf:.1f}s fresh(v2) {fresh_v2:.1f}s ssh leaf {ssh_leaf:.1f}s", flush=True)
        bench.reset()
        results = {key: round(statistics.median(values), 3) for key, values in ratios.items()}
        results["pairs"] = pairs
        results["median_seconds"] = {key: round(statistics.median(v), 2) for key, v in seconds.items()}
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\n{'figure':<30} {'ratio':>6} {'target':>7}")
        for key, target in TARGETS.items():
            mark = "ok" if results[key] <= target else "MISSED"
            print(f"{key:<30} {results[key]:>6.3f} {'<= ' + str(target):>7}  {mark}")
        print(f"\nmedian seconds: {results['median_seconds']}\nwritten to {RESULTS}")
        return 0
    finally:
        if images is not None:
            images.close()
        registry.close()
        engine.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
