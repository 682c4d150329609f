"""What every daemon of the test bed does the same way: the Docker Engine
(docker_engine.py), the registry (registry.py), pebble (acme.py) and sshd (sshd.py).

A temp dir of its own (or a given one, kept), processes started with their output in a
log file there, a ready wait that fails with the log's tail when a process exits or the
time runs out, stop by pid (SIGTERM, then SIGKILL), and cleanup of the temp dir.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger("sirius.host")


class HarnessError(RuntimeError):
    """Something in the test harness itself failed (not the code under test)."""


def tail(text: str | bytes | None, lines: int = 40) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def file_tail(path: Path, lines: int = 40) -> str:
    try:
        return tail(path.read_text("utf-8", "replace"), lines)
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


def terminate(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, wait `timeout` s, then SIGKILL; always reaps."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("pid %s did not stop in %ss; SIGKILL", proc.pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(10)


class Daemon:
    """The processes of one daemon, their logs and their temp dir."""

    def __init__(self, name: str, *, root: str | os.PathLike | None = None, prefix: str = "sd-"):
        self.name = name
        self.own_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self._handles: list = []

    @property
    def running(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def launch(self, argv: Sequence[str], *, log_name: str, env: Mapping[str, str] | None = None,
               new_session: bool = True) -> subprocess.Popen:
        """Start one process; stdout and stderr go to `<root>/<log_name>` (appended)."""
        path = self.root / log_name
        handle = open(path, "ab")
        self._handles.append(handle)
        self.logs.append(path)
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                                env=dict(env) if env is not None else None, start_new_session=new_session)
        self.procs.append(proc)
        return proc

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(f"--- {path}\n{file_tail(path, lines)}" for path in self.logs)

    def wait_ready(self, ready: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
        """Until `ready()`; a process that exits, or the timeout, stops everything and raises
        HarnessError with the log tail."""
        deadline = time.monotonic() + timeout
        while True:
            exited = [p for p in self.procs if p.poll() is not None]
            if exited:
                codes = ", ".join(f"{p.args[0]} exited with {p.returncode}" for p in exited)
                tail_text = self.log_tail()
                self.stop()
                raise HarnessError(f"{self.name} did not start: {codes}; log tail:\n{tail_text}")
            with contextlib.suppress(OSError):
                if ready():
                    return
            if time.monotonic() >= deadline:
                tail_text = self.log_tail()
                self.stop()
                raise HarnessError(f"{self.name} was not ready within {timeout:g}s; log tail:\n{tail_text}")
            time.sleep(interval)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every process by pid (idempotent); the logs and the dir stay."""
        for proc in self.procs:
            terminate(proc, timeout)
        self.procs = []
        for handle in self._handles:
            handle.close()
        self._handles, self.logs = [], []

    def close(self, timeout: float = 10.0) -> None:
        """Stop, then remove the temp dir when it is ours."""
        self.stop(timeout)
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)
