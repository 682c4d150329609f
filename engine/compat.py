"""Can this compose project run the published images? Checked before any pull.

Input is what `docker compose config` says: the rendered project (or compose's own
error), and the project rendered again from a copy of the compose file in which every
`${...}` that renders empty is replaced by a marker naming its variable (`probe_text`):
a marker that shows up in a health check, command or entrypoint is a variable that
leaves it empty there. Judged per occurrence: `${X:-d}` with X set but empty renders
`d`, even where a bare `${X}` elsewhere renders empty. (`config --no-interpolate` cannot be
used: it validates `pull_policy: ${...}` uninterpolated and refuses upstream's file.)
A ref that cannot work fails here in seconds, naming the service and what to do,
instead of after the health timeout.
"""

from __future__ import annotations

import re

_REQUIRED = re.compile(r"required variable (\w+) is missing a value")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}, $NAME
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_]\w*))")
# Where an empty variable makes a service start wrong or never pass its check.
_FIELDS = ("healthcheck", "command", "entrypoint")


def render_problems(error: str) -> list[str]:
    """Why `docker compose config` refused the project, in the engine's words."""
    missing = _REQUIRED.findall(error)
    if missing:
        return [f"the compose file requires {name}, which the engine does not set: this ref expects "
                "another configuration (refs before v1.1.0 used SIRIUS_API_KEY); deploy main or v1.1.0 or later"
                for name in dict.fromkeys(missing)]
    return [f"docker compose config failed: {error.strip().splitlines()[-1] if error.strip() else 'no output'}"]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def _rendered(op: str, default: str, value: str | None) -> str:
    """What compose renders for one `${NAME<op><default>}` when NAME is `value` (None: unset)."""
    if op in ("-", ":-"):
        unset = value is None or (op == ":-" and value == "")
        return default if unset else value  # type: ignore[return-value]
    if op == "+":
        return default if value is not None else ""  # set, even to "", takes the alternative
    if op == ":+":
        return default if value else ""
    return value or ""


def empty_variables(text: str, env: dict[str, str]) -> list[str]:
    """Variables in `text` that compose renders as an empty string with `env` (one entry per occurrence)."""
    empty = []
    for name, op, default, bare in _VARIABLE.findall(text.replace("$$", "")):
        name = name or bare
        if _rendered(op, default, env.get(name)) == "":
            empty.append(name)
    return empty


_VARIABLE_OR_ESCAPE = re.compile(r"\$\$|" + _VARIABLE.pattern)


def probe_text(compose_text: str, env: dict[str, str]) -> str:
    """The compose file with every occurrence that renders empty under `env` replaced by a
    marker naming its variable; `$$` (the container's own `$`) and the rest left as they are."""
    def marker(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$$"
        name, op, default, bare = match.group(1), match.group(2) or "", match.group(3) or "", match.group(4)
        name = name or bare
        return f"__SIRIUS_EMPTY_{name}__" if _rendered(op, default, env.get(name)) == "" else match.group(0)

    return _VARIABLE_OR_ESCAPE.sub(marker, compose_text)


_MARKER = re.compile(r"__SIRIUS_EMPTY_(\w+?)__")




def problems(rendered: dict, probed: dict | None) -> list[str]:
    """What stops the published images from running on this project, one line each."""
    found = []
    for name, service in sorted((rendered.get("services") or {}).items()):
        if not service.get("image"):
            found.append(f"{name} has no image: it builds from source, so no published image can run it; "
                         "this ref predates prebuilt images (use main or v1.1.0 or later)")
        probed_service = ((probed or {}).get("services") or {}).get(name) or {}
        for field in _FIELDS:
            for text in _strings(probed_service.get(field)):
                for variable in dict.fromkeys(_MARKER.findall(text)):
                    found.append(f"{name}'s {field} uses ${{{variable}}}, which renders empty, so it can never "
                                 f"pass: set {variable} in .env (the engine writes the variables upstream's installer does)")
    return found
