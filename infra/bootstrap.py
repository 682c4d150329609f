"""The host engine as it travels: reproducible Python zipapps.

- user_data (engine/boot/user-data.sh) carries the boot part of the engine (OS
  setup) and runs `bootstrap`, with the first deploy's ref, tag and images as data (no
  secret, no address): the boot pulls those images while Pulumi waits for SSH. The
  instance ignores later changes of user_data (infra/instance.py): a later ref or tag is
  deployed over SSH, and never stops or replaces a running host. Well inside AWS's 16 KB.
- The whole engine is uploaded over SSH before every deploy (infra/remote.py),
  the first one included.
"""

from __future__ import annotations

import base64
import hashlib
import io
import textwrap
import zipfile
from collections.abc import Mapping
from pathlib import Path

from infra import commands

ENGINE_DIR = Path(__file__).resolve().parent.parent / "engine"
TEMPLATE = ENGINE_DIR / "boot" / "user-data.sh"
WAIT_BOOT = ENGINE_DIR / "boot" / "wait-boot.sh"
# What user_data carries and runs at boot: a change here needs a new instance. The
# rest of the engine is updated in place by the remote commands. The boot zipapp has its
# own entry (engine/boot_entry.py), not the engine's general one (engine/__main__.py):
# a new engine command leaves the boot digest, and so every instance, alone.
BOOT_ENTRY = "boot_entry"
BOOT_MODULES = ("__init__.py", f"{BOOT_ENTRY}.py", "bootstrap.py", "docker.py", "install.py")
# AWS refuses user_data over 16 KB (raw bytes).
USER_DATA_LIMIT = 16 * 1024
GENERAL_ENTRY = "__main__"


def _zip_main(entry: str) -> bytes:
    """The zipapp's top-level __main__.py: `entry`'s main with the command line."""
    return f"import sys\nfrom engine.{entry} import main\nsys.exit(main(sys.argv[1:]))\n".encode()


# Data the engine reads with pkgutil.get_data, from the zipapp as from a checkout.
ENGINE_DATA = ("demo-hosts.json",)


def engine_files(modules: tuple[str, ...] | None = None) -> dict[str, bytes]:
    """engine/*.py and ENGINE_DATA (or only `modules`) by path inside the zipapp, sorted."""
    if modules is None:
        paths = sorted([*ENGINE_DIR.glob("*.py"), *(ENGINE_DIR / name for name in ENGINE_DATA)])
    else:
        paths = [ENGINE_DIR / m for m in sorted(modules)]
    return {f"engine/{p.name}": p.read_bytes() for p in paths}


def _digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    return digest.hexdigest()


def engine_digest() -> str:
    return _digest(engine_files())


def boot_archive_files() -> dict[str, bytes]:
    """Every file of the boot zipapp, its top-level __main__.py included."""
    return {"__main__.py": _zip_main(BOOT_ENTRY), **engine_files(BOOT_MODULES)}


def boot_files_digest() -> str:
    """What user_data carries: its script and the boot zipapp's files (the instance's trigger)."""
    return _digest({"boot/user-data.sh": TEMPLATE.read_bytes(), **boot_archive_files()})


def _archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content, compresslevel=9)
    return buffer.getvalue()


def engine_archive() -> bytes:
    """The whole engine as a byte-for-byte reproducible zipapp: `python3 engine.pyz COMMAND`."""
    return _archive({"__main__.py": _zip_main(GENERAL_ENTRY), **engine_files()})


def boot_archive() -> bytes:
    """The boot zipapp user_data writes: `python3 boot.pyz bootstrap ...` and nothing else."""
    return _archive(boot_archive_files())


def _encoded(archive: bytes) -> str:
    return "\n".join(textwrap.wrap(base64.b64encode(archive).decode("ascii"), 76)) + "\n"


def encoded_engine() -> str:
    """base64 lines of the engine zipapp, as the engine upload carries it."""
    return _encoded(engine_archive())


def first_images(registry: str, tags: Mapping[str, str], digests: Mapping[str, str]) -> tuple[str, ...]:
    """The image references the boot pulls: by digest when the preflight saw one, else by tag."""
    return tuple(f"{registry}/{image}@{digests[image]}" if image in digests else f"{registry}/{image}:{tag}"
                 for image, tag in sorted(tags.items()))


def render_user_data(ref: str = "", image_tag: str = "", pulls: tuple[str, ...] = ()) -> str:
    """The user_data script: the boot zipapp, then `bootstrap` (with the first deploy's ref,
    tag and images when given)."""
    boot = commands.bootstrap_argv(ref=ref, image_tag=image_tag, pulls=pulls)
    text = (
        TEMPLATE.read_text()
        .replace("@@BOOT_ENGINE@@", _encoded(boot_archive()).rstrip("\n"))
        .replace("@@BOOTSTRAP_COMMAND@@", commands.shell(boot))
    )
    if len(text.encode()) > USER_DATA_LIMIT:
        raise ValueError(f"user_data is {len(text.encode())} bytes; AWS allows {USER_DATA_LIMIT}")
    return text
