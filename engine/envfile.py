"""The project's .env: settings from the deploy, secrets generated here once and kept.

Secrets never leave the host: they are generated on it, written only to .env (0600)
and the API key file, and `redact` blanks them in anything the engine prints.
"""

from __future__ import annotations

import os
import secrets as random

from engine import rules

API_KEY_FILE = "secrets/sirius_api_key.txt"
# Where compose mounts the key in ui, api and engine. Upstream's installer writes it to
# .env too: sirius-engine's health check interpolates it at compose time.
API_KEY_MOUNT = "/run/secrets/sirius_api_key"
# name -> random bytes, hex encoded (safe in .env, URLs and logs' redaction).
GENERATED = {"POSTGRES_PASSWORD": 24, "NEXTAUTH_SECRET": 32, "INITIAL_ADMIN_PASSWORD": 12}
TAG_KEY = "IMAGE_TAG"


def parse(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def with_secrets(existing: dict[str, str]) -> dict[str, str]:
    """The generated secrets: kept from `existing`, made only when missing."""
    return {name: existing.get(name) or random.token_hex(size) for name, size in GENERATED.items()}


def public_urls(public_host: str, ui_port: int, api_port: int, domain: str = "") -> tuple[str, str]:
    """The UI's and the API's URLs for a browser: through the HTTPS proxy when there is a domain."""
    if domain:
        return f"https://{domain}", f"https://{domain}{rules.API_PATH}"
    host = f"[{public_host}]" if ":" in public_host else public_host
    return f"http://{host}:{ui_port}", f"http://{host}:{api_port}"


def render(secrets: dict[str, str], public_host: str, image_tag: str, ui_port: int, api_port: int,
           domain: str = "") -> str:
    ui_url, api_url = public_urls(public_host, ui_port, api_port, domain)
    values = {
        **secrets,
        "DATABASE_URL": f"postgresql://postgres:{secrets['POSTGRES_PASSWORD']}@sirius-postgres:5432/sirius",
        "NEXTAUTH_URL": ui_url,
        "NEXT_PUBLIC_SIRIUS_API_URL": api_url,
        "SIRIUS_API_KEY_FILE": API_KEY_MOUNT,
        TAG_KEY: image_tag,
    }
    return "# Written by the sirius-demo engine; secrets are generated on this host and kept.\n" + "".join(
        f"{key}={value}\n" for key, value in values.items()
    )


def same_but_tag(old: str, new: str) -> bool:
    """Whether two .env texts differ at most in IMAGE_TAG (a tag change compose must not see)."""
    strip = lambda text: {k: v for k, v in parse(text).items() if k != TAG_KEY}  # noqa: E731
    return bool(old) and strip(old) == strip(new)


def ensure_api_key(project_dir: str) -> str:
    """The API key file: 32 random bytes as hex, made once; mode 0644 (the API runs as uid 1001)."""
    path = os.path.join(project_dir, API_KEY_FILE)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    key = open(path).read().strip() if os.path.exists(path) else ""
    if not key:
        key = random.token_hex(32)
        with open(path, "w") as f:
            f.write(key + "\n")
    os.chmod(path, 0o644)
    return key


def write_private(path: str, text: str) -> bool:
    """Write `text` with mode 0600 unless it is already there; True when it changed."""
    old = open(path).read() if os.path.exists(path) else None
    if old != text:
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    os.chmod(path, 0o600)
    return old != text


def redact(text: str, values: list[str]) -> str:
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        text = text.replace(value, "[redacted]")
    return text
