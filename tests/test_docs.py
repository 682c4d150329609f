"""The README and docs/ say what is true: the README fits on a screen and shows the commands
a newcomer needs; every `python -m` command in them runs (its --help, and every flag it
shows exists); every config key they mention is declared in Pulumi.yaml; every ref they set
is one the program accepts; links resolve; the figures add up and match bench/."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from engine import rules
from infra import config
from infra.config import ConfigError, parse
from tools import rehearse

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
# Keys the docs show on purpose as mistakes; each must really be refused, with a hint.
MISTAKE_KEYS = {"instancetype", "region"}


def text(path: Path) -> str:
    return path.read_text()


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- the README ---------------------------------------------------------------------------------


def test_the_readme_fits_on_a_screen_and_shows_the_outcome_first():
    readme = text(README)
    assert len(readme.splitlines()) <= 200
    first_section = readme[readme.index("\n## "):].split("\n## ")[1]
    assert first_section.startswith("What you get") and "```mermaid" in first_section
    for needed in ("per hour", "per month", "*modelled*", "*Measured*", "as known on 20", "uiUrl", "admin"):
        assert needed in first_section, needed
    assert "## Deploy" in readme and "**Region**: `us-west-2`" in readme


@pytest.mark.parametrize("command", [
    "pulumi stack select --create demo && pulumi up",
    "pulumi destroy",
    "pulumi stack rm --preserve-config demo",
    "./scripts/test.sh",
    "./scripts/test-fast.sh",
    "pulumi stack output --show-secrets adminPassword",
    "pulumi config set aws:region",
])
def test_the_readme_shows_the_commands(command):
    assert command in text(README), command


def test_the_test_commands_are_what_ci_and_the_fast_script_run():
    assert "./scripts/test.sh -q" in text(ROOT / ".ci" / "run")
    fast = text(ROOT / "scripts" / "test-fast.sh")
    assert 'pytest -m "not host_docker"' in fast and "sudo" not in fast and "docker " not in fast
    assert 'pytest -m "not host_docker"' in text(README)


def test_the_cost_table_adds_up():
    rows = re.findall(r"^\s*\| (.+?) \|\s*(.*?)\s*\| \*{0,2}\$([\d.]+)\*{0,2} \| \*{0,2}\$([\d.]+)\*{0,2} \|$",
                      text(README), re.M)
    items = {item.strip("* "): (float(hour), float(month)) for item, _, hour, month in rows}
    assert set(items) == {"t3.medium", "gp3, 30 GB", "public IPv4 (Elastic IP)", "total"}
    hourly = {"t3.medium": 0.0416, "gp3, 30 GB": 30 * 0.08 / 730, "public IPv4 (Elastic IP)": 0.005}
    for item, per_hour in hourly.items():
        assert items[item] == (round(per_hour, 4), round(per_hour * 730, 2)), item
    total = sum(hourly.values())
    assert items["total"] == (round(total, 4), round(total * 730, 2))


def test_the_measured_figures_are_bench_results():
    seconds = json.loads(text(ROOT / "bench" / "results.json"))["median_seconds"]
    readme = text(README)
    for key, shown in (("fresh", "a fresh deploy {:.1f} s"), ("upstream_compose", "{:.0f} s for plain"),
                       ("ui_change", "a tag change in place {:.1f} s"), ("noop", "running tag {:.1f} s")):
        assert shown.format(seconds[key]) in " ".join(readme.split()), key


# --- links --------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("path", DOCS, ids=name)
def test_links_resolve(path):
    for target in re.findall(r"\]\(([^)\s]+)\)", text(path)):
        if target.startswith(("http://", "https://")):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{name(path)} links to {target}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", text(linked), re.M)
            assert anchor in {slug(h) for h in headings}, f"{name(path)}: no heading #{anchor} in {linked.name}"


# --- python -m commands -------------------------------------------------------------------------


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```", markdown, re.M | re.S)


def python_commands() -> list[tuple[str, str]]:
    """(doc, command) for every `python -m ...` in a shell snippet or an inline code span."""
    found = []
    for path in DOCS:
        markdown = text(path)
        snippets = [block.replace("\\\n", " ") for block in shell_blocks(markdown)]
        snippets += re.findall(r"`([^`\n]*python -m [^`\n]*)`", markdown)
        for snippet in snippets:
            for line in snippet.splitlines():
                line = re.sub(r"\$\([^()]*\)", "VALUE", line.split("  #")[0].split(" # ")[0])
                for match in re.finditer(r"python3? -m (\S+)([^;&|)]*)", line):
                    found.append((name(path), f"{match.group(1)}{match.group(2)}".strip()))
    return sorted(set(found))


@cache
def help_of(module: str, subcommand: str | None) -> str:
    argv = [sys.executable, "-m", module, *([subcommand] if subcommand else []), "--help"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(argv[1:])} fails: {result.stderr[-2000:]}"
    return result.stdout


def test_the_docs_show_python_commands():
    modules = {command.split()[0] for _, command in python_commands()}
    assert {"tools.rehearse", "ci.stacks", "bench.run"} <= modules, modules


@pytest.mark.parametrize(("doc", "command"), python_commands())
def test_every_python_command_runs_and_its_flags_exist(doc, command):
    words = shlex.split(command)
    module, rest = words[0], words[1:]
    if "--" in rest:
        rest = rest[:rest.index("--")]  # after --: the engine's flags, checked by the engine
    subcommand = rest[0] if rest and not rest[0].startswith("-") and module in ("ci.stacks", "ci.monitor") else None
    usage = help_of(module, subcommand)
    for flag in (word.split("=")[0] for word in rest if word.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", usage), f"{doc}: `{command}`: {flag} is not a flag"


# --- config keys and refs ------------------------------------------------------------------------

KEY_MENTIONS = [
    re.compile(r"(?<![\w:-])sirius-demo:([A-Za-z]\w*)\b(?!-)"),  # not a URN's type token (::sirius-demo:index:)
    re.compile(r"pulumi config (?:set|get|rm)(?: --secret| --path| --stack \S+)* ([\w:-]+)"),
]


def mentioned_keys() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for pattern in KEY_MENTIONS:
            found += [(name(path), key) for key in pattern.findall(text(path))]
    return sorted(set(found))


def test_every_config_key_the_docs_mention_is_declared():
    schema = config.load_schema()
    mentions = mentioned_keys()
    assert len({key for _, key in mentions}) >= 10
    for doc, key in mentions:
        namespace, _, bare = key.rpartition(":")
        if namespace == "aws":
            assert bare in ("region", "profile"), f"{doc}: {key} is not a key this program reads"
        elif namespace in ("", config.PROJECT):
            assert bare in schema or bare in MISTAKE_KEYS, f"{doc}: {key} is not declared in Pulumi.yaml"
        else:
            pytest.fail(f"{doc}: {key}: unknown namespace")


@pytest.mark.parametrize("key", sorted(MISTAKE_KEYS))
def test_the_mistakes_the_docs_show_are_refused_with_a_hint(key):
    with pytest.raises(ConfigError) as caught:
        parse({key: "t3.large"}, stack="t", lookup_public_ip=lambda: "52.1.1.1")
    message = dict(caught.value.problems)[key]
    assert "did you mean" in message or "aws:region" in message


REF_MENTIONS = [
    re.compile(r"--ref[= ]([^\s`\"')]+)"),
    re.compile(r"pulumi config set (?:--stack \S+ )?(?:sirius-demo:)?ref ([^\s`]+)"),
    re.compile(r"^\s*sirius-demo:ref:\s+([^\s'\"]+)\s*$", re.M),
    re.compile(r"`ref: ([^`\s]+)`"),
]


def mentioned_refs() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for pattern in REF_MENTIONS:
            found += [(name(path), ref) for ref in pattern.findall(text(path))]
    return sorted({(doc, ref) for doc, ref in found if not ref.startswith(("$", '"$', "<", "REF"))})


def test_every_ref_the_docs_set_is_one_the_program_accepts():
    refs = mentioned_refs()
    assert {"main", "v1.1.0", "pr-42"} <= {ref for _, ref in refs}
    for doc, ref in refs:
        assert rules.ref_problem(ref) is None and rules.stale_ref_problem(ref) is None, (
            f"{doc}: ref {ref}: {rules.ref_problem(ref) or rules.stale_ref_problem(ref)}")


def test_the_sirius_ref_default_the_docs_give_is_the_workflows():
    workflows = "".join(text(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    defaults = set(re.findall(r"vars\.SIRIUS_REF \|\| '([^']+)'", workflows))
    assert len(defaults) == 1
    stated = [(name(p), d) for p in DOCS for d in re.findall(r"SIRIUS_REF`?[^|\n]*?default `([^`]+)`", text(p))]
    assert stated, "the docs never say SIRIUS_REF's default"
    for doc, default in stated:
        assert {default} == defaults, f"{doc} says SIRIUS_REF defaults to {default}; the workflows use {defaults}"


def test_the_example_error_is_what_the_program_says():
    docs = text(ROOT / "docs" / "configuration.md")
    block = re.search(r"```text\nerror: (.*?)\n```", docs, re.S).group(1)
    with pytest.raises(ConfigError) as caught:
        parse({"instancetype": "t3.large", "ref": "demo", "volumeSize": "19"}, stack="t",
              lookup_public_ip=lambda: "52.1.1.1")
    assert block == str(caught.value)


def test_the_rehearsal_flags_table_lists_every_flag():
    docs = text(ROOT / "docs" / "operations.md")
    table = docs[docs.index("| flag | stack setting | default |"):]
    table = table[:table.index("\n\n")]
    for action in rehearse.make_parser()._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert f"`{flag}`" in table, flag
