"""The engine on upstream Sirius as published (the fixture reproduces its compose files
per ref): what cannot work fails in seconds, before any pull, naming what to do."""

from __future__ import annotations

import shlex
import subprocess
import shutil

from infra import bootstrap, commands
from testbed.standins import TAG_V1


def assert_stopped_at_the_check(deploy, *fragments: str) -> None:
    report = deploy.report
    assert deploy.code == 1 and report["status"] == "failed", deploy.stderr[-2000:]
    assert report["error"].startswith("compatibility check: ")
    for fragment in fragments:
        assert fragment in report["error"], report["error"]
    assert report["phases"]["pull"] == 0 and report["pullRounds"] == 0  # nothing was pulled
    assert deploy.seconds < 30


def test_without_the_key_file_variable_the_check_names_the_engines_health_check(tmp_path, monkeypatch, site):
    """The engine with the line that upstream's installer also writes removed: upstream's
    compose renders sirius-engine's check as `[ -r "" ]`. Fails in seconds, not after the
    health timeout."""
    copy = tmp_path / "engine-copy"
    shutil.copytree(bootstrap.ENGINE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    envfile = copy / "envfile.py"
    text = envfile.read_text()
    assert '        "SIRIUS_API_KEY_FILE": API_KEY_MOUNT,\n' in text
    envfile.write_text(text.replace('        "SIRIUS_API_KEY_FILE": API_KEY_MOUNT,\n', ""))
    monkeypatch.setattr(bootstrap, "ENGINE_DIR", copy)
    site.zipapp.write_bytes(bootstrap.engine_archive())
    assert_stopped_at_the_check(site.deploy(TAG_V1, health_timeout=600),
                                "sirius-engine's healthcheck uses ${SIRIUS_API_KEY_FILE}")
    assert site.containers() == {}


def test_the_stale_demo_branch_is_refused_naming_the_services_without_image(site):
    deploy = site.deploy(TAG_V1, ref="demo")
    assert_stopped_at_the_check(deploy, "sirius-postgres has no image", "sirius-rabbitmq has no image",
                                "sirius-valkey has no image")
    assert site.containers() == {}


def test_an_old_release_is_refused_by_its_compose_file(site):
    """v1.0.0 requires the removed SIRIUS_API_KEY; v0.4.1 has no image at all. (The ref
    setting refuses both by name; here the git ref is given directly, as a stack whose
    `imageTag` points elsewhere could.)"""
    assert_stopped_at_the_check(site.deploy(TAG_V1, git_ref="v1.0.0"), "requires SIRIUS_API_KEY")
    assert_stopped_at_the_check(site.deploy(TAG_V1, git_ref="v0.4.1"), "sirius-api has no image")


def test_v1_1_0_is_healthy_and_its_infra_ports_stay_on_loopback(site):
    deploy = site.deploy(TAG_V1, ref="v1.1.0")
    assert deploy.code == 0, deploy.stderr[-3000:]
    ports = site.engine.run("ps", "--format", "{{.Names}} {{.Ports}}").stdout
    for line in ports.splitlines():
        assert "0.0.0.0" not in line and ":::" not in line, line  # bind address 127.0.0.1 in tests
    assert "127.0.0.1:5432->5432/tcp" in ports and "127.0.0.1:6379->6379/tcp" in ports


def test_a_per_image_fallback_is_called_out_image_by_image(site):
    deploy = site.deploy(TAG_V1, image_tags={"sirius-ui": "v2"})
    assert deploy.code == 0, deploy.stderr[-3000:]
    assert deploy.report["imageFallbacks"] == {"sirius-ui": {"wanted": TAG_V1, "running": "v2"}}


def test_an_engine_without_start_interval_deploys_at_upstreams_intervals_and_says_so(tmp_path, site):
    """Engine 20.10 (API 1.41) knows no start_interval. Shown by the API-version detection,
    not a second daemon (two Engine versions on one machine break its bridges): a `docker`
    whose `version` answers 1.41, everything else the real client. Upstream's 10-30 s
    intervals then decide, so this deploy takes about 90 s."""
    shim_dir = tmp_path / "old-engine"
    shim_dir.mkdir()
    (shim_dir / "docker").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = version ]; then echo 1.41; exit 0; fi\n'
        f'exec {shlex.quote(site.engine.docker)} "$@"\n')
    (shim_dir / "docker").chmod(0o755)
    env = {**site.engine.env, "PATH": f"{shim_dir}:{site.engine.env['PATH']}"}
    deploy = site.deploy(TAG_V1, env=env, health_timeout=300)
    assert deploy.code == 0, deploy.stderr[-3000:]
    report = deploy.report
    assert report["startInterval"] is False and "API 1.41 is older than 1.44" in report["startIntervalNote"]
    assert "start_interval" not in (site.state / "compose.run.yaml").read_text()
    assert "health checks keep upstream's intervals" in deploy.stderr
    assert deploy.seconds > 60  # upstream's intervals, really


def test_under_a_strict_umask_rabbitmq_can_read_its_config_and_secrets_keep_their_modes(site):
    """cloud-init and sudo may run with umask 077: git then checks rabbitmq.conf out 0600,
    and rabbitmq, which reads it as its own user, never starts (upstream issue #128)."""
    argv = commands.deploy_argv(site.spec(TAG_V1), engine=str(site.zipapp))
    result = subprocess.run(["sh", "-c", 'umask 077 && exec "$@"', "sh", *argv], capture_output=True, text=True,
                            env=site.engine.env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    mode = lambda path: (site.project / path).stat().st_mode & 0o777  # noqa: E731
    assert mode("rabbitmq/rabbitmq.conf") == 0o644
    assert mode("secrets/sirius_api_key.txt") == 0o644 and mode(".env") == 0o600
