"""Deploy benchmark on the stand-in images and upstream's compose: ratios measured
side by side in one run.

    sudo venv/bin/python -m bench.run [--pairs 3]

Starts the testbed's private dockerd and registry (testbed/README.md), a Sirius-shaped
repo whose compose file is upstream's (real health-check intervals: 10 s and 30 s, no
start period), then takes rounds in turn; each figure is the median of its ratios:

  fresh_vs_ready_floor       our fresh deploy vs the stack's own readiness floor: plain
                             `docker compose pull && up -d --wait` of the same images
                             with a 1 s start_interval override          (target <= 1.2)
  fresh_vs_upstream_compose  our fresh deploy vs plain upstream `docker compose pull &&
                             up -d --wait`                              (target <= 0.35)
  ui_tag_change_vs_fresh     v1 -> v2 in place (only the UI image changed) (<= 0.35)
  api_tag_change_vs_fresh    v1 -> the API image of pr-7, in place (api and migrate) (<= 0.5)
  noop_vs_fresh              deploying the running tag again             (<= 0.1)
  ssh_ui_tag_change_vs_fresh the UI change through the program's remote command,
                             over SSH                                    (<= 0.4)
  rollback_vs_fresh          v1 -> api-crash (the API exits at start): the rollback's own
                             seconds (report) back to a healthy v1, vs a fresh v1 (<= 0.5)
  reset_vs_fresh             `engine reset` of a running v1 (fresh containers and data
                             volumes, pull, gate, demo data), vs a fresh v1 deploy (<= 1.0:
                             never slower than a new deploy; docs/reset.md)

`--only FIGURE` (repeatable) measures just those figures, each still side by side with its
own fresh deploy in every round, and updates only their entries in bench/results.json.

And one figure in seconds, not a ratio: a visitor probing http://127.0.0.1:3000/ at 10 Hz
(testbed/probe.py) through the UI tag change:

  ui_tag_change_unavailable_seconds  seconds of the proxy's "being updated" page (503) per
                             UI tag change; `ui_tag_change_probe` adds each run's seconds and
                             the refused connections and other errors seen (target: 0)

    sudo venv/bin/python -m bench.run --only ui-unavailable [--pairs 3]

measures that figure alone (a fresh v1, then v1 -> v2 under the probe, per round) and
updates only its keys in bench/results.json.

Every deploy runs with the defaults: a fresh one loads the demo data (from the moment
the API passes its check, timed with the deploy), and each healthy one ends with disk care.

Images are removed from the engine before every fresh run, so pulls are real. Every
plain compose run binds the fixture's ports to 127.0.0.1. Writes bench/results.json.
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

from engine.settings import Settings
from infra import bootstrap, commands
from testbed.acme import proxy_standin
from testbed.compose_checkout import compose_files, remove_project, write_runtime_files
from testbed.docker_engine import DockerEngine
from testbed.fixture_repo import make_sirius_repo
from testbed.ports import check_ports_free, host_session_lock
from testbed.probe import Probe
from testbed.registry import Registry
from testbed.sshd import SshHost
from testbed.standins import (
    SERVICE_IMAGES,
    TAG_API_CRASH,
    TAG_PR,
    TAG_V1,
    TAG_V2,
    StandIns,
    remove_sirius_images,
)

RESULTS = Path(__file__).resolve().parent / "results.json"
TARGETS = {
    "fresh_vs_ready_floor": 1.2,
    "fresh_vs_upstream_compose": 0.35,
    "ui_tag_change_vs_fresh": 0.35,
    "api_tag_change_vs_fresh": 0.5,
    "noop_vs_fresh": 0.1,
    "ssh_ui_tag_change_vs_fresh": 0.4,
    "rollback_vs_fresh": 0.5,
    "reset_vs_fresh": 1.0,
}
API_CHANGE = {"sirius-api": TAG_PR}  # pr-7's API build, every other image as v1
UNAVAILABLE = "ui-unavailable"  # --only: ui_tag_change_unavailable_seconds alone
UI_URL = "http://127.0.0.1:3000/"  # what a visitor opens (rules.UI_PORT, through the proxy)


class Bench:
    def __init__(self, engine: DockerEngine, registry: Registry, repo_url: str, work: Path):
        self.engine = engine
        self.registry = registry
        self.repo_url = repo_url
        self.work = work
        self.zipapp = work / "engine.pyz"
        self.zipapp.write_bytes(bootstrap.engine_archive())

    def spec(self, tag: str, image_tags: dict[str, str] | None = None) -> Settings:
        return Settings(
            repo_url=self.repo_url, ref="main", git_ref="main", image_tag=tag, public_host="127.0.0.1",
            health_timeout=300, registry=f"{self.registry.host}/siriusscan", project_dir=str(self.work / "sirius"),
            state_dir=str(self.work / "state"), min_free_gb=1, bind_address="127.0.0.1", image_tags=image_tags or {},
            firewall=False,  # the test Engine runs without iptables: no DOCKER-USER to hook into
        )

    def reset(self) -> None:
        """Empty engine: no project, no images, no checkout; the registry keeps its images."""
        remove_project(self.engine)
        remove_sirius_images(self.engine)
        for name in ("sirius", "state", "plain"):
            shutil.rmtree(self.work / name, ignore_errors=True)

    def timed(self, argv: list[str], cwd: Path | None = None) -> float:
        started = time.perf_counter()
        result = subprocess.run(argv, cwd=cwd, env=self.engine.env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])} failed ({result.returncode}): {result.stderr[-2000:]}")
        return elapsed

    def deploy(self, tag: str, image_tags: dict[str, str] | None = None) -> float:
        return self.timed(commands.deploy_argv(self.spec(tag, image_tags), engine=str(self.zipapp)))

    def probed(self, tag: str) -> tuple[float, dict]:
        """Deploy `tag` while a visitor probes the UI: (seconds, the probe's summary)."""
        with Probe(UI_URL) as probe:
            seconds = self.deploy(tag)
        return seconds, probe.result.summary()

    def rollback_seconds(self, bad_tag: str) -> float:
        """A bad tag over the running stack: the seconds the report gives its rollback."""
        argv = commands.deploy_argv(self.spec(bad_tag), engine=str(self.zipapp))
        result = subprocess.run(argv, env=self.engine.env, capture_output=True, text=True)
        report = json.loads(result.stdout.strip().splitlines()[-1])
        if result.returncode == 0 or report["status"] != "rolled-back":
            raise RuntimeError(f"{bad_tag} was not rolled back: {report['status']}: {result.stderr[-2000:]}")
        return report["rollback"]["seconds"]

    def demo_reset(self) -> float:
        """`engine reset` of the running stack, as the host runs it; it must end `reset`."""
        argv = commands.reset_argv(str(self.work / "state"), engine=str(self.zipapp))
        started = time.perf_counter()
        result = subprocess.run(argv, env=self.engine.env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        report = json.loads(result.stdout.strip().splitlines()[-1])
        if result.returncode != 0 or report["status"] != "reset":
            raise RuntimeError(f"the reset ended {report['status']}: {result.stderr[-2000:]}")
        return elapsed

    def fresh(self, tag: str, image_tags: dict[str, str] | None = None) -> float:
        self.reset()
        return self.deploy(tag, image_tags)

    def plain_compose(self, tag: str, fast_health: bool) -> float:
        """Plain compose on the same project and images, timed from the same start: what
        upstream's README does (with the installer's .env), optionally with 1 s checks."""
        self.reset()
        checkout = self.work / "plain"
        started = time.perf_counter()
        subprocess.run(["git", "clone", "-q", "--depth", "1", self.repo_url, str(checkout)], check=True)
        write_runtime_files(checkout)
        images = "services:\n" + "".join(
            f"  {service}:\n    image: {self.registry.host}/siriusscan/{image}:{tag}\n"
            for service, image in SERVICE_IMAGES.items())
        (checkout / "registry.yaml").write_text(images)
        files = compose_files(checkout, fast_health=fast_health, extra=["registry.yaml"])
        compose = ["docker", "compose", *(a for f in files for a in ("-f", f))]
        for args in (["pull", "--quiet"], ["up", "-d", "--wait"]):
            self.timed(compose + args, cwd=checkout)
        elapsed = time.perf_counter() - started
        remove_project(self.engine)
        return elapsed


def ssh_ui_change(bench: Bench, ssh: SshHost) -> float:
    """v1 deployed, then v2 through the exact remote deploy command the program builds."""
    bench.fresh(TAG_V1)
    argv = commands.sudo(commands.deploy_argv(bench.spec(TAG_V2), engine=str(bench.zipapp)))
    started = time.perf_counter()
    result = ssh.run(commands.shell(argv))
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"ssh deploy failed: {result.stderr[-2000:]}")
    return elapsed


def reset_round(bench: Bench, pair: int) -> dict[str, float]:
    """A reset of a running v1 and a fresh v1, in turns (so drift hits both)."""
    got = {}
    if pair % 2 == 0:
        got["fresh_for_reset"] = bench.fresh(TAG_V1)
        got["reset"] = bench.demo_reset()
    else:
        bench.fresh(TAG_V1)  # untimed: the stack the reset starts from
        got["reset"] = bench.demo_reset()
        got["fresh_for_reset"] = bench.fresh(TAG_V1)
    return got


def probe_figures(summaries: list[dict]) -> dict:
    """The results' keys for the UI tag changes a visitor probed."""
    runs = [s["unavailableSeconds"] for s in summaries]
    return {"ui_tag_change_unavailable_seconds": round(statistics.median(runs), 2),
            "ui_tag_change_probe": {"runs": runs, "refused": sum(s["refused"] for s in summaries),
                                    "errors": sum(s["errors"] for s in summaries),
                                    "problems": [p for s in summaries for p in s["firstProblems"]][:10]}}


def print_probe(figures: dict) -> None:
    probe = figures["ui_tag_change_probe"]
    mark = "ok" if probe["refused"] == probe["errors"] == 0 else "MISSED"
    print(f"ui_tag_change_unavailable_seconds {figures['ui_tag_change_unavailable_seconds']}s (runs {probe['runs']}); "
          f"refused {probe['refused']}, errors {probe['errors']} (target 0)  {mark}")


def measure_unavailable(bench: Bench, pairs: int) -> int:
    """Only the probed UI tag change: its keys replace those in results.json."""
    summaries = []
    for pair in range(pairs):
        bench.fresh(TAG_V1)  # untimed
        seconds, summary = bench.probed(TAG_V2)
        summaries.append(summary)
        print(f"round {pair + 1}/{pairs}: ui_change {seconds:.1f}s, probe {summary}", flush=True)
    bench.reset()
    figures = probe_figures(summaries)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    RESULTS.write_text(json.dumps({**results, **figures}, indent=2) + "\n")
    print_probe(figures)
    print(f"written to {RESULTS}")
    return 0


def measure(pairs: int, only: list[str] | None = None) -> int:
    check_ports_free(wait=30)
    work = Path(tempfile.mkdtemp(prefix="sdb-", dir="/tmp"))
    engine, registry = DockerEngine(), Registry()
    images = None
    try:
        engine.start()
        registry.start()
        images = StandIns(engine, registry)
        images.publish()
        proxy_standin(engine)  # the engine's proxy image: every deploy runs it
        bench = Bench(engine, registry, make_sirius_repo(work / "sirius.git", registry.host), work)
        if only == [UNAVAILABLE]:
            return measure_unavailable(bench, pairs)
        figures = only or list(TARGETS)
        ratios: dict[str, list[float]] = {key: [] for key in figures}
        summaries = []  # the probed UI tag changes of a full run
        seconds: dict[str, list[float]] = {}
        with SshHost(engine.env) as ssh:
            for pair in range(pairs):
                if only:
                    got = {}
                    if "reset_vs_fresh" in figures:
                        got.update(reset_round(bench, pair))
                        ratios["reset_vs_fresh"].append(got["reset"] / got["fresh_for_reset"])
                    if "fresh_vs_ready_floor" in figures:  # in turn, as in a full run
                        runs = [("fresh", lambda: bench.fresh(TAG_V1)),
                                ("ready_floor", lambda: bench.plain_compose(TAG_V1, fast_health=True))]
                        got.update((name, fn()) for name, fn in (runs if pair % 2 == 0 else runs[::-1]))
                        ratios["fresh_vs_ready_floor"].append(got["fresh"] / got["ready_floor"])
                    for key, value in got.items():
                        seconds.setdefault(key, []).append(value)
                    print(f"round {pair + 1}/{pairs}: " + " ".join(f"{k} {v:.1f}s" for k, v in got.items()), flush=True)
                    continue
                # Alternate which side runs first, so drift hits both.
                runs = [("fresh", lambda: bench.fresh(TAG_V1)),
                        ("ready_floor", lambda: bench.plain_compose(TAG_V1, fast_health=True)),
                        ("upstream_compose", lambda: bench.plain_compose(TAG_V1, fast_health=False))]
                got = dict((name, fn()) for name, fn in (runs if pair % 2 == 0 else runs[::-1]))
                bench.fresh(TAG_V1)  # our stack running at v1 (untimed)
                got["noop"] = bench.deploy(TAG_V1)
                got["ui_change"], summary = bench.probed(TAG_V2)
                summaries.append(summary)
                got["fresh_v2"] = bench.fresh(TAG_V2)
                bench.fresh(TAG_V1)  # untimed
                got["api_change"] = bench.deploy(TAG_V1, API_CHANGE)
                got["fresh_api"] = bench.fresh(TAG_V1, API_CHANGE)
                got["ssh_ui_change"] = ssh_ui_change(bench, ssh)
                bench.fresh(TAG_V1)  # untimed
                got["rollback"] = bench.rollback_seconds(TAG_API_CRASH)
                got.update(reset_round(bench, pair))
                ratios["reset_vs_fresh"].append(got["reset"] / got["fresh_for_reset"])
                ratios["fresh_vs_ready_floor"].append(got["fresh"] / got["ready_floor"])
                ratios["fresh_vs_upstream_compose"].append(got["fresh"] / got["upstream_compose"])
                ratios["ui_tag_change_vs_fresh"].append(got["ui_change"] / got["fresh_v2"])
                ratios["api_tag_change_vs_fresh"].append(got["api_change"] / got["fresh_api"])
                ratios["noop_vs_fresh"].append(got["noop"] / got["fresh"])
                ratios["ssh_ui_tag_change_vs_fresh"].append(got["ssh_ui_change"] / got["fresh_v2"])
                ratios["rollback_vs_fresh"].append(got["rollback"] / got["fresh"])
                for key, value in got.items():
                    seconds.setdefault(key, []).append(value)
                print(f"round {pair + 1}/{pairs}: " + " ".join(f"{k} {v:.1f}s" for k, v in got.items()), flush=True)
        bench.reset()
        measured = {key: round(statistics.median(values), 3) for key, values in ratios.items()}
        medians = {key: round(statistics.median(v), 2) for key, v in seconds.items()}
        if only:  # the other figures stay as their own run left them
            results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
            results.update(measured)
            results["median_seconds"] = {**results.get("median_seconds", {}), **medians}
            results["pairs_of"] = {**results.get("pairs_of", {}), **dict.fromkeys(figures, pairs)}
        else:
            results = {**measured, "pairs": pairs, "median_seconds": medians}
        if not only:
            results.update(probe_figures(summaries))
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\n{'figure':<28} {'ratio':>6} {'target':>8}")
        for key, target in ((k, TARGETS[k]) for k in figures):
            mark = "ok" if results[key] <= target else "MISSED"
            print(f"{key:<28} {results[key]:>6.3f} {'<= ' + str(target):>8}  {mark}")
        if not only:
            print_probe(results)
        print(f"\nmedian seconds: {results['median_seconds']}\nwritten to {RESULTS}")
        return 0
    finally:
        if images is not None:
            images.close()
        registry.close()
        engine.stop()
        shutil.rmtree(work, ignore_errors=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=3, help="rounds per figure (default 3)")
    p.add_argument("--only", action="append", choices=["fresh_vs_ready_floor", "reset_vs_fresh", UNAVAILABLE],
                   help="measure just this figure (repeatable; ui-unavailable alone): "
                        "the others in results.json stay")
    return p


def main() -> int:
    args = parser().parse_args()
    if args.only and UNAVAILABLE in args.only and len(args.only) > 1:
        parser().error(f"--only {UNAVAILABLE} is measured alone")
    with host_session_lock():  # the real-Docker tests share these ports
        return measure(args.pairs, args.only)


if __name__ == "__main__":
    raise SystemExit(main())
