"""127.0.0.1's ports: which the Sirius stack needs free, whether one is taken, a free one,
and the machine-wide lock that lets one real-Docker session (tests or bench) at a time use them."""

from __future__ import annotations

import contextlib
import errno
import socket
import subprocess
import time
from typing import Iterable

from engine.rules import BACKEND_PORTS

from .daemon import HarnessError

#: Host ports the Sirius compose file publishes, and where the engine's override moves the
#: UI's and API's (its proxy takes 3000 and 9001); must be free on 127.0.0.1.
SIRIUS_HOST_PORTS: tuple[int, ...] = (3000, 9001, 5432, 5672, 15672, 6379, 5174, 50051, *BACKEND_PORTS.values())


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something listens on host:port (a bind with SO_REUSEADDR fails)."""
    for addr in (host, "0.0.0.0"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
        finally:
            s.close()
    return False


@contextlib.contextmanager
def host_session_lock(path: str = "/tmp/sirius-demo-host-tests.lock"):
    """One real-Docker session (tests or bench) at a time: they share 127.0.0.1's ports."""
    import fcntl

    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def check_ports_free(ports: Iterable[int] = SIRIUS_HOST_PORTS, wait: float = 0.0) -> None:
    """Raise HarnessError naming the busy ports (and who holds them).

    ``wait``: keep retrying that many seconds first (ports of a stack that was
    just taken down are released by docker-proxy a moment later)."""
    deadline = time.monotonic() + wait
    while True:
        busy = [p for p in ports if port_in_use(p)]
        if not busy or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if busy:
        ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True)
        holders = [
            line for line in ss.stdout.splitlines()
            if any(f":{p} " in line + " " for p in busy)
        ]
        raise HarnessError(
            f"ports {busy} on 127.0.0.1 are in use; the Sirius stack needs "
            f"{list(ports)} free.\n" + "\n".join(holders)
        )


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

