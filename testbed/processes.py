"""Processes and mounts by pid and path, read from /proc: what the Docker Engine uses to find
and end everything a dead or dying dockerd left behind (never by name)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterable


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid: int) -> list[int]:
    kids = _children_map()
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, ()):
            out.append(c)
            todo.append(c)
    return out


def pids_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (a unique temp path of ours)."""
    out = []
    needle = text.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                if needle in fh.read():
                    out.append(int(d))
        except OSError:
            continue
    return out


def kill_pids(pids: Iterable[int], sig: int = signal.SIGKILL, wait: float = 10.0) -> None:
    pids = [p for p in set(pids) if p != os.getpid()]
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)


def unmount_under(*roots: Path) -> list[str]:
    """Lazily unmount every mount point under the given dirs, deepest first."""
    prefixes = [str(r).rstrip("/") for r in roots]
    points = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mp = line.split()[4]
            mp = mp.encode().decode("unicode_escape")  # \040 etc.
            if any(mp == p or mp.startswith(p + "/") for p in prefixes):
                points.append(mp)
    for mp in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)
    return points

