"""Where a bundle goes: a gateway directory on some machine, reached by one way of running commands.

A :class:`Target` needs only :meth:`Target._sh` (run one POSIX shell command line there, stdin
optionally fed from a local file); uploading, running the gateway's own
``python -m ecgedge.firmware_host`` and the service commands are built on it, so the deploy logic
(:mod:`ecgedge.deploy.rollout`) is the same for every target:

* ``local:DIR`` (:class:`~.local.LocalTarget`): a directory on this machine (tests, or a deploy
  run on the gateway itself);
* ``ssh://[USER@]HOST[:PORT]/DIR`` (:class:`~.ssh.SshTarget`): a gateway over OpenSSH.
"""

from __future__ import annotations

from pathlib import Path

from ecgedge.deploy.targets.base import GatewayRefused, Target, last_line
from ecgedge.errors import EcgEdgeError

__all__ = ["GatewayRefused", "Target", "last_line", "parse_target"]


def parse_target(spec: str, *, identity: Path | None = None, known_hosts: Path | None = None, ssh_options: list[str] | None = None, remote_python: str | None = None) -> Target:
    """``ssh://[USER@]HOST[:PORT]/DIR`` or ``local:DIR``."""
    if spec.startswith("ssh://"):
        from ecgedge.deploy.targets.ssh import SshTarget

        return SshTarget.from_url(spec, identity=identity, known_hosts=known_hosts, options=ssh_options or [], python=remote_python)
    if identity or known_hosts or ssh_options:
        raise EcgEdgeError(f"--identity, --known-hosts and --ssh-option apply to ssh:// targets only, not {spec!r}.")
    if spec.startswith("local:"):
        from ecgedge.deploy.targets.local import LocalTarget

        return LocalTarget(spec[len("local:") :], python=remote_python)
    raise EcgEdgeError(f"unknown target {spec!r}; use ssh://USER@HOST[:PORT]/DIR (a gateway) or local:DIR (a directory here).")
