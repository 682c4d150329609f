"""A set but dead SSH_AUTH_SOCK, found before any resource exists.

pulumi-command's SSH client talks to the agent that SSH_AUTH_SOCK names whenever it is set,
even though the program hands it the key: with the agent gone (a closed terminal's agent, a
tmux or screen session that outlived it, an old login's forwarding socket) every remote
command fails, after the instance exists. So the program asks the agent for its identities
(SSH_AGENTC_REQUEST_IDENTITIES) first, as `ssh-add -l` does, and stops if nothing answers.
"""

from __future__ import annotations

import socket

VARIABLE = "SSH_AUTH_SOCK"
TIMEOUT_SECONDS = 2.0
_REQUEST_IDENTITIES = b"\x00\x00\x00\x01\x0b"  # length 1, SSH_AGENTC_REQUEST_IDENTITIES (11)
_IDENTITIES_ANSWER = 12  # SSH_AGENT_IDENTITIES_ANSWER
_FAILURE = 5  # SSH_AGENT_FAILURE: an agent, refusing to list (still alive)
FIX = ("the remote commands would fail after the instance exists; run without it, "
       "`env -u SSH_AUTH_SOCK pulumi up`, or start a live agent first: `eval \"$(ssh-agent)\"`")


def problem(path: str | None) -> str | None:
    """What is wrong with the agent socket `path` (SSH_AUTH_SOCK), or None: unset or answering."""
    if not path:
        return None
    reason = _probe(path)
    return None if reason is None else f"is set to {path!r}, but no SSH agent answers there ({reason}); {FIX}"


def _probe(path: str) -> str | None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT_SECONDS)
            sock.connect(path)
            sock.sendall(_REQUEST_IDENTITIES)
            head = b""
            while len(head) < 5:
                chunk = sock.recv(5 - len(head))
                if not chunk:
                    return "the socket closed without an answer"
                head += chunk
    except TimeoutError:
        return f"no answer within {TIMEOUT_SECONDS:g}s"
    except OSError as err:
        return err.strerror or type(err).__name__
    if head[4] not in (_IDENTITIES_ANSWER, _FAILURE):
        return f"the answer is not an SSH agent's (message type {head[4]})"
    return None
