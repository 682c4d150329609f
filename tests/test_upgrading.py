"""docs/upgrading.md keeps up with changes that reach running stacks: a change of the boot
scripts replaces every instance (their digest is the instance's replacement trigger), so it
must come with an entry naming the new digest."""

import re
from pathlib import Path

from infra import bootstrap

DOC = Path(__file__).resolve().parent.parent / "docs" / "upgrading.md"


def entries() -> list[str]:
    return re.split(r"\n## ", DOC.read_text())[1:]


def test_the_newest_entry_names_the_current_boot_digest():
    digest = bootstrap.boot_files_digest()[:12]
    newest = entries()[0]
    assert f"(boot digest `{digest}`)" in newest.splitlines()[0], (
        f"the boot scripts changed (digest {digest}): every instance is replaced on its next "
        "`pulumi up`; add an entry at the top of docs/upgrading.md that says so")

