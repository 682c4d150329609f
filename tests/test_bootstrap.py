"""The engine as it travels: reproducible zipapps, and a user_data that stays small."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile

import pytest

from infra import bootstrap, commands

# The budget: user_data at most 60% of AWS's 16 KB, so features have room.
USER_DATA_BUDGET = int(bootstrap.USER_DATA_LIMIT * 0.6)


def test_user_data_is_within_budget_and_reproducible():
    first, second = bootstrap.render_user_data(), bootstrap.render_user_data()
    assert first == second and bootstrap.engine_archive() == bootstrap.engine_archive()
    assert len(first.encode()) <= USER_DATA_BUDGET, f"user_data is {len(first.encode())} bytes"


def test_user_data_is_valid_bash_and_writes_a_boot_engine_that_runs(tmp_path):
    user_data = bootstrap.render_user_data()
    subprocess.run(["bash", "-n"], input=user_data, text=True, check=True)
    body = user_data.replace("/opt/sirius-demo", str(tmp_path)).rsplit("\nexec ", 1)[0]
    subprocess.run(["bash", "-c", body], check=True)
    boot = tmp_path / "boot.pyz"
    names = set(zipfile.ZipFile(boot).namelist())
    assert names == {"__main__.py", *(f"engine/{m}" for m in bootstrap.BOOT_MODULES)}
    assert "engine/__main__.py" not in names  # its own entry, not the engine's general one
    # The boot engine answers its own commands without the modules it leaves out.
    result = subprocess.run(["python3", str(boot), "bootstrap", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--state-dir" in result.stdout and "--pull" in result.stdout
    other = subprocess.run(["python3", str(boot), "deploy", "--tag", "v1"], capture_output=True, text=True)
    assert other.returncode == 2 and "usage: python3 boot.pyz bootstrap" in other.stderr


def test_the_full_engine_hands_bootstrap_to_the_boot_entry(tmp_path):
    """One parser for the boot's flags: the full engine's `bootstrap` is the boot entry's."""
    engine = tmp_path / "engine.pyz"
    engine.write_bytes(bootstrap.engine_archive())
    result = subprocess.run(["python3", str(engine), "bootstrap", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--pull IMAGE_REF" in result.stdout and "engine bootstrap" in result.stdout


def test_a_new_engine_command_leaves_the_boot_digest_alone(edit_host_script):
    """The boot digest replaces every instance: the general entry is not part of it."""
    before, engine_before = bootstrap.boot_files_digest(), bootstrap.engine_digest()
    boot_before = bootstrap.boot_archive()
    edit_host_script("__main__.py")  # e.g. a new subcommand
    assert bootstrap.boot_files_digest() == before and bootstrap.boot_archive() == boot_before
    assert bootstrap.engine_digest() != engine_before  # the full engine is updated in place


@pytest.mark.parametrize("name", ["boot_entry.py", "bootstrap.py", "install.py", "docker.py", "__init__.py",
                                  "boot/user-data.sh"])
def test_a_change_in_what_the_boot_runs_changes_the_boot_digest(edit_host_script, name):
    before = bootstrap.boot_files_digest()
    edit_host_script(name)
    assert bootstrap.boot_files_digest() != before


def test_the_boot_digest_covers_the_boot_zipapps_own_entry(monkeypatch):
    before = bootstrap.boot_files_digest()
    monkeypatch.setattr(bootstrap, "BOOT_ENTRY", "other_entry")
    assert bootstrap.boot_files_digest() != before


def test_oversized_user_data_is_refused(monkeypatch):
    monkeypatch.setattr(bootstrap, "USER_DATA_LIMIT", 1000)
    try:
        bootstrap.render_user_data()
    except ValueError as err:
        assert "AWS allows 1000" in str(err)
    else:
        raise AssertionError("expected a size error")


def test_the_full_engine_runs_from_its_zipapp(tmp_path):
    engine = tmp_path / "engine.pyz"
    engine.write_bytes(bootstrap.engine_archive())
    bad = subprocess.run([*commands.engine_argv("deploy", str(engine)), "--tag", "bad tag!"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--tag 'bad tag!': expected a Docker tag" in bad.stderr


def test_the_full_engine_carries_the_demo_data_and_reads_it_from_the_zipapp(tmp_path):
    archive = bootstrap.engine_archive()
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert "engine/demo-hosts.json" in names and "engine/demomodel.py" in names
    assert names[1:] == sorted(names[1:])  # __main__.py first, then sorted: reproducible
    engine = tmp_path / "engine.pyz"
    engine.write_bytes(archive)
    # Loaded the way the deploy loads it, with nothing but the zipapp on the path.
    probe = "from engine import demomodel; hosts = demomodel.load_hosts(); print(len(hosts), hosts[0]['vulnerabilities'][0]['vid'], demomodel.__file__)"
    result = subprocess.run(["python3", "-I", "-c", f"import sys; sys.path.insert(0, {str(engine)!r}); {probe}"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    count, vid, module = result.stdout.split()
    assert module.startswith(str(engine) + "/")  # imported from the zipapp, not from a checkout
    assert int(count) == len(json.loads((bootstrap.ENGINE_DIR / "demo-hosts.json").read_text())["hosts"])
    assert vid.startswith("CVE-")


def test_the_boot_engine_leaves_the_demo_data_out():
    names = zipfile.ZipFile(io.BytesIO(bootstrap.boot_archive())).namelist()
    assert not any(name.endswith(".json") for name in names)


def test_user_data_with_the_first_deploys_six_digests_stays_within_budget():
    digests = {image: "sha256:" + "f" * 64 for image in ("sirius-api", "sirius-engine", "sirius-postgres",
                                                          "sirius-rabbitmq", "sirius-ui", "sirius-valkey")}
    pulls = bootstrap.first_images("ghcr.io/siriusscan", dict.fromkeys(digests, "latest"), digests)
    assert pulls[0] == "ghcr.io/siriusscan/sirius-api@sha256:" + "f" * 64
    text = bootstrap.render_user_data("refs/pull/12345/head", "pr-12345-amd64", pulls)
    assert len(text.encode()) <= USER_DATA_BUDGET, f"user_data is {len(text.encode())} bytes"
    assert bootstrap.first_images("r/ns", {"sirius-ui": "v1"}, {}) == ("r/ns/sirius-ui:v1",)


def test_the_boot_pulls_the_first_deploys_images_and_a_failed_pull_is_only_noted(tmp_path, monkeypatch):
    """engine/bootstrap.prepull with a stand-in `docker` that knows one image."""
    from engine import bootstrap as boot

    fake = tmp_path / "docker"
    fake.write_text('#!/bin/sh\necho "$@" >> "$0.log"\n[ "$3" = r/ns/sirius-ui:v1 ] || { echo "manifest unknown" >&2; exit 1; }\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    outcome = boot.prepull(["r/ns/sirius-ui:v1", "r/ns/sirius-api:v9"], seconds=30)
    assert outcome == {"r/ns/sirius-ui:v1": "pulled", "r/ns/sirius-api:v9": "failed: manifest unknown"}
    assert sorted((tmp_path / "docker.log").read_text().splitlines()) == [
        "pull --quiet r/ns/sirius-api:v9", "pull --quiet r/ns/sirius-ui:v1"]
    assert boot.prepull([]) == {}
