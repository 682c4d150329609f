"""The generated compose override."""

from __future__ import annotations

from engine import override

SERVICES = {
    "sirius-postgres": {"ports": [{"target": 5432, "published": "5432", "protocol": "tcp", "mode": "ingress"}],
                        "healthcheck": {"test": ["CMD", "/usr/local/bin/pg-healthcheck.sh"], "interval": "10s"}},
    "sirius-ui": {"ports": [{"target": 3000, "published": "3000", "protocol": "tcp"}],
                  "healthcheck": {"test": ["CMD", "wget", "--spider", "http://127.0.0.1:3000/"]}},
    "sirius-api": {"ports": [{"target": 9001, "published": "9001", "protocol": "tcp"},
                             {"target": 9002, "published": "9002", "protocol": "tcp"}]},
    "sirius-migrate": {},
}
IMAGES = {name: f"r/{name}@sha256:1" for name in SERVICES}


def render(**kw) -> str:
    return override.render(SERVICES, IMAGES, **{"fast_health": True, "start_period": 600, **kw})


def test_digests_pinned_and_never_pulled_by_compose():
    text = render()
    for name in SERVICES:
        assert f'  {name}:\n    image: "r/{name}@sha256:1"\n    pull_policy: missing\n' in text


def test_every_port_on_loopback_and_the_proxys_ports_left_to_it():
    """The proxy (engine/proxy.py) listens on 3000 and 9001; the UI and API publish their
    own port on 127.0.0.1 at rules.BACKEND_PORTS, any other port where upstream does."""
    text = render()
    assert 'ports: !override ["127.0.0.1:5432:5432/tcp"]' in text
    assert 'ports: !override ["127.0.0.1:13000:3000/tcp"]' in text
    assert 'ports: !override ["127.0.0.1:19001:9001/tcp", "127.0.0.1:9002:9002/tcp"]' in text


def test_fast_health_only_when_supported_and_only_on_checked_services():
    fast = render()
    assert fast.count("start_interval: 1s") == 2 and "start_period: 600s" in fast
    assert "sirius-migrate:\n    image" in fast and "start_interval" not in fast.split("sirius-migrate:")[1].split("sirius-postgres:")[0]
    assert "start_interval" not in render(fast_health=False)


def test_start_interval_needs_engine_25_and_compose_2_20_2():
    assert override.start_interval_support("1.45", "2.30.1") is None
    assert override.start_interval_support("1.44", "v2.20.2") is None
    assert "1.41" in override.start_interval_support("1.41", "2.30.1")
    assert "2.20.1" in override.start_interval_support("1.45", "2.20.1")
    assert override.start_interval_support("", "5.6.1") is not None


def test_the_port_override_needs_compose_2_24_4():
    assert override.too_old_for_override("2.24.3") and override.too_old_for_override("v2.20.2")
    assert not override.too_old_for_override("2.24.4") and not override.too_old_for_override("5.6.1")
