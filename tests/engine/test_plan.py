"""The engine's planning rules, without Docker: each test names the mutation it kills."""

from __future__ import annotations

import pytest

from engine import plan, rules

SERVICES = ["sirius-api", "sirius-engine", "sirius-migrate", "sirius-postgres", "sirius-ui"]


def container(status="running", health="healthy", exit_code=0, restart="unless-stopped", restarts=0):
    state = {"Status": status, "ExitCode": exit_code}
    if health:
        state["Health"] = {"Status": health}
    return {"State": state, "RestartCount": restarts, "HostConfig": {"RestartPolicy": {"Name": restart}}}


@pytest.mark.parametrize(
    ("c", "verdict"),
    [
        (container(), plan.OK),
        (container(health=None), plan.OK),  # no health check: running is enough
        (container(health="starting"), plan.WAITING),
        (container(health="unhealthy"), plan.WAITING),  # may still recover until the deadline
        (container(status="created"), plan.WAITING),
        (container(status="restarting", health="starting", restarts=1), plan.WAITING),
        (container(status="exited", exit_code=1, restarts=3), plan.FAILED),  # crash loop
        (container(status="restarting", health="starting", restarts=3), plan.FAILED),  # what unless-stopped shows
        # The one-shot migrate: ok only once it exited 0; running is still waiting.
        (container(status="exited", health=None, exit_code=0, restart="no"), plan.OK),
        (container(status="exited", health=None, exit_code=1, restart="no"), plan.FAILED),
        (container(status="running", health=None, restart="no"), plan.WAITING),
    ],
)
def test_judging_a_container(c, verdict):
    """Kills: a failed one-shot judged healthy; a running migrate judged healthy."""
    assert plan.verdict_of(c) == verdict


def test_health_words_for_the_report():
    assert plan.health_word(container(status="exited", health=None, exit_code=3, restart="no")) == "exited(3)"
    assert plan.health_word(container(health="starting")) == "starting"
    assert plan.health_word(None) == "missing"


def test_the_gate_waits_passes_and_fails():
    """Kills: exit 0 when unhealthy; the deadline ignored."""
    ok = dict.fromkeys(SERVICES, plan.OK)
    assert plan.gate(ok, now=10, deadline=100) == "healthy"
    waiting = {**ok, "sirius-ui": plan.WAITING}
    assert plan.gate(waiting, now=10, deadline=100) is None
    assert plan.gate(waiting, now=100, deadline=100) == "unhealthy"
    assert plan.gate({**ok, "sirius-migrate": plan.FAILED}, now=10, deadline=100) == "unhealthy"
    assert plan.gate({}, now=10, deadline=100) is None
    assert plan.exit_code("healthy") == 0
    assert {plan.exit_code(s) for s in ("unhealthy", "failed")} == {1}


def test_only_the_changed_service_is_recreated_without_its_dependencies():
    """Kills: a service recreated together with its dependencies."""
    running = {s: f"reg/{s}@sha256:old" for s in SERVICES}
    wanted = {**running, "sirius-ui": "reg/sirius-ui@sha256:new"}
    step = plan.plan_up(wanted, running, dict.fromkeys(SERVICES, plan.OK), same_project=True)
    assert step == plan.UpPlan("recreate", ("sirius-ui",))
    assert step.compose_args() == ["up", "-d", "--no-deps", "--force-recreate", "sirius-ui"]


def test_nothing_to_do_when_nothing_changed_and_all_is_fine():
    running = {s: f"reg/{s}@sha256:old" for s in SERVICES}
    step = plan.plan_up(running, running, dict.fromkeys(SERVICES, plan.OK), same_project=True)
    assert step.kind == "none" and step.compose_args() is None


@pytest.mark.parametrize("same_project", [True, False])
def test_a_full_up_when_the_project_changed_or_another_service_is_down(same_project):
    running = {s: f"reg/{s}@sha256:old" for s in SERVICES}
    verdicts = {**dict.fromkeys(SERVICES, plan.OK), "sirius-api": plan.OK if not same_project else plan.WAITING}
    step = plan.plan_up(running, running, verdicts, same_project=same_project)
    assert step.kind == "full" and step.compose_args() == ["up", "-d", "--remove-orphans"]


@pytest.mark.parametrize(
    ("error", "hopeless"),
    [
        ("Error response from daemon: manifest unknown", True),
        ("Error response from daemon: pull access denied for x, repository does not exist", True),
        ("ghcr.io/siriusscan/sirius-ui:pr-9: not found", True),
        ("Get \"https://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused", False),
        ("net/http: TLS handshake timeout", False),
    ],
)
def test_a_missing_tag_is_not_retried_an_outage_is(error, hopeless):
    """Kills: a missing tag retried."""
    assert plan.pull_is_hopeless(error) is hopeless


def test_retries_back_off_and_stop_at_attempts_and_deadline():
    """Kills: no backoff; retries past the attempts or the deadline."""
    delays = plan.retry_delays(6, 5)
    assert delays == [5, 10, 20, 40, 60]
    assert plan.retry_delays(1, 5) == []
    assert plan.next_retry(1, delays, now=0, deadline=1000) == 5
    assert plan.next_retry(5, delays, now=0, deadline=1000) == 60
    assert plan.next_retry(6, delays, now=0, deadline=1000) is None
    assert plan.next_retry(2, delays, now=995, deadline=1000) is None


def test_immutable_tags_are_not_asked_for_again():
    assert rules.is_immutable_tag("v1.1.0") and rules.is_immutable_tag("sha-" + "a" * 40)
    assert not rules.is_immutable_tag("latest") and not rules.is_immutable_tag("pr-7-amd64")


def test_images_of_services_and_what_they_run():
    services = {"sirius-migrate": {"image": "ghcr.io/siriusscan/sirius-api:latest"},
                "sirius-ui": {"image": "127.0.0.1:5000/siriusscan/sirius-ui@sha256:abc"}}
    assert plan.images_of(services) == {"sirius-migrate": "sirius-api", "sirius-ui": "sirius-ui"}
    assert plan.run_image("r/ns", "sirius-ui", "r/ns/sirius-ui:v2", "sha256:1") == "r/ns/sirius-ui@sha256:1"
    assert plan.run_image("r/ns", "sirius-ui", "r/ns/sirius-ui:v2", None) == "r/ns/sirius-ui:v2"


def test_swap_only_on_small_hosts():
    assert plan.needs_swap(4 * 1024**3) and not plan.needs_swap(16 * 1024**3)


def test_critical_path_follows_the_latest_dependency():
    depends = {"sirius-ui": ["sirius-api", "sirius-postgres"], "sirius-api": ["sirius-migrate", "sirius-valkey"],
               "sirius-migrate": ["sirius-postgres"]}
    ready = {"sirius-postgres": 3, "sirius-valkey": 2, "sirius-migrate": 5, "sirius-api": 8, "sirius-ui": 12}
    assert plan.critical_path(depends, ready) == ["sirius-postgres", "sirius-migrate", "sirius-api", "sirius-ui"]
    assert plan.critical_path(depends, {}) == []


def test_service_of_a_container():
    assert plan.service_of({"Config": {"Labels": {"com.docker.compose.service": "sirius-ui"}}}) == "sirius-ui"
    assert plan.service_of({"Config": {"Labels": None}}) is None


def test_image_fallbacks_name_each_image_running_another_tag():
    sha = "sha-" + "a" * 40
    assert plan.image_fallbacks(sha, {"sirius-ui": "latest", "sirius-api": sha}) == {
        "sirius-ui": {"wanted": sha, "running": "latest"}}


def test_docker_times_with_nanoseconds_and_zones():
    assert plan.docker_time("2026-11-29T05:00:01.5Z") == plan.docker_time("2026-11-29T06:00:01.500000000+01:00")
    assert plan.docker_time("2026-11-29T05:00:01.25Z") - plan.docker_time("2026-11-29T05:00:00Z") == 1.25
    assert plan.docker_time("0001-01-01T00:00:00Z") is None and plan.docker_time("") is None


def test_ready_time_is_dockers_own_record():
    """Services turn healthy while `up` still waits: their time comes from Docker, not the gate."""
    checked = container()
    checked["State"]["Health"]["Log"] = [{"ExitCode": 1, "End": "2026-11-29T05:00:02Z"},
                                         {"ExitCode": 0, "End": "2026-11-29T05:00:03.5Z"},
                                         {"ExitCode": 0, "End": "2026-11-29T05:00:33Z"}]
    assert plan.ready_time(checked) == plan.docker_time("2026-11-29T05:00:03.5Z")
    oneshot = container(status="exited", health=None, restart="no")
    oneshot["State"]["FinishedAt"] = "2026-11-29T05:00:07Z"
    assert plan.ready_time(oneshot) == plan.docker_time("2026-11-29T05:00:07Z")
    assert plan.ready_time(container(health="starting")) is None


def test_moved_names_each_image_whose_digest_changed_and_the_commit_range():
    old, new = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    last = {"commit": "c" * 40, "runImages": {"sirius-ui": f"r:5000/ns/sirius-ui@{old}",
                                              "sirius-api": f"r:5000/ns/sirius-api@{old}",
                                              "sirius-migrate": f"r:5000/ns/sirius-api@{old}"}}
    wanted = {"sirius-ui": f"r:5000/ns/sirius-ui@{new}", "sirius-api": f"r:5000/ns/sirius-api@{old}",
              "sirius-migrate": f"r:5000/ns/sirius-api@{old}", "sirius-proxy": "caddy:2"}
    assert plan.moved(last, wanted, "c" * 40) == ({"sirius-ui": {"from": old, "to": new}}, None)
    assert plan.moved(last, wanted, "d" * 40)[1] == {"from": "c" * 40, "to": "d" * 40}
    built = {**wanted, "sirius-api": "r:5000/ns/sirius-api:v1", "sirius-migrate": "r:5000/ns/sirius-api:v1"}
    assert plan.moved(last, built, "c" * 40)[0]["sirius-api"] == {"from": old, "to": None}  # now a local build
    assert plan.moved(None, wanted, "c" * 40) == ({}, None)  # the first deploy: nothing moved
