"""engine reset's pure parts: what it deploys again, which demo it says serves, its flags.
The reset itself runs on a real Docker Engine in tests/host/test_reset.py."""

from __future__ import annotations

import json

import pytest

from engine import __main__ as entry
from engine import reset, settings


def deployed(tmp_path, *flags: str) -> settings.Settings:
    s = settings.from_args(["--state-dir", str(tmp_path), "--tag", "v1.1.0", "--ref", "v1.1.0",
                            "--image-tag", "sirius-ui=latest", "--domain", "demo.example.com",
                            "--install-seconds", "90", *flags])
    settings.remember(s)
    return s


def test_a_reset_deploys_what_the_last_deploy_was_asked_for(tmp_path):
    asked = deployed(tmp_path, "--health-timeout", "300", "--no-demo-data")
    again = settings.remembered(str(tmp_path))
    assert again == settings.Settings(**{**vars(asked), "install_seconds": 0.0})  # the OS setup is not redone
    assert settings.remembered(str(tmp_path), health_timeout=60, demo_data=True).health_timeout == 60


def test_a_remembered_file_that_is_missing_or_tampered_with_is_refused_by_name(tmp_path):
    with pytest.raises(settings.SettingsError, match="deploy first"):
        settings.remembered(str(tmp_path))
    deployed(tmp_path)
    path = tmp_path / settings.REMEMBERED
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "image_tag": "x;reboot", "from_a_newer_engine": 1}))
    with pytest.raises(settings.SettingsError, match="--tag"):  # the same rules as the flags
        settings.remembered(str(tmp_path))
    path.write_text(json.dumps({**saved, "health_timeout": "soon"}))
    with pytest.raises(settings.SettingsError, match="wrong kind"):
        settings.remembered(str(tmp_path))
    path.write_text("{")
    with pytest.raises(settings.SettingsError, match="not readable JSON"):
        settings.remembered(str(tmp_path))


def test_the_reset_command_refuses_to_run_before_any_deploy(tmp_path, capsys):
    assert entry.main(["reset", "--state-dir", str(tmp_path)]) == 2
    assert "deploy first (pulumi up), then reset" in capsys.readouterr().err
    assert not (tmp_path / reset.REPORT_FILE).exists()
    with pytest.raises(SystemExit):
        entry.main(["reset", "--tag", "v2"])  # what to deploy is the last deploy's, never a flag of the reset


@pytest.mark.parametrize(("status", "healthy", "wiped", "demo"), [
    ("reset", True, True, reset.FRESH),
    ("failed", True, True, reset.FRESH),  # HTTPS failed after a healthy stack: fresh, on its raw ports
    ("rolled-back", False, True, reset.LAST_HEALTHY),
    ("rolled-back", False, False, reset.UNCHANGED),  # the wipe itself failed: restored on the old data
    ("failed", False, False, reset.UNCHANGED),  # e.g. the lock, or nothing to fall back on
    ("failed", False, True, reset.DOWN),
    ("unhealthy", False, True, reset.DOWN),
])
def test_which_demo_a_reset_leaves(status, healthy, wiped, demo):
    assert reset.demo_state(status, healthy, wiped) == demo
