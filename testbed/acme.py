"""ACME on 127.0.0.1 for the HTTPS tests: pebble as the CA, and a Caddy image.

``Pebble(http_port, https_port, resolve_to="127.0.0.1")`` runs Debian's ``pebble``
(Let's Encrypt's ACME test server) and ``pebble-challtestsrv`` as its DNS server,
answering ``resolve_to`` for every name (no AAAA: the proxy listens on IPv4 only), so
the CA validates HTTP-01 / TLS-ALPN-01 against whatever listens on
``resolve_to:http_port`` / ``:https_port`` -- the proxy under test. ``resolve_to``
``127.0.0.2`` is a domain whose DNS does not point at this host: validation fails.
Debian's package ships no TLS certificate for pebble's own listener, so one is made
here with ``openssl`` (a throwaway CA + a leaf for 127.0.0.1). ``PEBBLE_VA_NOSLEEP=1``
and no random nonce rejection; validation is real (no ``PEBBLE_VA_ALWAYS_VALID``).

- ``directory``: the ACME directory URL;
- ``roots_file``: the listener CA + pebble's issuing root (``/roots/0``): what the
  engine's ``--acme-ca-root`` gets (Caddy needs the first, the certificate check both);
- ``issuing_root``: pebble's root alone, for a client that checks the chain itself;
- ``issued_serials()``: the serials pebble issued, from its log (one per certificate);
- ``stop()``: both processes, by pid.

``caddy_image(engine, registry)``: a stand-in for the official ``caddy`` image,
``FROM scratch`` with Debian's ``/usr/bin/caddy`` and the shared libraries ``ldd``
lists, pushed to the test registry; its local copy is removed so a deploy pulls it.
``proxy_standin(engine)``: the same stand-in tagged in the engine as the engine's default
proxy image (``rules.PROXY_IMAGE``, which these tests cannot pull), so every deploy of
the tests and the benchmark runs its proxy without a flag.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
import ssl
from pathlib import Path

from engine.rules import PROXY_IMAGE

from .daemon import Daemon, HarnessError
from .ports import free_port

CADDY_BINARY = "/usr/bin/caddy"
CADDY_TAG = "2.6.2"  # Debian bookworm's caddy


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        raise HarnessError(f"openssl {args[0]} failed: {result.stderr}")


def listener_certificate(d: Path) -> None:
    """ca.pem (a throwaway CA) and cert.pem/key.pem for 127.0.0.1, signed by it."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=testbed pebble listener CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    _openssl("req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "leaf.csr", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                               "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "ext.cnf", "-out", "cert.pem", cwd=d)


class Pebble:
    def __init__(self, http_port: int, https_port: int, resolve_to: str = "127.0.0.1"):
        self.http_port, self.https_port, self.resolve_to = http_port, https_port, resolve_to
        self.daemon = Daemon("pebble", prefix="sdacme-")
        self.dir = self.daemon.root
        self.port, self.management, self.dns, self.dns_management = (free_port() for _ in range(4))

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def roots_file(self) -> Path:
        return self.dir / "roots.pem"

    @property
    def issuing_root(self) -> Path:
        return self.dir / "pebble-root.pem"

    def start(self) -> "Pebble":
        for binary in ("pebble", "pebble-challtestsrv", "openssl"):
            if not shutil.which(binary):
                raise HarnessError(f"{binary} not found: apt-get install pebble openssl")
        listener_certificate(self.dir)
        (self.dir / "pebble.json").write_text(
            '{"pebble": {"listenAddress": "127.0.0.1:%d", "managementListenAddress": "127.0.0.1:%d",'
            ' "certificate": "%s", "privateKey": "%s", "httpPort": %d, "tlsPort": %d,'
            ' "ocspResponderURL": "", "externalAccountBindingRequired": false}}'
            % (self.port, self.management, self.dir / "cert.pem", self.dir / "key.pem", self.http_port, self.https_port))
        dns = ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{self.dns}", "-http01", "", "-https01", "",
               "-tlsalpn01", "", "-management", f"127.0.0.1:{self.dns_management}",
               "-defaultIPv4", self.resolve_to, "-defaultIPv6", ""]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        self.daemon.launch(dns, log_name="dns.log")
        self.daemon.launch(["pebble", "-config", str(self.dir / "pebble.json"), "-dnsserver", f"127.0.0.1:{self.dns}"],
                           log_name="pebble.log", env=env)
        listener = ssl.create_default_context(cafile=str(self.dir / "ca.pem"))
        roots = []

        def root_served() -> bool:
            with urllib.request.urlopen(f"https://127.0.0.1:{self.management}/roots/0", context=listener,
                                        timeout=2) as answer:
                roots.append(answer.read().decode())
            return True

        self.daemon.wait_ready(root_served, 30, interval=0.2)
        self.issuing_root.write_text(roots[0])
        self.roots_file.write_text((self.dir / "ca.pem").read_text() + roots[0])
        return self

    def log(self) -> str:
        return (self.dir / "pebble.log").read_text(errors="replace")

    def issued_serials(self) -> list[str]:
        return re.findall(r"Issued certificate serial ([0-9a-f]+)", self.log())

    def stop(self) -> None:
        self.daemon.stop()

    def close(self) -> None:
        self.daemon.close()

    def __enter__(self) -> "Pebble":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _libraries(binary: str) -> list[str]:
    """The shared libraries (and loader) a dynamic binary needs, from ldd."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return sorted(set(re.findall(r"(/\S+) \(0x", out)))


def _build_caddy(engine, *tags: str) -> None:
    """The Caddy stand-in, built in `engine` under `tags`."""
    if not os.path.isfile(CADDY_BINARY):
        raise HarnessError(f"{CADDY_BINARY} not found: apt-get install caddy")
    ctx = Path(tempfile.mkdtemp(prefix="sdcaddy-", dir="/tmp"))
    try:
        root = ctx / "rootfs"
        for path in [CADDY_BINARY, *_libraries(CADDY_BINARY)]:
            dest = root / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(path), dest)
        for d in ("tmp", "data", "config", "etc/caddy"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (ctx / "Dockerfile").write_text(
            "# Stand-in for docker.io/library/caddy, built by testbed/acme.py: Debian's caddy.\n"
            "FROM scratch\nCOPY rootfs/ /\n"
            "ENV PATH=/usr/bin:/bin XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config\n"
            'CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]\n')
        engine.run("build", "-q", *(a for tag in tags for a in ("-t", tag)), str(ctx),
                   env={"DOCKER_BUILDKIT": "0"}, timeout=300)
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


def caddy_image(engine, registry) -> str:
    """Build and push the Caddy stand-in; returns its reference in the test registry."""
    ref = f"{registry.host}/testbed/caddy:{CADDY_TAG}"
    _build_caddy(engine, ref)
    engine.run("push", "-q", ref, timeout=300)
    engine.run("rmi", ref)
    return ref


def proxy_standin(engine) -> str:
    """The Caddy stand-in under the engine's default proxy image name (rules.PROXY_IMAGE),
    present in `engine`: every deploy finds it and pulls nothing (the image is pulled only
    when missing), as on a host that has it. Returns that name."""
    _build_caddy(engine, PROXY_IMAGE)
    return PROXY_IMAGE
