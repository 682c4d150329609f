"""Shared fixtures: a fake 'what is my IP' service on 127.0.0.1 for sshCidrs: auto, and
stand-ins for the demo's UI and API for the monitor."""

from __future__ import annotations

import http.server
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

FAKE_PUBLIC_IP = "52.10.20.30"


class _Answer(http.server.BaseHTTPRequestHandler):
    body = FAKE_PUBLIC_IP.encode()
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def ip_echo() -> Iterator[str]:
    """URL of a local echo service that answers FAKE_PUBLIC_IP."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A 127.0.0.1 URL where nothing listens (the lookup must fail fast and clearly)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def edit_host_script(monkeypatch, tmp_path) -> Callable[[str], None]:
    """Point infra.bootstrap at a copy of engine/ with one file (e.g. "deploy.py" or
    "boot/user-data.sh") changed."""
    import shutil

    from infra import bootstrap

    host = tmp_path / "engine"
    shutil.copytree(bootstrap.ENGINE_DIR, host, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(bootstrap, "ENGINE_DIR", host)
    monkeypatch.setattr(bootstrap, "TEMPLATE", host / "boot" / "user-data.sh")
    monkeypatch.setattr(bootstrap, "WAIT_BOOT", host / "boot" / "wait-boot.sh")

    def edit(name: str) -> None:
        (host / name).write_bytes((host / name).read_bytes() + b"\n# changed\n")

    return edit


# --- a stand-in for the demo's UI or API (tests/test_monitor.py, the monitor workflow) ------


@dataclass(frozen=True)
class Reply:
    """One answer: status, body, and pauses before the headers and before the body."""

    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    body_delay: float = 0.0
    location: str = ""  # a Location header, for redirects


class StandInDemo:
    """An HTTP server on 127.0.0.1 whose paths answer their queued replies in turn (the last
    one for good); any other path answers 404. Counts the requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()  # ends every pause at teardown
        demo = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                demo.hits[self.path] += 1
                queue = demo.routes.get(self.path) or [Reply(404, b"not found")]
                reply = queue.pop(0) if len(queue) > 1 else queue[0]
                demo.release.wait(reply.delay)
                self.send_response(reply.status)
                if reply.location:
                    self.send_header("Location", reply.location)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.flush()
                demo.release.wait(reply.body_delay)
                self.wfile.write(reply.body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()  # quick shutdown

    def route(self, path: str, *replies: Reply) -> StandInDemo:
        self.routes[path] = list(replies)
        return self

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in() -> Iterator[Callable[[], StandInDemo]]:
    """Makes StandInDemo servers (one for the UI, one for the API, as on the instance)."""
    made: list[StandInDemo] = []

    def make() -> StandInDemo:
        made.append(StandInDemo())
        return made[-1]

    yield make
    for server in made:
        server.close()
