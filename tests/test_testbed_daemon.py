"""The test bed's daemon base (testbed/daemon.py) with small real processes: no Docker."""

from __future__ import annotations

import sys
import time

import pytest

from testbed.daemon import Daemon, HarnessError

PY = sys.executable


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ready_wait_stop_by_pid_and_cleanup(tmp_path):
    d = Daemon("sleeper", prefix="sdt-")
    marker = d.root / "ready"
    proc = d.launch([PY, "-c", f"import time, pathlib; print('up', flush=True); pathlib.Path({str(marker)!r}).touch(); "
                         "time.sleep(60)"], log_name="sleeper.log")
    d.wait_ready(marker.exists, 10)
    assert d.running and alive(proc.pid)
    d.stop()
    assert not alive(proc.pid) and not d.running
    assert "up" in (d.root / "sleeper.log").read_text()  # the log stays until close
    d.close()
    assert not d.root.exists()


def test_a_process_that_exits_while_starting_fails_with_its_code_and_log_tail():
    d = Daemon("crasher", prefix="sdt-")
    try:
        d.launch([PY, "-c", "import sys; print('bad config on line 3'); sys.exit(3)"], log_name="crasher.log")
        with pytest.raises(HarnessError) as err:
            d.wait_ready(lambda: False, 10)
        assert "crasher did not start" in str(err.value) and "exited with 3" in str(err.value)
        assert "bad config on line 3" in str(err.value)
    finally:
        d.close()


def test_not_ready_in_time_stops_it_and_shows_the_log(tmp_path):
    d = Daemon("slow", root=tmp_path / "given")
    proc = d.launch([PY, "-c", "import time; print('still loading', flush=True); time.sleep(60)"], log_name="slow.log")
    started = time.monotonic()
    with pytest.raises(HarnessError, match=r"slow was not ready within 0.5s(.|\n)*still loading"):
        d.wait_ready(lambda: (d.root / "slow.log").read_text().count("loading") > 1, 0.5)
    assert time.monotonic() - started < 15 and not alive(proc.pid)
    d.close()
    assert (tmp_path / "given").is_dir()  # a given root is the caller's


def test_a_process_that_ignores_sigterm_is_killed():
    d = Daemon("stubborn", prefix="sdt-")
    marker = d.root / "ready"
    proc = d.launch([PY, "-c", "import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                         f"pathlib.Path({str(marker)!r}).touch(); time.sleep(60)"], log_name="stubborn.log")
    d.wait_ready(marker.exists, 10)
    d.close(timeout=0.5)
    assert not alive(proc.pid)


def test_a_restart_appends_to_the_same_log():
    d = Daemon("twice", prefix="sdt-")
    try:
        for word in ("first", "second"):
            d.launch([PY, "-c", f"print({word!r})"], log_name="twice.log").wait(10)
            d.stop()
        assert (d.root / "twice.log").read_text().split() == ["first", "second"]
    finally:
        d.close()
