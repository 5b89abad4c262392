"""This machine as a target: ``host`` (the reference of every validation) or ``local:DIR`` (a gateway directory here).

Commands run through ``/bin/sh -c`` (the same command lines an SSH target's login shell gets) and
the gateway code in a fresh interpreter, so time and peak memory are measured as on any target
and the deploy logic under test is the one SSH uses, minus the network. The interpreter is this
one (``sys.executable``, importing this process's ecgedge also when it comes from PYTHONPATH)
unless ``--remote-python`` names another, which then brings its own ecgedge.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path

import ecgedge.deploy.targets.probe as probe
from ecgedge.deploy.targets.base import LocalFiles, run_process

__all__ = ["LocalTarget"]


class LocalTarget(LocalFiles):
    def __init__(self, root: str | None = None, python: str | None = None):
        if root is not None:
            root = str(Path(root).expanduser().resolve())
        super().__init__("host" if root is None else f"local:{root}", shlex.split(python) if python else [sys.executable], root)
        self.kind = "host" if root is None else "local"
        self.tmp_dir = tempfile.gettempdir()
        self._env = None if python else _this_ecgedge_env()

    def _sh(self, command, *, stdin=None, stdout=None, timeout=None):
        return run_process(["/bin/sh", "-c", command], stdin, timeout, stdout, self._env)

    def _probe(self) -> dict:
        return probe.machine_facts()  # this very machine: no process to start


def _this_ecgedge_env() -> dict[str, str]:
    """The environment in which a child ``python`` imports the ecgedge this process runs."""
    src = str(Path(__file__).resolve().parents[3])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
