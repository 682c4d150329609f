"""testbed/probe.py, the visitor's view used by the host tests and the benchmark: how it
classifies what it sees, on real sockets, and how it counts the time of the page."""

from __future__ import annotations

import http.server
import threading
import time

from engine import proxyconfig
from testbed.ports import free_port  # free: nothing listens there
from testbed.probe import ERROR, OK, REFUSED, UPDATING, Look, Probe, ProbeResult, look_once


class Server:
    """127.0.0.1:<free port> answering `status` with `headers`."""

    def __init__(self, status: int, headers: dict[str, str]):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(owner.status)
                for name, value in owner.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"hi")

            def log_message(self, *args):
                pass

        self.status, self.headers = status, headers
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_look_once_tells_the_page_from_other_answers():
    page = {proxyconfig.UPDATING_HEADER: proxyconfig.UPDATING_VALUE, "Retry-After": "15"}
    cases = [(200, {}, OK), (302, {}, OK), (404, {}, OK), (503, page, UPDATING),
             (503, {}, ERROR),  # a service's own 503, or another proxy's
             (503, {proxyconfig.UPDATING_HEADER: proxyconfig.UPDATING_VALUE}, ERROR),  # no Retry-After
             (502, {}, ERROR)]
    for status, headers, kind in cases:
        server = Server(status, headers)
        try:
            assert look_once(server.url)[0] == kind, (status, headers)
        finally:
            server.close()
    assert look_once(f"http://127.0.0.1:{free_port()}/") == (REFUSED, "connection refused")


def test_probe_looks_at_its_rate_until_stopped_and_counts_what_it_saw():
    server = Server(200, {})
    try:
        with Probe(server.url, rate=20) as probe:
            time.sleep(1.0)
        result = probe.result
    finally:
        server.close()
    assert 10 <= len(result.looks) <= 25 and result.ok == len(result.looks)
    assert result.refused == 0 and result.errors == [] and result.unavailable_seconds == 0
    gaps = [b.at - a.at for a, b in zip(result.looks, result.looks[1:])]
    assert min(gaps) >= 0.04  # paced, not a burst

    with Probe(f"http://127.0.0.1:{free_port()}/", rate=20) as probe:
        time.sleep(0.3)
    assert probe.result.refused == len(probe.result.looks) > 0
    assert probe.result.summary()["firstProblems"][0].endswith("refused: connection refused")


def test_unavailable_seconds_add_up_the_time_until_the_next_look():
    looks = [Look(0.0, OK, "200"), Look(0.1, UPDATING, "503"), Look(0.2, UPDATING, "503"), Look(0.45, OK, "200"),
             Look(0.55, UPDATING, "503")]
    result = ProbeResult("u", 0.1, looks)
    assert result.unavailable_seconds == 0.45  # 0.1 + 0.25 + the last look's period
    assert result.longest_unavailable_seconds == 0.35
    assert result.summary()["updating"] == 3 and result.summary()["refused"] == 0
