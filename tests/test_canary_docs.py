"""docs/canary.md: every command, setting, number and name it shows is the one the code uses."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from ci import lockwait, stacks
from infra import config, remote
from tests.test_canary import DEPLOY_URN

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "canary.md").read_text()


def test_the_replace_command_is_the_one_the_program_prints():
    assert f"pulumi up --replace '{DEPLOY_URN}'" in DOC  # tests/test_canary.py checks the program's warning


def test_every_setting_in_the_host_table_is_declared():
    declared = set(yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"])
    section = DOC[DOC.index("## What stops, starts or replaces the host"):DOC.index("## CI that cannot strand")]
    named = {word for line in section.splitlines() if line.startswith("| ")
             for word in re.findall(r"`([a-z][A-Za-z]+)`", line)}
    assert {"instanceType", "keyName", "sshPublicKey", "volumeSize", "ami", "subnetId", "ref"} <= named
    assert named <= declared, named - declared


def test_every_python_command_parses():
    commands = re.findall(r"`(python -m [^`]+)`", DOC)
    assert {c.split()[2] for c in commands} == {"tools.rehearse", "ci.lockwait", "ci.stacks"}
    for command in commands:
        argv = shlex.split(command.replace("...", "up"))[3:]
        module = command.split()[2]
        if module == "ci.stacks":
            stacks._parser().parse_args(argv)
        elif module == "ci.lockwait":
            assert argv[0] == "--wait-minutes=50" and argv[1] == "--"
        else:
            help_text = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                                       cwd=ROOT, timeout=60).stdout
            assert all(flag in help_text for flag in argv if flag.startswith("--")), argv


def test_the_numbers_are_the_codes():
    longest = remote.longest_up_seconds(config.MAX_HEALTH_TIMEOUT, config.MAX_BUILD_TIMEOUT) // 60
    assert f"{longest} minutes at the maxima" in DOC and f"capped at {config.MAX_BUILD_TIMEOUT} s" in DOC
    deploy = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "ci.lockwait --wait-minutes=50 --" in deploy and "still\n  waiting after 50 minutes" in DOC
    branch = (ROOT / ".github" / "workflows" / "branch-demo.yml").read_text()
    assert f"vars.DEMO_MAX_BRANCH_STACKS || '{stacks.DEFAULT_MAX_BRANCH_STACKS}'" in branch
    assert f"when\n{stacks.DEFAULT_MAX_BRANCH_STACKS} exist" in DOC and f"allows {stacks.ELASTIC_IP_QUOTA} per region" in DOC
    assert lockwait.EXIT_STILL_LOCKED == 75
