"""A private image registry (Debian's docker-registry) on 127.0.0.1:<free port>, storage in
a temp dir, and what the tests ask it: catalog, tags, digests, deleting a tag."""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import shutil

from .daemon import Daemon, HarnessError
from .ports import free_port, port_in_use
from .programs import REGISTRY_CANDIDATES, SYSTEM_PATH, first_existing
from .web import http_get

log = logging.getLogger("sirius.host")

MANIFEST_ACCEPT = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))


class Registry:
    """``docker-registry serve`` on 127.0.0.1:<port>, filesystem storage in a
    temp dir.  ``stop()`` / ``start()`` keep port and storage."""

    def __init__(self, root: str | os.PathLike | None = None, port: int | None = None,
                 binary: str | None = None):
        self._daemon = Daemon("docker-registry", root=root, prefix="sdr-")
        self.root = self._daemon.root
        self.storage = self.root / "storage"
        self.config = self.root / "config.yml"
        self.log_path = self.root / "registry.log"
        self.port = port or free_port()
        self.binary = binary or first_existing(
            REGISTRY_CANDIDATES + tuple(filter(None, [shutil.which("docker-registry")])),
            "docker-registry (apt-get install docker-registry)")
        self._closed = False
        atexit.register(self._atexit)

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: prefix of image names in this registry."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def running(self) -> bool:
        return self._daemon.running

    def start(self, timeout: float = 20.0) -> "Registry":
        if self.running:
            return self
        self._closed = False
        self.storage.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.storage}\n"
            "  delete:\n    enabled: true\n"
            "  cache:\n    blobdescriptor: inmemory\n"
            "http:\n"
            f"  addr: 127.0.0.1:{self.port}\n"
            f"  secret: {secrets.token_hex(16)}\n"
            "health:\n  storagedriver:\n    enabled: false\n"
        )
        if port_in_use(self.port):
            raise HarnessError(f"registry port {self.port} on 127.0.0.1 is in use")
        self._daemon.launch([self.binary, "serve", str(self.config)], log_name=self.log_path.name,
                            env={"PATH": SYSTEM_PATH, "HOME": str(self.root)})
        self._daemon.wait_ready(lambda: http_get(f"{self.url}/v2/", timeout=1)[0] == 200, timeout, interval=0.05)
        log.info("registry on %s (storage %s)", self.host, self.storage)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._daemon.stop(timeout)

    def close(self) -> None:
        """Stop and remove the storage (if the temp dir is ours)."""
        self._daemon.close()
        self._closed = True

    def _atexit(self) -> None:
        if not self._closed:
            with contextlib.suppress(Exception):
                self.close()

    # ---- queries ---------------------------------------------------------

    def catalog(self) -> list[str]:
        code, _, body = http_get(f"{self.url}/v2/_catalog?n=1000")
        if code != 200:
            return []
        return json.loads(body).get("repositories") or []

    def tags(self, repo: str) -> list[str]:
        """Tags of ``repo`` (e.g. ``siriusscan/sirius-ui``); [] when unknown."""
        code, _, body = http_get(f"{self.url}/v2/{repo}/tags/list")
        if code != 200:
            return []
        return sorted(json.loads(body).get("tags") or [])

    def digest(self, repo: str, tag: str) -> str | None:
        """Manifest digest of repo:tag, or None if there is no such tag."""
        code, headers, _ = http_get(f"{self.url}/v2/{repo}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": MANIFEST_ACCEPT})
        if code != 200:
            return None
        return {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")

    def delete_tag(self, repo: str, tag: str) -> bool:
        """Delete the manifest repo:tag points at (and so every tag on it)."""
        d = self.digest(repo, tag)
        if not d:
            return False
        code, _, _ = http_get(f"{self.url}/v2/{repo}/manifests/{d}", method="DELETE")
        return code == 202

    def __enter__(self) -> "Registry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


