"""The user_data that boots the instance: host scripts plus the first deploy.

Rendered from infra/host/user-data.sh. The host scripts travel as a deterministic
gzipped tar (so the same scripts always give the same bytes and the same digest),
and the bootstrap command line is built by infra/commands.py and quoted there.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
import textwrap
from pathlib import Path

from infra import commands

HOST_DIR = Path(__file__).resolve().parent / "host"
HOST_SCRIPTS = ("lib.sh", "install.sh", "deploy.sh", "health.sh", "bootstrap.sh")
# What only runs at boot: a change here needs a new instance. The deploy engine
# is updated in place by the remote commands (infra/remote.py).
BOOT_FILES = ("user-data.sh", "bootstrap.sh", "install.sh")
ENGINE_FILES = ("lib.sh", "deploy.sh", "health.sh")
TEMPLATE = HOST_DIR / "user-data.sh"
# AWS refuses user_data over 16 KB (raw, before base64).
USER_DATA_LIMIT = 16 * 1024


def host_scripts(names: tuple[str, ...] = HOST_SCRIPTS) -> dict[str, bytes]:
    return {name: (HOST_DIR / name).read_bytes() for name in names}


def files_digest(names: tuple[str, ...]) -> str:
    """sha256 over some host files' names and contents."""
    digest = hashlib.sha256()
    for name in sorted(names):
        digest.update(name.encode() + b"\0" + (HOST_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()


def boot_files_digest() -> str:
    return files_digest(BOOT_FILES)


def engine_digest() -> str:
    return files_digest(ENGINE_FILES)


def script_archive(names: tuple[str, ...] = HOST_SCRIPTS) -> bytes:
    """Host scripts as a byte-for-byte reproducible .tar.gz."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, content in sorted(host_scripts(names).items()):
                info = tarfile.TarInfo(name)
                info.size = len(content)
                info.mode = 0o755
                info.mtime = 0
                info.uname = info.gname = "root"
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def encoded_archive(names: tuple[str, ...] = HOST_SCRIPTS) -> str:
    """base64 lines of script_archive(names), as user_data and the engine upload carry it."""
    return "\n".join(textwrap.wrap(base64.b64encode(script_archive(names)).decode("ascii"), 76)) + "\n"


def render_user_data(spec: commands.DeploySpec) -> str:
    encoded = encoded_archive().rstrip("\n")
    text = (
        TEMPLATE.read_text()
        .replace("@@HOST_SCRIPTS@@", encoded)
        .replace("@@BOOTSTRAP_COMMAND@@", commands.shell(commands.bootstrap_argv(spec)))
    )
    size = len(text.encode())
    if size > USER_DATA_LIMIT:
        raise ValueError(f"user_data is {size} bytes; AWS allows {USER_DATA_LIMIT}")
    return text
