"""The compatibility check: what upstream's compose needs before any pull.

The raw strings below are upstream's forms (../shared/sirius-stack.md); the real
`docker compose config` of the fixture runs in tests/host.
"""

from __future__ import annotations

import pytest

from engine import compat

ENGINE_CHECK = ("command -v psql >/dev/null && command -v curl >/dev/null && "
                "[ -r \"${SIRIUS_API_KEY_FILE:-}\" ] && echo > /dev/tcp/127.0.0.1/50051")


COMPOSE_TEXT = f"""services:
  sirius-engine:
    image: r/sirius-engine:${{IMAGE_TAG:-latest}}
    environment: [NODE_ENV=${{NODE_ENV:-production}}]
    healthcheck:
      test: ["CMD", "bash", "-lc", {ENGINE_CHECK!r}]
"""


def render(env: dict[str, str], *, image: bool = True, text: str = ENGINE_CHECK) -> dict:
    """What `docker compose config` gives for a check like COMPOSE_TEXT's under `env` (interpolation only)."""
    check = text.replace("${SIRIUS_API_KEY_FILE:-}", env.get("SIRIUS_API_KEY_FILE", ""))
    engine = {"healthcheck": {"test": ["CMD", "bash", "-lc", check]}}
    if image:
        engine["image"] = "r/sirius-engine:latest"
    return {"services": {"sirius-engine": engine}}


def probed_check(text: str) -> str:
    """The engine's health check as it stands in a probe text."""
    return text.split('"bash", "-lc", ', 1)[1].rsplit("]", 1)[0].strip("'")


def test_only_occurrences_that_render_empty_get_a_marker():
    probe = compat.probe_text(COMPOSE_TEXT, {"IMAGE_TAG": "v1"})
    assert probe == COMPOSE_TEXT.replace("${SIRIUS_API_KEY_FILE:-}", "__SIRIUS_EMPTY_SIRIUS_API_KEY_FILE__")
    assert compat.probe_text(COMPOSE_TEXT, {"SIRIUS_API_KEY_FILE": "/run/secrets/sirius_api_key"}) == COMPOSE_TEXT


def test_a_set_but_empty_variable_with_a_default_is_not_empty_where_the_default_applies():
    """`${X:-d}` with X="" renders d, even when a bare `${X}` elsewhere renders empty."""
    text = "healthcheck: [\"CMD\", \"test\", \"-r\", \"${KEY:-/run/secrets/key}\"]\nenvironment: [KEY=${KEY}]\n$${KEY}\n"
    probe = compat.probe_text(text, {"KEY": ""})
    assert probe == text.replace("KEY=${KEY}", "KEY=__SIRIUS_EMPTY_KEY__")
    assert compat.probe_text("${A+on} ${A:+on}", {"A": ""}) == "${A+on} __SIRIUS_EMPTY_A__"


def test_upstream_main_passes_with_the_installers_env():
    env = {"SIRIUS_API_KEY_FILE": "/run/secrets/sirius_api_key"}
    assert compat.problems(render(env), None) == []


def test_the_engine_check_that_renders_empty_is_named():
    probe = compat.probe_text(COMPOSE_TEXT, {})
    [problem] = compat.problems(render({}), render({}, text=probed_check(probe)))
    assert problem.startswith("sirius-engine's healthcheck uses ${SIRIUS_API_KEY_FILE}")
    assert "set SIRIUS_API_KEY_FILE" in problem


def test_a_service_without_image_is_named():
    problems = compat.problems(render({}, image=False), None)
    assert len(problems) == 1 and problems[0].startswith("sirius-engine has no image")


@pytest.mark.parametrize(
    ("text", "env", "empty"),
    [
        ("${A:-}", {}, ["A"]),
        ("${A:-}", {"A": ""}, ["A"]),
        ("${A:-x}", {}, []),
        ("${A-x}", {"A": ""}, ["A"]),  # "-" keeps a set-but-empty value
        ("${A}", {"A": "1"}, []),
        ("$A and ${B:-}", {"B": "2"}, ["A"]),
        ("$${A}", {}, []),  # escaped: the container's shell expands it
        ("${A:+on}", {}, ["A"]),
        ("${A:+on}", {"A": "1"}, []),
        ("${A+on}", {"A": ""}, []),  # "+" takes the alternative for a set variable, even ""
        ("${A:-d}", {"A": ""}, []),
        ("${A:-d} ${A}", {"A": ""}, ["A"]),
    ],
)
def test_what_renders_empty(text, env, empty):
    assert compat.empty_variables(text, env) == empty


def test_a_missing_required_variable_names_it():
    error = 'error while interpolating services.sirius-api.environment.[]: required variable SIRIUS_API_KEY is missing a value: set it'
    [problem] = compat.render_problems(error)
    assert "requires SIRIUS_API_KEY" in problem and "v1.1.0" in problem
    assert compat.render_problems("yaml: line 3: bad indentation")[0].endswith("bad indentation")
