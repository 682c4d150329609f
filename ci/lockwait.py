"""Run `pulumi up` (or any command) again while the stack is locked by another update, up to a
deadline: the backend's lock is the queue, and a run that waits too long fails loudly.

Why: GitHub keeps one pending run per concurrency group and cancels the one before, so a
dispatch that carries an image tag, queued behind a deploy, would be dropped without a word
by the next push. deploy.yml therefore gives tagged runs a group of their own, and every
run waits here for the stack instead. Stdlib only, like the rest of ci/:

    python -m ci.lockwait --wait-minutes=50 -- pulumi up --stack demo --yes ...

The command's output streams through; exit status is the command's, or 75 (EX_TEMPFAIL)
when the stack was still locked at the deadline.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

# What the Pulumi CLI prints when another update holds the stack: Pulumi Cloud's 409, and a
# self-managed backend's lock file.
LOCKED = re.compile(r"\[409\] Conflict: Another update is currently in progress|the stack is currently locked by",
                    re.I)
PAUSE_SECONDS = 30.0
EXIT_STILL_LOCKED = 75


def is_locked(output: str) -> bool:
    return bool(LOCKED.search(output))


def run_once(argv: Sequence[str]) -> tuple[int, str]:
    """Run the command, streaming its output through; its status and everything it printed."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        seen = []
        for line in proc.stdout:  # type: ignore[union-attr]
            sys.stdout.write(line)
            sys.stdout.flush()
            seen.append(line)
    return proc.returncode, "".join(seen)


def run_when_free(argv: Sequence[str], wait_seconds: float, *, pause: float = PAUSE_SECONDS,
                  run: Callable[[Sequence[str]], tuple[int, str]] = run_once,
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic) -> int:
    deadline = clock() + wait_seconds
    while True:
        code, output = run(argv)
        if code == 0 or not is_locked(output):
            return code
        if clock() + pause > deadline:
            print(f"ci.lockwait: the stack was still locked by another update after {wait_seconds / 60:g} min; "
                  "nothing was changed by this run: run it again (its image tag is not deployed)", file=sys.stderr)
            return EXIT_STILL_LOCKED
        print(f"ci.lockwait: another update holds the stack; trying again in {pause:g} s", file=sys.stderr)
        sleep(pause)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ci.lockwait", description=__doc__.split("\n\n")[0])
    parser.add_argument("--wait-minutes", type=float, required=True, help="how long to wait for the stack at most")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="after --: the command, e.g. pulumi up ...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.wait_minutes < 0:
        parser.error("give --wait-minutes (0 or more) and a command after --")
    return run_when_free(command, args.wait_minutes * 60)


if __name__ == "__main__":
    sys.exit(main())
