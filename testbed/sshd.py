"""A private sshd on 127.0.0.1 that stands in for the EC2 host of the remote commands.

Key authentication only, its own host key, config and pid file, stopped by pid. The
session environment points at the tests' Docker Engine (SetEnv), and a `sudo` that
simply runs its arguments is first on PATH: the tests log in as root, for whom sudo
changes nothing, while the real one would drop DOCKER_HOST (env_reset).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .daemon import Daemon

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SshHost:
    def __init__(self, session_env: Mapping[str, str]):
        self.daemon = Daemon("sshd", prefix="sds-")
        self.dir = self.daemon.root
        self.port = _free_port()
        self.client_key = self.dir / "client_ed25519"
        self.session_env = dict(session_env)

    def start(self) -> SshHost:
        host_key = self.dir / "host_ed25519"
        for key in (host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        authorized = self.dir / "authorized_keys"
        authorized.write_text(self.client_key.with_suffix(".pub").read_text())
        authorized.chmod(0o600)
        shims = self.dir / "bin"
        shims.mkdir()
        sudo = shims / "sudo"
        sudo.write_text('#!/bin/sh\n# Test host: already root; keep the environment (real sudo would reset it).\nexec "$@"\n')
        sudo.chmod(0o755)
        env = dict(self.session_env)
        env["PATH"] = f"{shims}:{env.get('PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')}"
        set_env = " ".join(f'"{key}={value}"' for key, value in sorted(env.items()))
        config = self.dir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    f"SetEnv {set_env}",
                    "",
                ]
            )
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        self.daemon.launch([SSHD, "-D", "-e", "-f", str(config)], log_name="sshd.log")

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        self.daemon.wait_ready(listening, 15)
        return self

    def run(self, command: str, stdin: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run one command string the way pulumi-command does: ssh passes it to the login shell."""
        argv = [
            "ssh", "-i", str(self.client_key), "-p", str(self.port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "BatchMode=yes", "root@127.0.0.1", command,
        ]  # fmt: skip
        return subprocess.run(argv, input=stdin if stdin is not None else "", capture_output=True, text=True,
                              timeout=timeout)

    def stop(self) -> None:
        self.daemon.close()

    def __enter__(self) -> SshHost:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # manual check: python -m testbed.sshd
    with SshHost(os.environ) as host:
        print(host.run("echo hello from $(id -un); command -v sudo").stdout)
