"""Shared fixtures: a fake 'what is my IP' service on 127.0.0.1 for sshCidrs: auto."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator

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
