"""The project's .env and the secrets in it."""

from __future__ import annotations

import os

from engine import envfile


def test_secrets_are_kept_across_deploys_and_made_only_when_missing():
    """Kills: secrets regenerated on every deploy."""
    first = envfile.with_secrets({})
    assert set(first) == set(envfile.GENERATED) and all(len(v) >= 24 for v in first.values())
    assert envfile.with_secrets(first) == first
    partial = envfile.with_secrets({"POSTGRES_PASSWORD": "kept"})
    assert partial["POSTGRES_PASSWORD"] == "kept" and partial["NEXTAUTH_SECRET"] != first["NEXTAUTH_SECRET"]


def test_env_has_what_upstreams_installer_writes():
    text = envfile.render(envfile.with_secrets({}), "52.1.2.3", "v1.1.0", 3000, 9001)
    values = envfile.parse(text)
    # sirius-engine's health check interpolates this at compose time (shared facts).
    assert values["SIRIUS_API_KEY_FILE"] == "/run/secrets/sirius_api_key"
    assert values["DATABASE_URL"] == f"postgresql://postgres:{values['POSTGRES_PASSWORD']}@sirius-postgres:5432/sirius"
    assert values["NEXTAUTH_URL"] == "http://52.1.2.3:3000" and values["NEXT_PUBLIC_SIRIUS_API_URL"] == "http://52.1.2.3:9001"
    assert values["IMAGE_TAG"] == "v1.1.0"
    assert envfile.parse(envfile.render(envfile.with_secrets({}), "2001:db8::1", "x", 3000, 9001))["NEXTAUTH_URL"] == "http://[2001:db8::1]:3000"


def test_a_tag_change_alone_is_recognised():
    secrets = envfile.with_secrets({})
    v1 = envfile.render(secrets, "h", "v1", 3000, 9001)
    assert envfile.same_but_tag(v1, envfile.render(secrets, "h", "v2", 3000, 9001))
    assert not envfile.same_but_tag(v1, envfile.render(secrets, "other", "v2", 3000, 9001))
    assert not envfile.same_but_tag("", v1)


def test_redaction_blanks_every_secret():
    """Kills: redaction off."""
    text = "DATABASE_URL=postgresql://postgres:s3cr3t@db key=abcdef0123 fine"
    out = envfile.redact(text, ["s3cr3t", "abcdef0123", ""])
    assert "s3cr3t" not in out and "abcdef0123" not in out and out.count("[redacted]") == 2 and "fine" in out


def test_key_file_made_once_readable_by_the_api(tmp_path):
    key = envfile.ensure_api_key(str(tmp_path))
    path = tmp_path / envfile.API_KEY_FILE
    assert len(key) == 64 and oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert envfile.ensure_api_key(str(tmp_path)) == key


def test_env_is_private(tmp_path):
    path = str(tmp_path / ".env")
    assert envfile.write_private(path, "A=1\n") is True
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert envfile.write_private(path, "A=1\n") is False
