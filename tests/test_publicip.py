"""sshCidrs: auto behind an HTTPS proxy: the lookup sees the proxy's address, and says so."""

from __future__ import annotations

import pytest

from infra import publicip

PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY",
                   "no_proxy", "NO_PROXY")


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(publicip.URL_VARIABLE, raising=False)
    return monkeypatch


def test_a_proxy_in_the_way_is_named_without_its_credentials(no_proxy_env):
    no_proxy_env.setenv("HTTPS_PROXY", "http://alice:hunter2@proxy.corp.example:3128")
    note = publicip.proxy_note()
    assert note and "proxy.corp.example:3128" in note and "set sshCidrs" in note
    assert "hunter2" not in note and "alice" not in note


def test_no_note_without_a_proxy_or_when_the_echo_service_bypasses_it(no_proxy_env):
    assert publicip.proxy_note() is None
    no_proxy_env.setenv("HTTPS_PROXY", "proxy.corp.example:3128")
    no_proxy_env.setenv("NO_PROXY", "checkip.amazonaws.com")
    assert publicip.proxy_note() is None
    assert publicip.proxy_note("http://127.0.0.1:8080/") is None  # plain http: HTTPS_PROXY is not used


def test_troubleshooting_names_both_laptop_traps_and_their_way_out():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.md").read_text()
    agent = text[text.index("## The SSH agent"):]
    agent = agent[:agent.index("\n## ")]
    assert "SSH_AUTH_SOCK" in agent and "env -u SSH_AUTH_SOCK pulumi up" in agent
    proxy = text[text.index("## SSH times out"):]
    proxy = proxy[:proxy.index("\n## ")]
    assert "HTTPS_PROXY" in proxy and "pulumi config set sshCidrs" in proxy
