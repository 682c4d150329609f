"""The demo monitor (ci/monitor.py) against real HTTP servers on 127.0.0.1, the issue text it
writes, and ci/monitor-issue.sh against a stand-in `gh` that records its calls."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from ci import monitor
from ci.monitor import MonitorError, Verdict, check, endpoint, render_report
from engine import report as engine_report
from tests.conftest import Reply
from tests.engine.test_proxy import _Backend, running_caddy  # noqa: F401 - the real proxy, a fixture
from tests.test_workflow_steps import FAKE_GH

ROOT = Path(__file__).resolve().parent.parent
HEALTHY = json.dumps({"status": "healthy", "version": "1.1.0"}).encode()
UI_PAGE = b"<!doctype html><title>Sirius</title>"
NOW = datetime(2026, 12, 1, 2, 30, tzinfo=timezone.utc)
# Quick retries: the pauses are recorded, not slept.
FAST = {"attempts": 3, "timeout": 2.0, "backoff": 1.0}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """urllib honours proxy variables: 127.0.0.1 must be asked directly."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def demo(stand_in):
    """A healthy demo: the UI and the API on two servers, as on the instance (3000, 9001)."""
    ui = stand_in().route("/", Reply(200, UI_PAGE))
    api = stand_in().route("/health", Reply(200, HEALTHY))
    return ui, api, {"uiUrl": ui.url, "apiUrl": api.url}


def run_check(outputs, **options):
    pauses: list[float] = []
    verdict = check(outputs, sleep=pauses.append, clock=lambda: NOW, **{**FAST, **options})
    return verdict, {p.name: p for p in verdict.probes}, pauses


# --- probing ----------------------------------------------------------------------------------


def test_a_healthy_demo_is_ok_at_the_first_attempt(demo):
    ui, api, outputs = demo
    verdict, probes, pauses = run_check(outputs)
    assert verdict.status == "ok" and verdict.checked_at == "2026-12-01T02:30:00Z"
    assert probes["UI"].url == ui.url + "/" and probes["UI"].attempts == ["HTTP 200"]
    assert probes["API"].url == api.url + "/health" and probes["API"].detail == "HTTP 200, status healthy"
    assert pauses == [] and ui.hits["/"] == 1 and api.hits["/health"] == 1


def test_ui_down_is_reported_after_every_attempt(demo, closed_port_url):
    _, _, outputs = demo
    verdict, probes, pauses = run_check({**outputs, "uiUrl": closed_port_url.rstrip("/")})
    assert verdict.status == "down" and [p.name for p in verdict.failures()] == ["UI"]
    assert probes["UI"].attempts == ["connection refused"] * 3 and probes["UI"].status is None
    assert probes["API"].ok
    assert pauses == [1.0, 2.0]  # doubling between attempts, none after the last


def test_api_500_is_down_and_every_attempt_reached_the_server(demo):
    _, api, outputs = demo
    api.route("/health", Reply(500, b'{"error": "database"}'))
    verdict, probes, _ = run_check(outputs)
    assert verdict.status == "down"
    assert probes["API"].status == 500 and probes["API"].detail == "HTTP 500"
    assert api.hits["/health"] == 3 == len(probes["API"].attempts)
    assert probes["UI"].ok


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<html>Sirius</html>", "HTTP 200 but not JSON ('<html>Sirius</html>')"),
        (b"", "HTTP 200 but not JSON (empty)"),
        (b'{"status": "unhealthy", "database": "down"}', "HTTP 200 but status 'unhealthy', not 'healthy'"),
        (b'{"version": "1.1.0"}', "HTTP 200 but status None, not 'healthy'"),
        (b'["healthy"]', "HTTP 200 but status None, not 'healthy'"),
        (b"\xff\xfe", "HTTP 200 but not JSON"),
    ],
)
def test_api_answering_non_json_or_unhealthy_is_down(demo, body, says):
    _, api, outputs = demo
    api.route("/health", Reply(200, body))
    verdict, probes, _ = run_check(outputs)
    assert verdict.status == "down" and probes["API"].detail.startswith(says)


def test_a_server_that_recovers_within_the_attempts_is_ok(demo):
    _, api, outputs = demo
    api.route("/health", Reply(503), Reply(502), Reply(200, HEALTHY))
    verdict, probes, pauses = run_check(outputs, attempts=5)
    assert verdict.status == "ok"
    assert probes["API"].attempts == ["HTTP 503", "HTTP 502", "HTTP 200, status healthy"]
    assert pauses == [1.0, 2.0] and api.hits["/health"] == 3


def test_a_server_that_recovers_too_late_is_down(demo):
    _, api, outputs = demo
    api.route("/health", Reply(503), Reply(503), Reply(200, HEALTHY))
    verdict, probes, _ = run_check(outputs, attempts=2)
    assert verdict.status == "down" and probes["API"].attempts == ["HTTP 503", "HTTP 503"]


def test_pauses_double_up_to_the_cap(demo, closed_port_url):
    _, _, outputs = demo
    _, _, pauses = run_check({**outputs, "uiUrl": closed_port_url}, attempts=6, backoff=10.0)
    assert pauses == [10.0, 20.0, 40.0, 60.0, 60.0]  # MAX_PAUSE


def test_the_defaults_are_the_readmes_five_attempts_5_10_20_40_s_apart(closed_port_url):
    pauses: list[float] = []
    verdict = check({"uiUrl": closed_port_url, "apiUrl": closed_port_url}, sleep=pauses.append)
    assert [len(p.attempts) for p in verdict.probes] == [5, 5]
    assert pauses == [5.0, 10.0, 20.0, 40.0] * 2


@pytest.mark.parametrize("where", ["delay", "body_delay"])  # no headers yet; headers but no body
def test_a_server_slower_than_the_timeout_times_out(demo, where):
    _, api, outputs = demo
    api.route("/health", Reply(200, HEALTHY, **{where: 30.0}))
    started = time.monotonic()
    verdict, probes, _ = run_check(outputs, attempts=2, timeout=0.3)
    assert time.monotonic() - started < 5  # two attempts of 0.3 s, not 30 s
    assert verdict.status == "down" and probes["API"].attempts == ["timed out after 0.3 s"] * 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429])
def test_a_ui_that_answers_4xx_is_down(demo, status):
    """A UI that answers at all is not enough: a 4xx (a proxy's 404, a login wall) is an outage."""
    ui, _, outputs = demo
    ui.route("/", Reply(status, b"<html>nope</html>"))
    verdict, probes, _ = run_check(outputs)
    assert verdict.status == "down" and not probes["UI"].ok and probes["UI"].attempts == [f"HTTP {status}"] * 3


def test_the_ui_may_redirect(demo):
    ui, _, outputs = demo
    ui.route("/", Reply(302, location="/login")).route("/login", Reply(200, UI_PAGE))
    verdict, probes, _ = run_check(outputs)
    assert verdict.status == "ok" and ui.hits["/login"] == 1


def test_an_api_behind_a_path_prefix_is_asked_under_it(stand_in, demo):
    ui, _, _ = demo
    api = stand_in().route("/api/health", Reply(200, HEALTHY))
    verdict, probes, _ = run_check({"uiUrl": ui.url + "/", "apiUrl": api.url + "/api/"})
    assert verdict.status == "ok" and probes["API"].url == api.url + "/api/health"


def test_missing_url_outputs_are_failed_checks_without_a_request():
    verdict, probes, pauses = run_check({"adminPassword": "[secret]", "apiUrl": "[secret]"})
    assert verdict.status == "down" and pauses == []
    assert "stack output uiUrl is missing" in probes["UI"].detail and probes["UI"].attempts == []
    assert "stack output apiUrl is missing" in probes["API"].detail


@pytest.mark.parametrize(
    ("base", "path", "url"),
    [
        ("http://52.10.20.30:9001", "/health", "http://52.10.20.30:9001/health"),
        ("http://52.10.20.30:9001/", "/health", "http://52.10.20.30:9001/health"),
        ("http://52.10.20.30:3000", "/", "http://52.10.20.30:3000/"),
        ("https://demo.example.com", "/", "https://demo.example.com/"),
        ("https://demo.example.com/api", "/health", "https://demo.example.com/api/health"),
        ("https://demo.example.com/api/", "health", "https://demo.example.com/api/health"),
        ("https://demo.example.com/api?x=1#top", "/health", "https://demo.example.com/api/health"),
        (" http://[2001:db8::1]:9001 ", "/health", "http://[2001:db8::1]:9001/health"),
    ],
)
def test_endpoint_joins_onto_the_outputs_own_path(base, path, url):
    assert endpoint(base, path, output="apiUrl") == url


@pytest.mark.parametrize("base", [None, "", "[secret]", 9001, "ftp://demo.example.com", "demo.example.com:9001",
                                  "http://", "javascript:alert(1)", "http://h:port/", "http://[::1"])
def test_endpoint_refuses_what_is_no_http_url_and_names_the_output(base):
    with pytest.raises(MonitorError, match=r"stack output apiUrl .*http\(s\) URL like http://"):
        endpoint(base, "/health", output="apiUrl")


# --- the proxy's "being updated" page (engine/proxy.py) ---------------------------------------------

RESET_AT = datetime(2026, 11, 30, 23, 59, tzinfo=timezone.utc)  # nightlyReset 23:59, the default
WINDOW = monitor.reset_window("23:59", RESET_AT, 360)


@pytest.fixture
def behind_the_proxy(running_caddy):  # noqa: F811 - the fixture imported above
    """The real Caddy with the engine's Caddyfile; the API behind it healthy, the UI away."""
    ports = running_caddy
    api = _Backend(ports.api_backend, 200, HEALTHY)
    yield ports, {"uiUrl": f"http://127.0.0.1:{ports.ui}", "apiUrl": f"http://127.0.0.1:{ports.api}"}
    api.close()


def check_at(outputs, now, window=WINDOW, **options):
    verdict = check(outputs, sleep=lambda _: None, clock=lambda: now, window=window, **{**FAST, **options})
    return verdict, {p.name: p for p in verdict.probes}


def test_the_proxys_updating_page_during_the_nightly_reset_is_updating_not_down(behind_the_proxy):
    _, outputs = behind_the_proxy
    during = RESET_AT + timedelta(minutes=42)  # the monitor's :41 run, 42 minutes into a slow reset
    verdict, probes = check_at(outputs, during)
    assert verdict.status == "updating" and probes["API"].ok
    assert probes["UI"].updating and probes["UI"].status == 503
    assert probes["UI"].attempts == ["HTTP 503, the proxy's \"being updated\" page"] * 3
    assert "the nightly reset of 2026-11-30T23:59:00Z may run until 2026-12-01T06:59:00Z" in verdict.note
    body = render_report(verdict, DEPLOYED, stack="demo")
    assert "## Sirius demo `demo` is being updated: UI" in body and "neither opened nor closed" in body


def test_the_updating_page_after_the_longest_reset_is_down(behind_the_proxy):
    _, outputs = behind_the_proxy
    verdict, _ = check_at(outputs, WINDOW.until)  # an hour late + the reset job's whole timeout
    assert verdict.status == "down" and "outside the nightly reset's time" in verdict.note
    assert "is down: UI" in render_report(verdict, DEPLOYED) and "outside the nightly reset" in render_report(verdict, {})
    assert check_at(outputs, WINDOW.until - timedelta(seconds=1))[0].status == "updating"
    assert check_at(outputs, RESET_AT - timedelta(seconds=1))[0].status == "down"  # before it: yesterday's is over


def test_the_updating_page_without_a_nightly_reset_is_down(behind_the_proxy):
    _, outputs = behind_the_proxy
    verdict, _ = check_at(outputs, RESET_AT + timedelta(minutes=5), window=None)
    assert verdict.status == "down" and "nightlyReset off" in verdict.note


def test_a_services_own_503_during_the_reset_is_down(demo):
    """Only the proxy's page (its header) is an update: a service's own 503 is an outage."""
    _, api, outputs = demo
    api.route("/health", Reply(503, b'{"status": "updating"}'))
    verdict, probes = check_at(outputs, RESET_AT + timedelta(minutes=5))
    assert verdict.status == "down" and not probes["API"].updating and probes["API"].detail == "HTTP 503"


def test_the_page_on_one_check_and_a_real_failure_on_the_other_is_down(behind_the_proxy, closed_port_url):
    _, outputs = behind_the_proxy
    verdict, probes = check_at({**outputs, "apiUrl": closed_port_url}, RESET_AT + timedelta(minutes=5))
    assert verdict.status == "down" and probes["UI"].updating and not probes["API"].updating


def test_the_service_back_behind_the_proxy_is_ok(behind_the_proxy):
    ports, outputs = behind_the_proxy
    ui = _Backend(ports.ui_backend, 200, UI_PAGE)
    try:
        verdict, _ = check_at(outputs, RESET_AT + timedelta(minutes=5))
    finally:
        ui.close()
    assert verdict.status == "ok" and verdict.note == ""


@pytest.mark.parametrize(
    ("setting", "now", "start"),
    [
        ("23:59", datetime(2026, 12, 1, 0, 41, tzinfo=timezone.utc), datetime(2026, 11, 30, 23, 59, tzinfo=timezone.utc)),
        ("23:59", datetime(2026, 12, 1, 23, 59, tzinfo=timezone.utc), datetime(2026, 12, 1, 23, 59, tzinfo=timezone.utc)),
        ("04:59", datetime(2026, 12, 1, 4, 41, tzinfo=timezone.utc), datetime(2026, 11, 30, 4, 59, tzinfo=timezone.utc)),
        ("04:59", datetime(2026, 12, 1, 10, 41, tzinfo=timezone.utc), datetime(2026, 12, 1, 4, 59, tzinfo=timezone.utc)),
    ],
)
def test_the_window_starts_at_the_last_reset_and_lasts_the_late_start_and_the_job(setting, now, start):
    window = monitor.reset_window(setting, now, 360)
    assert window.start == start and window.until == start + timedelta(hours=1, minutes=360)
    assert monitor.reset_window("off", now, 360) is None


def test_the_window_is_reset_ymls_job_timeout_and_the_stacks_setting():
    """Derived from what bounds a reset, not a number of the monitor's own."""
    job = yaml.safe_load((ROOT / ".github" / "workflows" / "reset.yml").read_text())["jobs"]["reset"]
    assert monitor.reset_job_minutes() == job["timeout-minutes"]
    now = datetime(2026, 12, 1, 0, 41, tzinfo=timezone.utc)
    assert monitor.stack_reset_window("demo", now) == monitor.reset_window("23:59", now, job["timeout-minutes"])
    assert monitor.stack_reset_window("branch", now) is None  # Pulumi.branch.yaml: nightlyReset off


def test_a_bad_reset_workflow_is_an_error_naming_it(tmp_path):
    (tmp_path / "reset.yml").write_text("jobs: {reset: {timeout-minutes: soon}}\n")
    with pytest.raises(MonitorError, match="timeout-minutes 'soon' is not a number of minutes"):
        monitor.reset_job_minutes(tmp_path / "reset.yml")


def test_check_from_the_command_line_reads_the_stacks_reset_time(behind_the_proxy, tmp_path, capsys):
    _, outputs = behind_the_proxy
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    args = ["check", f"--outputs-json={tmp_path / 'outputs.json'}", f"--result-json={tmp_path / 'r.json'}", "--backoff=0"]
    during = datetime(2026, 12, 1, 0, 41, tzinfo=timezone.utc)  # the demo stack: nightlyReset 23:59 (default)
    assert monitor.main(args, clock=lambda: during) == 0 and capsys.readouterr().out == "status=updating\n"
    assert monitor.main([*args, "--stack=branch"], clock=lambda: during) == 0  # nightlyReset off
    assert capsys.readouterr().out == "status=down\n"
    assert monitor.main(args, clock=lambda: datetime(2026, 12, 1, 12, 41, tzinfo=timezone.utc)) == 0
    assert capsys.readouterr().out == "status=down\n"


def test_an_updating_verdict_survives_the_result_file(behind_the_proxy, tmp_path):
    _, outputs = behind_the_proxy
    verdict, _ = check_at(outputs, RESET_AT + timedelta(minutes=5))
    again = Verdict.from_dict(json.loads(json.dumps(verdict.as_dict())))
    assert again == verdict and again.status == "updating"


# --- the issue's text -------------------------------------------------------------------------

SECRETS = {"adminPassword": "Adm1n-pa55word-xyz",
           "sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
           "sshCommand": "ssh -i /home/me/secret-key.pem ubuntu@52.10.20.30"}
DEPLOYED = {
    "uiUrl": "http://52.10.20.30:3000",
    "apiUrl": "http://52.10.20.30:9001",
    "imageTag": "v1.1.0",
    "ref": "v1.1.0",
    "instanceId": "i-0abc",
    "deploySeconds": 61.5,
    "health": {"status": "healthy", "checkedAt": "2026-11-30T10:00:00Z",
               "services": {"sirius-api": {"ok": True}, "sirius-ui": {"ok": True}},
               "lastDeploy": engine_report.to_json(engine_report.DeployReport(
                   status="healthy", total_seconds=61.5, phases=engine_report.Phases(pull=20.0, up=30.0, healthy=11.5)))},
}


def down_verdict() -> Verdict:
    return Verdict("down", "2026-12-01T02:30:00Z", [
        monitor.Probe("UI", "http://52.10.20.30:3000/", True, 200, "HTTP 200", ["HTTP 200"]),
        monitor.Probe("API", "http://52.10.20.30:9001/health", False, 502, "HTTP 502",
                      ["timed out after 10 s", "HTTP 502", "HTTP 502"]),
    ])


def test_the_issue_body_says_what_failed_when_and_summarises_the_last_deploy():
    body = render_report(down_verdict(), {**DEPLOYED, **SECRETS}, stack="demo",
                         run_url="https://github.com/o/sirius-demo/actions/runs/9")
    assert body.startswith(monitor.ISSUE_MARKER + "\n## Sirius demo `demo` is down: API\n")
    assert "Checked at 2026-12-01T02:30:00Z" in body
    assert "([run](https://github.com/o/sirius-demo/actions/runs/9))" in body
    assert "| API | http://52.10.20.30:9001/health | **failed**: `HTTP 502` | " \
           "`timed out after 10 s; HTTP 502; HTTP 502` |" in body
    assert "| UI | http://52.10.20.30:3000/ | ok: `HTTP 200` |" in body
    # The deploy report, rendered by ci.stacks' summary.
    assert "| image tag | v1.1.0 |" in body
    assert "| health at the last deploy | **healthy** (checked 2026-11-30T10:00:00Z)" in body
    assert "Last deploy: 61.5 s" in body and "| 0.0 | 0.0 | 0.0 | 20.0 | 0.0 | 30.0 | 11.5 |" in body


def test_the_issue_body_never_holds_a_secret_output_even_when_given_its_value():
    body = render_report(down_verdict(), {**DEPLOYED, **SECRETS})
    for value in SECRETS.values():
        assert value not in body
    for fragment in ("Adm1n", "BEGIN OPENSSH", "b3BlbnNzaC1rZXk", "secret-key.pem", "adminPassword", "sshPrivateKey"):
        assert fragment not in body


def test_the_issue_body_without_outputs_says_so():
    verdict, _, _ = run_check({})
    body = render_report(verdict, {})
    assert "is down: UI, API" in body and "stack output uiUrl is missing" in body
    assert "No stack outputs" in body


def test_an_answer_cannot_break_the_table_or_mention_anyone():
    verdict = Verdict("down", "2026-12-01T02:30:00Z", [
        monitor.Probe("API", "http://h:9001/health", False, 200,
                      "HTTP 200 but not JSON ('| @octocat <b>x</b> `rm`')", ["x"])])
    row = next(line for line in render_report(verdict, {}).splitlines() if line.startswith("| API"))
    assert row.count(" | ") == 3  # four cells: the answer's pipe is escaped
    assert "`HTTP 200 but not JSON ('\\| @octocat &lt;b&gt;x&lt;/b&gt; 'rm'')`" in row  # in a code span


def test_the_recovery_comment_says_up():
    verdict = Verdict("ok", "2026-12-01T03:30:00Z", [
        monitor.Probe("UI", "http://h:3000/", True, 200, "HTTP 200", ["HTTP 200"]),
        monitor.Probe("API", "http://h:9001/health", True, 200, "HTTP 200, status healthy", ["HTTP 503", "HTTP 200"])])
    body = render_report(verdict, {**DEPLOYED, **SECRETS})
    assert body.startswith(monitor.ISSUE_MARKER + "\n## Sirius demo `demo` is up\n")
    assert "every check passed" in body and "down" not in body and "Adm1n" not in body


def test_a_huge_report_is_cut_below_githubs_limit_with_its_code_block_closed():
    health = {**DEPLOYED["health"], "services": {f"service-{i}": {"ok": True, "note": "x" * 200} for i in range(600)}}
    body = render_report(down_verdict(), {**DEPLOYED, "health": health})
    assert len(body) < 65_536 and body.rstrip().endswith("(cut: the full report is in the run's job summary)")
    assert sum(line.startswith("```") for line in body.splitlines()) % 2 == 0


# --- command line --------------------------------------------------------------------------------


def python_m(*args: str, cwd: Path = ROOT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ci.monitor", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, **kwargs)


def test_check_then_report_from_the_command_line(demo, tmp_path):
    _, api, outputs = demo
    api.route("/health", Reply(200, b'{"status": "unhealthy"}'))
    (tmp_path / "outputs.json").write_text(json.dumps({**outputs, **SECRETS}))
    result = python_m("check", f"--outputs-json={tmp_path / 'outputs.json'}", f"--result-json={tmp_path / 'r.json'}",
                      "--attempts=2", "--backoff=0")
    assert result.returncode == 0 and result.stdout == "status=down\n"  # a line for $GITHUB_OUTPUT
    assert "API " + api.url + "/health: FAILED, HTTP 200 but status 'unhealthy'" in result.stderr
    assert "after 2 attempts" in result.stderr
    report = python_m("report", f"--result-json={tmp_path / 'r.json'}", f"--outputs-json={tmp_path / 'outputs.json'}")
    assert report.returncode == 0 and "is down: API" in report.stdout and "Adm1n" not in report.stdout
    api.route("/health", Reply(200, HEALTHY))
    result = python_m("check", "--outputs-json=-", f"--result-json={tmp_path / 'r.json'}",
                      input=json.dumps(outputs))
    assert result.returncode == 0 and result.stdout == "status=ok\n"
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "ok"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["check", "--outputs-json=x.json", "--result-json=r.json", "--attempts=0"],
         "--attempts: '0' is not a whole number of attempts, at least 1"),
        (["check", "--outputs-json=x.json", "--result-json=r.json", "--timeout=nan"],
         "--timeout: 'nan' is not a number of seconds above 0"),
        (["check", "--outputs-json=x.json", "--result-json=r.json", "--backoff=-1"],
         "--backoff: '-1' is not a number of seconds, 0 or more"),
        (["check", "--outputs-json=missing.json", "--result-json=r.json"],
         "--outputs-json 'missing.json' cannot be read"),
        (["check", "--outputs-json=bad.json", "--result-json=r.json"], "--outputs-json 'bad.json' is not JSON"),
        (["report", "--outputs-json=bad.json", "--result-json=bad.json"], "--result-json 'bad.json' is not JSON"),
        (["report", "--outputs-json=empty.json", "--result-json=empty.json"],
         "result JSON is not a verdict of `python -m ci.monitor check`"),
    ],
)
def test_bad_arguments_and_inputs_exit_2_naming_the_setting(tmp_path, args, says):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "empty.json").write_text("{}")
    result = python_m(*args, cwd=tmp_path)
    assert result.returncode == 2 and says in result.stderr
    assert not (tmp_path / "r.json").exists()


# --- ci/monitor-issue.sh against a stand-in gh -------------------------------------------------------


@pytest.fixture
def issue_env(tmp_path):
    """A stand-in `gh` on PATH that records its calls; FAKE_ISSUES is what the REST list returns."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    (tmp_path / "report.md").write_text("<!-- sirius-demo:monitor -->\nthe report\n")
    (tmp_path / "calls").write_text("")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(tmp_path / "calls"),
           "FAKE_ISSUES": str(tmp_path / "issues.json"), "GITHUB_REPOSITORY": "owner/sirius-demo",
           "GH_TOKEN": "not-a-token", "STACK": "demo", "HOME": str(tmp_path)}
    return tmp_path, env


def run_issue_script(issue_env, status: str, issues: list, **extra: str) -> tuple[subprocess.CompletedProcess, list]:
    tmp_path, env = issue_env
    (tmp_path / "issues.json").write_text(json.dumps(issues))
    (tmp_path / "calls").write_text("")
    result = subprocess.run([str(ROOT / "ci" / "monitor-issue.sh"), status, "report.md"], cwd=tmp_path,
                            env={**env, **extra}, capture_output=True, text=True, timeout=60)
    calls = (tmp_path / "calls").read_text().splitlines()
    return result, calls


LIST = ("gh api --paginate --method GET repos/owner/sirius-demo/issues -f state=open -f labels=demo-down "
        "-f per_page=100 --jq .[] | select(.pull_request == null) | .number")
LABELLED_PR = {"number": 3, "pull_request": {"url": "https://api.github.com/repos/owner/sirius-demo/pulls/3"}}


def test_down_with_none_open_opens_one_labelled_issue(issue_env):
    result, calls = run_issue_script(issue_env, "down", [LABELLED_PR])  # a labelled pull request is no issue
    assert result.returncode == 0, result.stderr
    assert calls[0] == LIST
    assert calls[1].startswith("gh label create demo-down --repo owner/sirius-demo --force")
    assert calls[2:] == ["gh issue create --repo owner/sirius-demo --title The Sirius demo (stack demo) is down "
                         "--label demo-down --body-file report.md"]
    assert "opened https://github.com/owner/sirius-demo/issues/77" in result.stdout


def test_down_with_one_open_comments_on_it(issue_env):
    result, calls = run_issue_script(issue_env, "down", [{"number": 12}, LABELLED_PR])
    assert result.returncode == 0, result.stderr
    assert calls == [LIST, "gh issue comment 12 --repo owner/sirius-demo --body-file report.md"]


def test_down_with_several_open_comments_on_the_oldest_only(issue_env):
    result, calls = run_issue_script(issue_env, "down", [{"number": 15}, {"number": 12}])
    assert result.returncode == 0, result.stderr
    assert calls == [LIST, "gh issue comment 12 --repo owner/sirius-demo --body-file report.md"]


def test_ok_with_one_open_comments_and_closes_it(issue_env):
    result, calls = run_issue_script(issue_env, "ok", [{"number": 12}])
    assert result.returncode == 0, result.stderr
    assert calls == [LIST, "gh issue comment 12 --repo owner/sirius-demo --body-file report.md",
                     "gh issue close 12 --repo owner/sirius-demo --reason completed"]
    assert "closed issue #12" in result.stdout


def test_ok_closes_every_open_one(issue_env):
    result, calls = run_issue_script(issue_env, "ok", [{"number": 15}, {"number": 12}])
    assert result.returncode == 0, result.stderr
    assert [c.split(" --")[0] for c in calls[1:]] == ["gh issue comment 12", "gh issue close 12",
                                                      "gh issue comment 15", "gh issue close 15"]


def test_ok_with_none_open_does_nothing(issue_env):
    result, calls = run_issue_script(issue_env, "ok", [LABELLED_PR])
    assert result.returncode == 0, result.stderr
    assert calls == [LIST] and "nothing to do" in result.stdout


def test_a_failed_listing_fails_and_never_opens_a_second_issue(issue_env):
    for status in ("down", "ok"):
        result, calls = run_issue_script(issue_env, status, [{"number": 12}], FAKE_GH_FAIL="1")
        assert result.returncode != 0 and calls == [LIST]


def test_an_unknown_status_touches_nothing(issue_env):
    result, calls = run_issue_script(issue_env, "", [{"number": 12}])
    assert result.returncode == 2 and calls == []
    assert "STATUS must be 'down', 'ok' or 'updating', got ''" in result.stderr


def test_updating_leaves_the_issue_as_it_is(issue_env):
    result, calls = run_issue_script(issue_env, "updating", [{"number": 12}])
    assert result.returncode == 0 and calls == [] and "left as it is" in result.stdout
