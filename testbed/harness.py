"""The test bed by hand: ``python -m testbed.harness`` (as root, from the repository root)
starts the Docker Engine and the registry, publishes the stand-in images, creates a
fixture repo, prints the ``export`` lines for a shell and waits for Ctrl-C; then everything
it started is stopped and its temp dirs removed.  The parts: testbed/README.md."""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from .docker_engine import DockerEngine
from .fixture_repo import FIXTURE_REFS, make_sirius_repo
from .ports import check_ports_free
from .registry import Registry
from .standins import STANDIN_TAGS, StandIns


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m testbed.harness",
        description="Start a private dockerd + registry with the Sirius stand-in images "
                    "and wait for Ctrl-C.")
    ap.add_argument("--no-images", action="store_true", help="do not build/publish images")
    ap.add_argument("--keep-local-images", action="store_true",
                    help="keep the built images in the engine (default: remove, so "
                         "deploys pull from the registry)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING,
                        format="%(asctime)s %(message)s")
    check_ports_free()
    t0 = time.monotonic()
    engine = DockerEngine()
    registry = Registry()
    images = None
    repo_dir = Path(tempfile.mkdtemp(prefix="sdp-", dir="/tmp"))
    try:
        engine.start()
        registry.start()
        if not a.no_images:
            images = StandIns(engine, registry)
            images.publish()
            if not a.keep_local_images:
                images.remove_local_images()
        url = make_sirius_repo(repo_dir / "sirius.git", registry.host)
        env = engine.env
        print(f"# ready in {time.monotonic() - t0:.1f}s; paste into a shell:")
        for k in ("DOCKER_HOST", "DOCKER_CONFIG", "PATH"):
            print(f"export {k}='{env[k]}'")
        print(f"# registry: {registry.host}  (tags: {', '.join(STANDIN_TAGS)})")
        print(f"# sirius repo: {url}  (refs: {', '.join(FIXTURE_REFS)})")
        print("# plain compose in a clone: write_runtime_files(dir); "
              "docker compose -f docker-compose.yaml -f <write_loopback_override(dir)> up -d --wait")
        print(f"# dockerd log: {engine.log_path}")
        print("# Ctrl-C to stop and clean up", flush=True)

        def _on_term(signum, frame):
            raise KeyboardInterrupt

        # also SIGINT: a shell starts background jobs with SIGINT ignored
        signal.signal(signal.SIGTERM, _on_term)
        signal.signal(signal.SIGINT, _on_term)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                signal.pause()
    finally:
        if images:
            images.close()
        registry.close()
        engine.stop()
        shutil.rmtree(repo_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
