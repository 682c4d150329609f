"""The remote commands under mocks: graph, secrets, what re-runs, outputs."""

from __future__ import annotations

import subprocess

import pytest

from pathlib import Path

from tests.pulumi_mocks import FAKE_ADMIN_PASSWORD, FAKE_PRIVATE_KEY, run_stack

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "command:remote:Command"
BASE = {"sshCidrs": "198.51.100.7/32", "ref": "v1.2.0"}


def commands_of(run) -> dict[str, object]:
    return {r.name.removeprefix("sirius-"): r for r in run.of_type(COMMAND)}


def deps(resource) -> set[str]:
    return {urn.split("::")[-1].removeprefix("sirius-") for urn in resource.dependencies}


@pytest.fixture(scope="module")
def run():
    return run_stack(BASE)


def test_command_graph(run):
    cmds = commands_of(run)
    assert set(cmds) == {"wait-boot", "engine", "deploy", "health", "admin-password", "reset"}
    assert {"host", "eip", "in-ssh-198-51-100-7-32", "out-ipv4"} <= deps(cmds["wait-boot"])
    assert "wait-boot" in deps(cmds["engine"])
    assert "engine" in deps(cmds["deploy"])
    assert "deploy" in deps(cmds["health"]) and "deploy" in deps(cmds["admin-password"])
    # The reset wipes the stack first: never while health or the password is being read.
    assert {"deploy", "health", "admin-password"} <= deps(cmds["reset"])


def test_connection_is_the_elastic_ip_with_a_secret_key(run):
    for command in commands_of(run).values():
        assert command.is_secret("connection")  # the whole connection, private key included
        connection = command.raw["connection"]["value"]
        assert connection["host"] == "52.12.34.56" and connection["user"] == "ubuntu"
        assert connection["privateKey"] == FAKE_PRIVATE_KEY
        assert connection["dialErrorLimit"] * connection["perDialTimeout"] >= 300  # minutes, for a booting VM


def test_no_secret_on_any_command_line_and_password_never_logged(run):
    cmds = commands_of(run)
    for command in cmds.values():
        assert FAKE_PRIVATE_KEY.splitlines()[1] not in command.inputs["create"]
        assert not command.inputs.get("addPreviousOutputInEnv", True)
    assert cmds["admin-password"].inputs["logging"] == "none"
    assert "stdout" in cmds["admin-password"].additional_secret_outputs
    assert run.outputs["adminPassword"] == FAKE_ADMIN_PASSWORD
    assert "adminPassword" in run.secret_outputs


def test_deploy_command_carries_tag_and_ref(run):
    create = commands_of(run)["deploy"].inputs["create"]
    assert create.startswith("sudo python3 /opt/sirius-demo/engine.pyz deploy ")
    assert "--tag v1.2.0" in create and "--ref v1.2.0" in create and "--public-host 52.12.34.56" in create


def test_engine_upload_installs_an_engine_that_runs(run, tmp_path):
    """The upload command, run for real (without sudo, into a scratch dir) on its stdin."""
    engine = commands_of(run)["engine"]
    target = tmp_path / "engine.pyz"
    create = engine.inputs["create"].replace("sudo ", "").replace("/opt/sirius-demo/engine.pyz", str(target))
    subprocess.run(["bash", "-c", create], input=engine.inputs["stdin"], text=True, check=True)
    assert not (tmp_path / "engine.pyz.new").exists()
    bad = subprocess.run(["python3", str(target), "deploy", "--tag", "bad tag!"], capture_output=True, text=True)
    assert bad.returncode == 2 and "expected a Docker tag" in bad.stderr


def test_outputs(run):
    assert run.outputs["health"]["status"] == "healthy"
    assert run.outputs["deploySeconds"] == 42.5
    assert "health" not in run.secret_outputs


def triggers(config) -> dict[str, list]:
    return {name: c.inputs.get("triggers") for name, c in commands_of(run_stack({**BASE, **config})).items()}


def test_a_new_tag_reruns_only_deploy_and_health(run):
    before = {name: c.inputs.get("triggers") for name, c in commands_of(run).items()}
    after = triggers({"imageTag": "v1.1.0"})
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"deploy"}  # health follows the deploy's output


def test_a_new_ref_reruns_deploy(run):
    before = commands_of(run)["deploy"].inputs["triggers"]
    assert triggers({"ref": "main"})["deploy"] != before


def test_an_engine_change_reruns_engine_and_deploy_only(run, edit_host_script):
    edit_host_script("deploy.py")
    before = {name: c.inputs.get("triggers") for name, c in commands_of(run).items()}
    after = triggers({})
    assert {name for name in before if before[name] != after[name]} == {"engine", "deploy"}


def test_a_new_command_line_reruns_the_deploy_and_the_docs_say_so(run):
    """pulumi-command runs `create` again when any input changes, so the deploy re-runs for
    settings that only reach its command line, not just for its triggers."""
    changed = {"healthTimeout": ("900", "--health-timeout 900"), "repoUrl": ("file:///srv/sirius.git", "--repo file:///srv/sirius.git"),
               "imageRegistry": ("127.0.0.1:5000/siriusscan", "--registry 127.0.0.1:5000/siriusscan"),
               "domain": ("demo.example.com", "--domain demo.example.com"), "acmeCa": ("staging", "--acme-ca staging"),
               "acmeEmail": ("ops@example.com", "--acme-email ops@example.com")}
    before = commands_of(run)["deploy"]
    after = commands_of(run_stack({**BASE, **{key: value for key, (value, _) in changed.items()}}))["deploy"]
    assert after.inputs["triggers"] == before.inputs["triggers"]
    for key, (_, flag) in changed.items():
        assert flag in after.inputs["create"] and flag not in before.inputs["create"], key
    readme = (ROOT / "docs" / "operations.md").read_text()
    deploy_item = readme[readme.index("3. `deploy`:"):readme.index("4. `health`:")]
    source = (ROOT / "infra" / "remote.py").read_text()
    for key in changed:
        assert f"`{key}`" in deploy_item and key in source, f"the docs do not say that {key} re-runs the deploy"
    assert "never otherwise" not in readme and "never for anything else" not in source


def test_preview_has_unknown_outputs():
    preview = run_stack(BASE, preview=True)
    assert {"health", "deploySeconds", "adminPassword"} <= preview.unknown_outputs
    assert len(preview.of_type(COMMAND)) == 6


# --- the nightly reset (docs/reset.md) ------------------------------------------------------------


def test_the_reset_command_resets_to_the_hosts_last_deploy_and_logs_its_report(run):
    reset = commands_of(run)["reset"]
    assert reset.inputs["create"] == "sudo python3 /opt/sirius-demo/engine.pyz reset --state-dir /var/lib/sirius-demo"
    assert reset.inputs["logging"] == "stdoutAndStderr"  # the report, for the workflow's summary
    assert not reset.inputs.get("triggers") and "stdout" not in (reset.additional_secret_outputs or [])
    assert run.outputs["nightlyReset"] == "23:59"
    assert run.outputs["resetUrn"].endswith("::sirius-reset") and "command:remote:Command" in run.outputs["resetUrn"]


def test_no_setting_ever_reruns_the_reset(run):
    """Only the workflow's --replace runs it: a new tag, ref or timeout changes nothing of it."""
    before = commands_of(run)["reset"].inputs
    other = commands_of(run_stack({**BASE, "ref": "main", "imageTag": "v1.1.0", "healthTimeout": "900",
                                   "nightlyReset": "04:59"}))["reset"].inputs
    assert (other["create"], other.get("triggers")) == (before["create"], before.get("triggers"))


def test_nightly_reset_off_means_no_reset_command_and_no_urn():
    off = run_stack({**BASE, "nightlyReset": "off"})
    assert "reset" not in commands_of(off) and "resetUrn" not in off.outputs
    assert off.outputs["nightlyReset"] == "off"


def test_the_health_report_is_taken_again_exactly_when_the_deploys_output_changes(run, monkeypatch):
    """health's only trigger is the deploy's stdout: a new deploy (a new report) re-runs it,
    the same output does not; nothing else does (not the instance, not the engine)."""
    from tests import pulumi_mocks

    cmds = commands_of(run)
    assert cmds["health"].inputs["triggers"] == [pulumi_mocks.DemoMocks._command_stdout("sirius-deploy")]
    monkeypatch.setattr(pulumi_mocks, "FAKE_REPORT", {**pulumi_mocks.FAKE_REPORT, "totalSeconds": 99.0})
    again = commands_of(run_stack(BASE))
    assert again["health"].inputs["triggers"] != cmds["health"].inputs["triggers"]
    assert '"totalSeconds": 99.0' in again["health"].inputs["triggers"][0]
    assert commands_of(run_stack(BASE))["health"].inputs["triggers"] == again["health"].inputs["triggers"]


# --- how long an up may take (the workflows' job timeouts) ------------------------------------------

GITHUB_JOB_SECONDS = 6 * 3600


def test_the_longest_up_counts_a_reset_after_a_healthy_deploy():
    """The reset command runs in the same up as a deploy (its creation; reset.yml when the pins
    moved): a healthy deploy (no rollback: one that rolls back ends the up) and then a reset
    with its own builds and fallback."""
    from infra import remote

    health, build = 600, 3600
    fixed = remote.RESOURCES_SECONDS + remote.DIAL_ATTEMPTS * remote.DIAL_TIMEOUT + remote.BOOT_SETUP_SECONDS
    deploy_then_reset = (health + build) + (2 * health + build) + 2 * remote.DEPLOY_MARGIN_SECONDS
    assert remote.longest_up_seconds(health, build) == fixed + deploy_then_reset
    assert remote.longest_up_seconds(health, build, nightly_reset=False) == \
        fixed + 2 * health + build + remote.DEPLOY_MARGIN_SECONDS


def test_the_caps_fit_a_github_job_with_the_reset_and_the_wait_for_the_lock():
    """At the maxima, with the reset in the same up, deploy.yml's and reset.yml's jobs (50 min
    waiting for the stack's lock, setup) still fit GitHub's 6 h."""
    import re

    from infra import config, remote

    longest = remote.longest_up_seconds(config.MAX_HEALTH_TIMEOUT, config.MAX_BUILD_TIMEOUT)
    assert longest > remote.longest_up_seconds(config.MAX_HEALTH_TIMEOUT, config.MAX_BUILD_TIMEOUT,
                                               nightly_reset=False)
    for workflow in ("deploy.yml", "reset.yml"):
        text = (ROOT / ".github" / "workflows" / workflow).read_text()
        (wait,) = re.findall(r"ci\.lockwait --wait-minutes=(\d+)", text)
        setup = 10 * 60  # checkout, Python, the CLI, install, login, config (tests/test_workflows.py)
        assert longest + int(wait) * 60 + setup <= GITHUB_JOB_SECONDS, workflow
    # The defaults are well inside the caps: the caps leave room for slower builds and starts.
    schema = config.load_schema()
    assert schema["healthTimeout"].default < config.MAX_HEALTH_TIMEOUT
    assert schema["buildTimeout"].default < config.MAX_BUILD_TIMEOUT
    # docs/canary.md names both caps (tests/test_canary_docs.py checks its minutes).
    doc = " ".join((ROOT / "docs" / "canary.md").read_text().split())
    assert f"`healthTimeout` is capped at {config.MAX_HEALTH_TIMEOUT} s" in doc
    assert f"`buildTimeout` is capped at {config.MAX_BUILD_TIMEOUT} s" in doc
    # and so do the settings' descriptions (Pulumi.yaml, and the table generated from it).
    assert f"{config.MIN_HEALTH_TIMEOUT} to {config.MAX_HEALTH_TIMEOUT}" in schema["healthTimeout"].description
    assert f"{config.MIN_BUILD_TIMEOUT} to {config.MAX_BUILD_TIMEOUT}" in schema["buildTimeout"].description
