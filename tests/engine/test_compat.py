"""The compatibility check: what upstream's compose needs before any pull.

The raw strings below are upstream's forms (../shared/sirius-stack.md); the real
`docker compose config` of the fixture runs in tests/host.
"""

from __future__ import annotations

import pytest

from engine import compat

ENGINE_CHECK = ("command -v psql >/dev/null && command -v curl >/dev/null && "
                "[ -r \"${SIRIUS_API_KEY_FILE:-}\" ] && echo > /dev/tcp/127.0.0.1/50051")


def project(check: str = ENGINE_CHECK, **extra) -> tuple[dict, dict]:
    raw = {"services": {
        "sirius-engine": {"image": "r/sirius-engine:${IMAGE_TAG:-latest}",
                          "healthcheck": {"test": ["CMD", "bash", "-lc", check]}},
        "sirius-migrate": {"image": "r/sirius-api:${IMAGE_TAG:-latest}", "entrypoint": ["/app/migrate"]},
        **extra}}
    rendered = {"services": {name: {**spec, "image": spec.get("image", "").replace("${IMAGE_TAG:-latest}", "v1")}
                             for name, spec in raw["services"].items()}}
    for spec in rendered["services"].values():
        if not spec["image"]:
            del spec["image"]
    return rendered, raw


def test_upstream_main_passes_with_the_installers_env():
    rendered, raw = project()
    assert compat.problems(rendered, raw, {"SIRIUS_API_KEY_FILE": "/run/secrets/sirius_api_key"}) == []


def test_the_engine_check_that_renders_empty_is_named():
    rendered, raw = project()
    [problem] = compat.problems(rendered, raw, {})
    assert problem.startswith("sirius-engine's healthcheck uses ${SIRIUS_API_KEY_FILE}")
    assert "set SIRIUS_API_KEY_FILE" in problem


def test_a_service_without_image_is_named():
    rendered, raw = project(**{"sirius-postgres": {"build": {"context": "./sirius-postgres"}}})
    problems = compat.problems(rendered, raw, {"SIRIUS_API_KEY_FILE": "/k"})
    assert len(problems) == 1 and problems[0].startswith("sirius-postgres has no image")


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
    ],
)
def test_what_renders_empty(text, env, empty):
    assert compat.empty_variables(text, env) == empty


def test_a_missing_required_variable_names_it():
    error = 'error while interpolating services.sirius-api.environment.[]: required variable SIRIUS_API_KEY is missing a value: set it'
    [problem] = compat.render_problems(error)
    assert "requires SIRIUS_API_KEY" in problem and "v1.1.0" in problem
    assert compat.render_problems("yaml: line 3: bad indentation")[0].endswith("bad indentation")
