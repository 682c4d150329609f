"""The deploy report as typed data: what a deploy (or a reset) did, with every key always there.

The JSON form (docs/operations.md, "The deploy report") is the stack's `health` output, the
CI summary's and the rehearsal's table: its keys are the fields' names in camelCase
(`image_tag` -> `imageTag`). `write` makes that JSON, `read`/`from_json` read it back; a
report of an older engine (keys missing) reads with the defaults, keys it does not know
are dropped, and a value of the wrong kind where a table is expected reads as the default.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime, timezone

from engine import REPORT_SCHEMA


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Phases:
    """Seconds per phase, in the order they run (`install` is the boot's OS setup)."""

    install: float = 0.0
    fetch: float = 0.0
    check: float = 0.0
    pull: float = 0.0
    build: float = 0.0
    up: float = 0.0
    healthy: float = 0.0


@dataclass
class ServiceEntry:
    """One compose service: what it runs and, when this deploy recreated it, when it got there
    (seconds from the deploy's start; None for a service left as it was)."""

    image: str = ""
    digest: str | None = None
    health: str = "unknown"
    built_locally: bool = False
    recreated: bool = False
    created_seconds: float | None = None
    started_seconds: float | None = None
    healthy_seconds: float | None = None


@dataclass
class Served:
    """A deploy that serves (or served): the rollback's target, the demo after a rollback."""

    ref: str | None = None
    image_tag: str | None = None
    commit: str | None = None


@dataclass
class RollbackEntry:
    status: str = "none"  # healthy | failed | none
    reason: str | None = None
    to: Served | None = None
    seconds: float | None = None
    unhealthy: list[str] = field(default_factory=list)


@dataclass
class Disk:
    """Disk care after a healthy deploy or a rollback (GiB free under Docker's root)."""

    free_gb_before: float = 0.0
    free_gb_after: float = 0.0
    removed_images: int = 0
    not_removed: int = 0


@dataclass
class DeployReport:
    schema: int = REPORT_SCHEMA
    status: str = "failed"  # healthy | unhealthy | failed | rolled-back (a reset: reset)
    error: str | None = None
    ref: str | None = None
    git_ref: str | None = None
    commit: str | None = None
    ref_fell_back: bool = False
    project: str | None = None
    image_tag: str | None = None
    registry: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    total_seconds: float | None = None
    pull_rounds: int = 0
    phases: Phases = field(default_factory=Phases)
    start_interval: bool = False
    start_interval_note: str | None = None
    image_fallbacks: dict[str, dict] = field(default_factory=dict)  # image -> {wanted, running}
    built_locally: list[str] = field(default_factory=list)
    build_seconds: dict[str, float] = field(default_factory=dict)
    unhealthy: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    critical_path: list[str] = field(default_factory=list)
    services: dict[str, ServiceEntry] = field(default_factory=dict)
    rollback: RollbackEntry | None = None
    serving: Served | None = None
    disk: Disk | None = None
    moved: dict[str, dict] = field(default_factory=dict)  # image -> {from, to}
    commit_range: dict | None = None  # {from, to}
    # Made by their own modules (engine/firewall.py, engine/proxy.py, engine/demodata.py).
    firewall: dict | None = None
    proxy: dict | None = None
    demo_data: dict | None = None

    def demo_data_line(self) -> str:
        """The demo data load in a few words, for a person ("" when none ran)."""
        demo = self.demo_data or {}
        if not demo:
            return ""
        return f"{demo.get('loaded')} hosts loaded" + (f" ({demo['reason']})" if demo.get("reason") else "")


@dataclass
class ResetEntry:
    demo: str = "unchanged"  # fresh | last-healthy | unchanged | down (engine/reset.py)
    removed_services: list[str] = field(default_factory=list)
    removed_volumes: list[str] = field(default_factory=list)
    wipe_seconds: float | None = None


@dataclass
class ResetReport(DeployReport):
    """A reset's report: the deploy's, plus `kind` and `reset`."""

    kind: str = "reset"
    reset: ResetEntry = field(default_factory=ResetEntry)


def json_key(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def to_json(value):
    """A report (or part of one) as JSON values, keys in camelCase."""
    if dataclasses.is_dataclass(value):
        return {json_key(f.name): to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    return value


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _convert(hint, value, default):
    """`value` (JSON) as the type `hint` names; `default` when it cannot be."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if value is None:
        return None if type(None) in typing.get_args(hint) else default
    if len(args) == 1 and typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = args[0]  # X | None with a value: an X
    origin = typing.get_origin(hint) or hint
    if dataclasses.is_dataclass(hint):
        return parse(hint, value) if isinstance(value, dict) else default
    if origin is dict:
        if not isinstance(value, dict):
            return default
        item = typing.get_args(hint)[1] if typing.get_args(hint) else None
        return {k: _convert(item, v, item()) if dataclasses.is_dataclass(item) else v for k, v in value.items()}
    if origin is list:
        return list(value) if isinstance(value, list) else default
    return value


def parse(cls, data: dict):
    """An instance of the dataclass `cls` from its JSON form: missing keys take the defaults."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        default = _default(f)
        key = json_key(f.name)
        values[f.name] = _convert(hints[f.name], data[key], default) if key in data else default
    return cls(**values)


def from_json(data) -> DeployReport:
    """A report from its JSON form (a reset's when `kind` says so); an empty report for anything
    that is not a JSON object."""
    if not isinstance(data, dict):
        return DeployReport()
    return parse(ResetReport if data.get("kind") == "reset" else DeployReport, data)


def read(path: str) -> DeployReport | None:
    """The report in `path`, or None when there is none (or it is not JSON)."""
    try:
        with open(path) as f:
            return from_json(json.load(f))
    except (OSError, ValueError):
        return None


def first_boot_install_seconds(state_dir: str, report_file: str) -> float:
    """The OS setup's time, for the first deploy's report (engine/bootstrap.py records it):
    0 once `report_file` exists (a deploy ran)."""
    if os.path.exists(os.path.join(state_dir, report_file)):
        return 0.0
    try:
        return float(json.load(open(os.path.join(state_dir, "bootstrap.json")))["phases"]["install"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def write(path: str, report: DeployReport) -> str:
    """Write the report as one JSON line, replaced whole; the line."""
    text = json.dumps(to_json(report), separators=(",", ":"))
    with open(path + ".tmp", "w") as f:
        f.write(text + "\n")
    os.replace(path + ".tmp", path)
    return text
