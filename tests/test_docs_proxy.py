"""docs/proxy.md: every command it shows works as shown, and the facts it states (ports,
the page's headers and text) are the engine's."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from bench import run as bench_run
from engine import proxyconfig, rules

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "proxy.md").read_text()


def shell_lines() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", DOC, re.S)
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line.strip()]


def test_every_command_shown_is_accepted():
    lines = shell_lines()
    assert lines, "docs/proxy.md shows no command"
    for argv in lines:
        argv = argv[1:] if argv[0] == "sudo" else argv
        assert argv[:3] == ["venv/bin/python", "-m", argv[2]], argv
        if argv[2] == "pytest":
            paths = [a for a in argv[3:] if not a.startswith("-")]
            assert paths and all((ROOT / p).is_file() for p in paths), argv
        else:
            assert argv[2] == "bench.run", argv
            bench_run.parser().parse_args(argv[3:])  # exits (SystemExit) on a flag it does not take


def test_the_facts_stated_are_the_engines():
    ui_backend, api_backend = rules.BACKEND_PORTS["sirius-ui"], rules.BACKEND_PORTS["sirius-api"]
    assert f"| {rules.UI_PORT} | the proxy, for the UI |" in DOC and f"| {rules.API_PORT} | the proxy, for the API |" in DOC
    assert f"| 127.0.0.1:{ui_backend} | the UI container's own port {rules.UI_PORT} |" in DOC
    assert f"| 127.0.0.1:{api_backend} | the API container's own port {rules.API_PORT} |" in DOC
    assert f"| {rules.HTTP_PORT}, {rules.HTTPS_PORT} |" in DOC and f"`https://<domain>{rules.API_PATH}/`" in DOC
    assert f"`Retry-After: {proxyconfig.RETRY_AFTER_SECONDS}`" in DOC and f"every {proxyconfig.RETRY_AFTER_SECONDS} seconds" in DOC
    assert f"`{proxyconfig.UPDATING_HEADER}: {proxyconfig.UPDATING_VALUE}`" in DOC
    assert f'"{proxyconfig.UPDATING_MESSAGE}"' in DOC and proxyconfig.UPDATING_JSON in DOC
    assert f'"image": "{rules.PROXY_IMAGE}", "listens": [{rules.UI_PORT}, {rules.API_PORT}]' in DOC
