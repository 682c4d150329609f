"""docs/upgrading.md keeps up with changes that reach running stacks. The instance's
replacement trigger (infra/instance.boot_digest: the boot scripts, the AMI when none is
pinned, the root volume's type and default size) changes only with a new instance for
every stack on its next `pulumi up`, so its value for a default stack is pinned here: a
change must come with a new entry at the top of the doc that names it."""

import re
from pathlib import Path

from infra import config, instance

DOC = Path(__file__).resolve().parent.parent / "docs" / "upgrading.md"


def default_stack_trigger() -> str:
    return instance.boot_digest(config.parse({}, stack="demo", lookup_public_ip=lambda: "52.1.1.1"))[:12]


def test_the_newest_entry_names_the_current_instance_trigger():
    trigger = default_stack_trigger()
    newest = re.split(r"\n## ", DOC.read_text())[1]
    assert f"(instance trigger `{trigger}`)" in newest.splitlines()[0], (
        f"the instance's replacement trigger changed ({trigger}): every instance is replaced on its "
        "next `pulumi up`; add an entry at the top of docs/upgrading.md that says so")
