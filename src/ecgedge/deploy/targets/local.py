"""``local:DIR``: a gateway directory on this machine, driven exactly as an SSH target is.

Commands run through ``/bin/sh -c`` (the same command lines an SSH target's login shell gets),
and the gateway commands through this interpreter (``sys.executable``) unless ``--remote-python``
names another: the deploy logic under test is the one SSH uses, minus the network.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ecgedge.deploy.targets.base import Target, run_process


class LocalTarget(Target):
    def __init__(self, root: str, python: str | None = None):
        super().__init__(str(Path(root).expanduser().resolve()), shlex.split(python) if python else [sys.executable])

    def describe(self) -> str:
        return f"local:{self.root}"

    def _sh(self, command, *, stdin=None, timeout=None):
        return run_process(["/bin/sh", "-c", command], stdin, timeout)
