"""The scanner's firewall (engine/firewall.py) as a deploy uses it: planned and applied
before the switch (saved for the boot unit), checked again after every `up` where the
engine actually runs, and the engine stopped when that fails: a scanner without its rules
must not run. Each failure is a DeployError carrying the report's `firewall` entry."""

from __future__ import annotations

from engine import firewall, rules
from engine.docker import log
from engine.errors import DeployError
from engine.settings import Settings


class FenceFailed(DeployError):
    def __init__(self, message: str, entry: dict):
        super().__init__(message)
        self.entry = entry  # the report's `firewall` entry saying so


class Fencing:
    def __init__(self, s: Settings):
        self.s = s
        self.scanner: firewall.Scanner | None = None  # None: not applied (off, or not yet)

    def apply(self) -> dict:
        """The report's `firewall` entry; FenceFailed before anything switched."""
        if not self.s.firewall:
            log("firewall: WARNING: off (--no-firewall): sirius-engine may reach any address")
            return firewall.off_report()
        self.scanner = firewall.Scanner(self.s.scan_targets, self.s.state_dir, self.s.firewall_parent)
        try:
            self.scanner.plan()
            return self.scanner.apply()
        except (firewall.FirewallError, ValueError, OSError) as err:
            raise FenceFailed(f"scanner firewall: {err}",
                              {**firewall.off_report(), "status": "failed", "notes": [], "error": str(err)}) from None

    def after_up(self, project: str, entry: dict | None) -> dict | None:
        """The report's `firewall` entry after an `up` (`entry`, the one before, when unchanged)."""
        if self.scanner is None:
            return entry
        try:
            return self.scanner.after_up(project) or entry
        except (firewall.FirewallError, ValueError, OSError) as err:
            stopped = firewall.stop_scanner(project)
            raise FenceFailed(f"scanner firewall: {err}; " + (f"{rules.SCANNER_SERVICE} stopped" if stopped else
                                                              f"could not stop {rules.SCANNER_SERVICE}"),
                              {**(entry or {}), "status": "failed", "error": str(err)}) from None
