"""The engine as it travels: reproducible zipapps, and a user_data that stays small."""

from __future__ import annotations

import subprocess
import zipfile

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
    # The boot engine answers its own commands without the modules it leaves out.
    result = subprocess.run(["python3", str(boot), "bootstrap", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--state-dir" in result.stdout


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
