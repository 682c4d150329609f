"""The private Docker Engine 26 the tests and the benchmark deploy on: its own data-root,
exec-root, pidfile, unix socket, bridge and cgroup parent under a short temp dir, with the
Compose v2 plugin linked in; ``engine.env`` is an environment for subprocesses that use it.
Why each daemon flag: testbed/README.md."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import http.client
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

from .daemon import Daemon, HarnessError
from .daemon import tail as _tail
from .forward import ForwardAccept
from .processes import descendants, kill_pids, pid_alive, pids_mentioning, start_time, unmount_under
from .programs import (
    DOCKER_CLIENT_CANDIDATES,
    DOCKERD_CANDIDATES,
    SYSTEM_PATH,
    TEST_DOCKER_PATH,
    find_compose_binary,
    first_existing,
)

log = logging.getLogger("sirius.host")


class DockerCommandError(HarnessError):
    def __init__(self, cmd: Sequence[str], proc: subprocess.CompletedProcess):
        self.cmd = list(cmd)
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        super().__init__(
            f"command failed (exit {proc.returncode}): {' '.join(self.cmd)}\n"
            f"--- stdout ---\n{_tail(proc.stdout)}\n--- stderr ---\n{_tail(proc.stderr)}"
        )


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 2.0):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class DockerEngine:
    """A private dockerd for tests.  ``start()`` / ``stop()``;
    ``stop_daemon()`` / ``start_daemon()`` take the daemon down and bring it
    back with its state (images, volumes, stopped containers) kept, to
    simulate "Docker daemon not running".
    """

    def __init__(self, root: str | os.PathLike | None = None, *, start_timeout: float = 60.0,
                 stop_timeout: float = 30.0, extra_args: Sequence[str] = (),
                 client: str | None = None):
        self._own_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="sdh-", dir="/tmp"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket = self.root / "d.sock"
        self.pidfile = self.root / "d.pid"
        self.data_root = self.root / "data"
        self.exec_root = self.root / "exec"
        self.config_dir = self.root / "cfg"
        self.bin_dir = self.root / "bin"
        self.log_path = self.root / "dockerd.log"
        self.cgroup_parent = "/" + self.root.name
        # the default "bridge" network gets a bridge device of its own
        # (dockerd only auto-creates the host-global docker0)
        self.bridge = "sdb-" + hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:8]
        # containers reach each other whatever the kernel's FORWARD policy is (forward.py)
        self.forward = ForwardAccept(self.bridge)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.extra_args = list(extra_args)
        self.dockerd = first_existing(DOCKERD_CANDIDATES, "dockerd (scripts/install-test-docker.sh)")
        self.client = client  # chosen in start()
        self.client_version = ""
        self.compose_binary = ""
        self.proc: subprocess.Popen | None = None
        self._daemon = Daemon("dockerd", root=self.root)  # the root's removal is stop()'s (mounts)
        self._network_ids: set[str] = set()
        self._bridge_names: set[str] = set()
        self._orphans: set[tuple[int, str | None]] = set()  # (pid, start time)
        self._stopped_for_good = False
        if len(str(self.socket)) > 100:
            raise HarnessError(f"socket path too long for a unix socket: {self.socket}")
        atexit.register(self._atexit)

    # ---- public --------------------------------------------------------

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses that should use this engine."""
        env = {
            k: v for k, v in os.environ.items()
            if not (k.startswith("COMPOSE_") or k in (
                "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS",
                "DOCKER_API_VERSION", "DOCKER_DEFAULT_PLATFORM", "BUILDX_BUILDER",
                "DOCKER_BUILDKIT"))
        }
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.config_dir)
        env["PATH"] = f"{self.bin_dir}:{os.environ.get('PATH') or SYSTEM_PATH}"
        for d in SYSTEM_PATH.split(":"):
            if d not in env["PATH"].split(":"):
                env["PATH"] += ":" + d
        return env

    @property
    def docker(self) -> str:
        """Full path of the docker client command (a link in bin_dir)."""
        return str(self.bin_dir / "docker")

    @property
    def daemon_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def daemon_args(self) -> list[str]:
        return [
            self.dockerd,
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile),
            "-H", self.host,
            "--config-file", str(self.root / "daemon.json"),
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            "--bridge", self.bridge,
            *self.forward.daemon_args(),
            "--userland-proxy=true",
            "--cgroup-parent", self.cgroup_parent,
            "--exec-opt", "native.cgroupdriver=cgroupfs",
            "--shutdown-timeout", "5",
            *self.extra_args,
        ]

    def start(self) -> "DockerEngine":
        """Start the daemon, pick a client, install the compose plugin, verify."""
        if os.geteuid() != 0:
            raise HarnessError("the real-Docker harness must run as root (it starts dockerd)")
        self._stopped_for_good = False
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "config.json").write_text("{}\n")
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        self.compose_binary = find_compose_binary()
        plugin_dir = self.config_dir / "cli-plugins"
        plugin_dir.mkdir(exist_ok=True)
        plugin = plugin_dir / "docker-compose"
        if plugin.is_symlink() or plugin.exists():
            plugin.unlink()
        plugin.symlink_to(self.compose_binary)
        log.info("%s", self.forward.open())
        try:
            self.start_daemon()
        except BaseException:
            self.forward.close()
            raise
        try:
            self._choose_client()
            out = self.run("compose", "version").stdout.strip()
            log.info("engine %s ready; client %s (%s); %s", self.host, self.client,
                     self.client_version, out)
        except BaseException:
            self.stop()
            raise
        return self

    def start_daemon(self) -> None:
        if self.daemon_running:
            return
        # leftovers of an earlier hard kill make dockerd hang: clean them first
        self._reap_leftovers()
        unmount_under(self.data_root, self.exec_root)
        # dockerd trusts exec-root/containerd/containerd.pid: after a hard kill
        # it may name a zombie (or a reused pid) and dockerd then waits forever
        # for that "running" containerd.  Everything of ours is dead by now.
        for p in (self.pidfile, self.socket, self.exec_root / "containerd" / "containerd.pid",
                  self.exec_root / "containerd" / "containerd.sock"):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        (self.root / "daemon.json").write_text("{}\n")
        if not os.path.exists(f"/sys/class/net/{self.bridge}"):
            r = subprocess.run(["ip", "link", "add", "name", self.bridge, "type", "bridge"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise HarnessError(f"cannot create bridge {self.bridge}: {r.stderr.strip()}")
        # containerd, its shims and docker-proxy come from the test Engine's folder.
        env = {"PATH": f"{TEST_DOCKER_PATH}:{SYSTEM_PATH}", "HOME": str(self.root), "LANG": "C.UTF-8"}
        log.info("starting %s", " ".join(self.daemon_args()))
        self._daemon.stop()  # forget a daemon that was killed
        self.proc = self._daemon.launch(self.daemon_args(), log_name=self.log_path.name, env=env)
        try:
            self._daemon.wait_ready(self._ping, self.start_timeout)
        except HarnessError:
            self.proc = None
            self._reap_leftovers()  # its containerd
            raise

    def stop_daemon(self, timeout: float | None = None) -> None:
        """SIGTERM dockerd, wait, SIGKILL after ``timeout``; then make sure
        its containerd, shims, proxies and containers are gone (by pid)."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self.proc is None:
            return
        proc = self.proc
        if proc.poll() is None and self._ping():
            with contextlib.suppress(Exception):
                out = self.run("network", "ls", "-q", "--no-trunc", check=False, timeout=10)
                self._network_ids.update(out.stdout.split())
                # networks that name their bridge (the engine's override pins br-sirius)
                named = self.run("network", "inspect", "--format",
                                 '{{index .Options "com.docker.network.bridge.name"}}', *out.stdout.split(),
                                 check=False, timeout=10)
                self._bridge_names.update(n for n in named.stdout.split() if n != "<no" and n != "value>")
        tree = descendants(proc.pid)
        self._daemon.stop(timeout)
        kill_pids([p for p in tree if pid_alive(p)])
        self.proc = None
        self._reap_leftovers()
        unmount_under(self.data_root, self.exec_root)

    def kill_daemon(self) -> None:
        """SIGKILL dockerd alone, like a crash: its containerd, proxies and
        containers are left behind until ``start_daemon()`` or
        ``stop_daemon()`` reaps them (by pid)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self._orphans.update((p, start_time(p)) for p in descendants(self.proc.pid))
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """Stop everything and remove the temp dir (idempotent)."""
        if self._stopped_for_good:
            return
        errors = []
        if self.daemon_running and self._ping():
            with contextlib.suppress(Exception):
                ids = self.run("ps", "-aq", check=False, timeout=30).stdout.split()
                if ids:
                    self.run("rm", "-f", "-v", *ids, check=False, timeout=120)
                self.run("network", "prune", "-f", check=False, timeout=60)
        try:
            self.stop_daemon()
        except Exception as exc:  # keep cleaning
            errors.append(exc)
        for dev in [f"br-{nid[:12]}" for nid in self._network_ids] + sorted(self._bridge_names) + [self.bridge]:
            if os.path.exists(f"/sys/class/net/{dev}"):
                subprocess.run(["ip", "link", "delete", dev], capture_output=True)
        self.forward.close()
        self._remove_cgroups()
        if self._own_root:
            unmount_under(self.root)
            shutil.rmtree(self.root, ignore_errors=True)
            if self.root.exists():
                unmount_under(self.root)
                time.sleep(0.5)
                shutil.rmtree(self.root, ignore_errors=True)
            if self.root.exists():
                errors.append(HarnessError(f"could not remove {self.root}"))
        self._stopped_for_good = True
        if errors:
            raise HarnessError(f"engine stop: {errors}")

    def run(self, *args: str, check: bool = True, timeout: float = 300, input: str | None = None,
            cwd: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
            ) -> subprocess.CompletedProcess:
        """Run ``docker *args`` against this engine; text output captured."""
        cmd = [self.docker, *args]
        full_env = self.env
        if env:
            full_env.update(env)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                              cwd=cwd, env=full_env)
        if check and proc.returncode != 0:
            raise DockerCommandError(cmd, proc)
        return proc

    def compose(self, *args: str, project_dir: str | os.PathLike, files: Sequence[str] = (),
                **kw) -> subprocess.CompletedProcess:
        """``docker compose [-f f]... <args>`` run in ``project_dir``."""
        fargs: list[str] = []
        for f in files:
            fargs += ["-f", str(f)]
        return self.run("compose", *fargs, *args, cwd=project_dir, **kw)

    def image_ids(self, reference_filter: str | None = None) -> list[str]:
        args = ["images", "-q", "--no-trunc"]
        if reference_filter:
            args += ["--filter", f"reference={reference_filter}"]
        return sorted(set(self.run(*args).stdout.split()))

    # ---- internals -----------------------------------------------------

    def _ping(self) -> bool:
        try:
            conn = _UnixHTTPConnection(str(self.socket), timeout=2)
            conn.request("GET", "/_ping")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def _choose_client(self) -> None:
        cands = [self.client] if self.client else []
        if os.environ.get("SIRIUS_TEST_DOCKER_CLIENT"):
            cands.insert(0, os.environ["SIRIUS_TEST_DOCKER_CLIENT"])
        cands += list(DOCKER_CLIENT_CANDIDATES)
        which = shutil.which("docker")
        if which:
            cands.append(which)
        link = self.bin_dir / "docker"
        tried = []
        seen = set()
        for c in cands:
            real = os.path.realpath(c) if c else ""
            if not real or real in seen or not os.access(real, os.X_OK):
                continue
            seen.add(real)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(real)
            v = self.run("version", "--format", "{{.Client.Version}} api {{.Client.APIVersion}} / "
                         "server {{.Server.Version}} api {{.Server.APIVersion}}",
                         check=False, timeout=30)
            c2 = self.run("compose", "version", check=False, timeout=30)
            if v.returncode == 0 and c2.returncode == 0:
                self.client = real
                self.client_version = v.stdout.strip()
                return
            tried.append(f"{real}: {_tail(v.stderr, 3)} {_tail(c2.stderr, 3)}")
        raise HarnessError("no docker client works with the test daemon:\n" + "\n".join(tried))

    def _cgroup_dirs(self) -> list[Path]:
        out = []
        base = Path("/sys/fs/cgroup")
        rel = self.cgroup_parent.lstrip("/")
        if (base / "cgroup.controllers").exists():  # pure cgroup v2
            cands = [base / rel]
        else:
            cands = [d / rel for d in base.iterdir() if d.is_dir()]
        for c in cands:
            if c.is_dir():
                out.append(c)
        return out

    def _reap_leftovers(self) -> None:
        """Kill (by pid) anything of ours a dead or dying dockerd left behind."""
        pids: set[int] = set()
        for d in self._cgroup_dirs():
            for procs in d.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(x) for x in procs.read_text().split())
        pids.update(pids_mentioning(str(self.exec_root)))
        pids.update(p for p, st in self._orphans if st is not None and start_time(p) == st)
        self._orphans.clear()
        pids.update(pids_mentioning(str(self.data_root)))
        if self.pidfile.exists():
            with contextlib.suppress(ValueError, OSError):
                pids.add(int(self.pidfile.read_text().strip()))
        pids = {p for p in pids if pid_alive(p)}
        if pids:
            log.warning("killing leftover processes of test dockerd: %s", sorted(pids))
            kill_pids(pids)

    def _remove_cgroups(self) -> None:
        for d in self._cgroup_dirs():
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()),
                              key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            with contextlib.suppress(OSError):
                d.rmdir()

    def _atexit(self) -> None:
        if not self._stopped_for_good and (self.proc is not None or self._own_root):
            with contextlib.suppress(Exception):
                self.stop()

    def __enter__(self) -> "DockerEngine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

