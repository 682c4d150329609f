"""ci.lockwait: `pulumi up` again while another update holds the stack, up to a deadline."""

from __future__ import annotations

import subprocess
import sys

from ci import lockwait

LOCKED_CLOUD = "error: [409] Conflict: Another update is currently in progress.\n"
LOCKED_DIY = "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end\n"


class Script:
    """Answers (code, output) in turn; counts the runs and the pauses."""

    def __init__(self, *answers: tuple[int, str]):
        self.answers, self.runs, self.pauses, self.now = list(answers), 0, [], 0.0

    def run(self, argv):
        self.runs += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def sleep(self, seconds):
        self.pauses.append(seconds)
        self.now += seconds


def wait(script: Script, minutes: float) -> int:
    return lockwait.run_when_free(["pulumi", "up"], minutes * 60, pause=30, run=script.run, sleep=script.sleep,
                                  clock=lambda: script.now)


def test_a_locked_stack_is_tried_again_until_free():
    script = Script((255, LOCKED_CLOUD), (255, LOCKED_DIY), (0, "Update succeeded\n"))
    assert wait(script, 5) == 0 and script.runs == 3 and script.pauses == [30, 30]


def test_any_other_failure_is_the_commands_own_at_once():
    script = Script((1, "error: update failed: deploy: not healthy within 600s\n"))
    assert wait(script, 5) == 1 and script.runs == 1 and script.pauses == []


def test_still_locked_at_the_deadline_fails_loudly(capsys):
    script = Script((255, LOCKED_CLOUD))
    assert wait(script, 2) == lockwait.EXIT_STILL_LOCKED
    assert script.runs == 5 and sum(script.pauses) == 120  # tries at 0, 30, 60, 90 and 120 s
    assert "still locked by another update after 2 min" in capsys.readouterr().err


def test_the_command_line_streams_output_and_keeps_the_status():
    result = subprocess.run([sys.executable, "-m", "ci.lockwait", "--wait-minutes=1", "--", "sh", "-c",
                             "echo working; exit 3"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and result.stdout == "working\n"
