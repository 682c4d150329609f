"""What Caddy's log says: why the proxy stopped, why it has no certificate.

Caddy logs JSON lines to stderr (and no access lines); engine/proxy.py reads the tail of
`docker logs` and quotes the reason these find in its report's `proxy.error`.
"""

from __future__ import annotations

import json

# Caddy's own log messages that carry why a certificate could not be had.
_ISSUER_FAILED = "could not get certificate from issuer"
_CHALLENGE_FAILED = "challenge failed"
_OBTAINING = "obtaining certificate"
_OBTAINED = "certificate obtained successfully"
_MAX_REASON = 1500


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON - 3] + "..."


def obtain_error(log_text: str, domain: str) -> str | None:
    """Why Caddy has no certificate for `domain`, from its log; None when it did not fail.

    Caddy's "could not get certificate from issuer" often only says that no challenge is
    left; the CA's own answer (an ACME problem with its detail) is in the "challenge
    failed" lines of the same attempt, so both are quoted. A success after the last
    failure means there is nothing to report.
    """
    challenges: list[str] = []
    failure: str | None = None
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        names = {entry.get("identifier")} | set(entry.get("identifiers") or [])
        if domain not in names:
            continue
        msg = entry.get("msg")
        if msg == _OBTAINING:
            challenges = []
        elif msg == _CHALLENGE_FAILED:
            kind = entry.get("challenge_type") or "challenge"
            problem = entry.get("problem_type") or f"HTTP {entry.get('status_code', '?')}"
            item = f"{kind}: {problem}: {entry.get('error', '')}"
            if item not in challenges:
                challenges.append(item)
        elif msg == _ISSUER_FAILED:
            # The CA's answer first: Caddy's own summary is long and says less.
            said = f"the CA said: {'; '.join(challenges)}; " if challenges else ""
            failure = f"{_ISSUER_FAILED} {entry.get('issuer', '')}: {said}Caddy: {entry.get('error', '')}"
        elif msg == _OBTAINED:
            challenges, failure = [], None
    if failure is None and challenges:  # an attempt still under way when the budget ran out
        failure = "challenges failed: " + "; ".join(challenges)
    return _short(failure) if failure else None


def container_error(log_text: str) -> str | None:
    """A Caddy that stopped says why on a plain "Error:" line (a bad config, a port in use)."""
    for line in reversed(log_text.splitlines()):
        if line.startswith("Error:"):
            return _short(line)
    return None
