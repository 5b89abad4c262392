"""What a target is: a machine that runs the gateway runtime, reached by putting files, running a
command and getting files back.

Kept to those three verbs so that every kind of target fits: the host itself
(:mod:`.host`), an emulated Raspberry-Pi-class CPU in a chroot (:mod:`.qemu`), a gateway over SSH.
Paths on the target are strings in the target's own file system; ``python`` is an interpreter
there that imports ``ecgedge.firmware_host``. (Deploying a bundle is built on the other
abstraction, :mod:`.base`: a gateway directory and a shell there.)
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from ecgedge.errors import EcgEdgeError

__all__ = ["Target", "Log", "run_module"]

Log = Callable[[str], None]


class Target(ABC):
    """A machine that runs ``python -m ecgedge.firmware_host...``; see the module docstring."""

    #: how the user names it: ``host``, ``qemu-aarch64:cortex-a72``, ...
    name: str
    #: the interpreter on the target that imports ``ecgedge.firmware_host``
    python: str

    def preflight(self) -> None:
        """Raise EcgEdgeError now when the target cannot be used (missing tools, no access)."""

    def prepare(self, log: Log | None = None) -> dict:
        """Make the target ready to run this checkout's gateway code; facts about it for reports."""
        return self.describe()

    def describe(self) -> dict:
        return {"target": self.name}

    @abstractmethod
    def run(self, argv: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run ``argv`` on the target; stdout and stderr captured as text; no exception on failure."""

    @abstractmethod
    def put(self, local: Path, remote: str) -> None:
        """Copy the local file ``local`` to the path ``remote`` on the target."""

    @abstractmethod
    def get(self, remote: str, local: Path) -> None:
        """Copy the file ``remote`` of the target to the local path ``local``."""

    @abstractmethod
    def workdir(self) -> AbstractContextManager[str]:
        """A fresh directory on the target (its path there), removed when the block ends."""


def run_module(target: Target, module: str, args: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    """``python -m module args`` on the target; a failure becomes one EcgEdgeError line with the target's last error line."""
    res = target.run([target.python, "-m", module, *args], timeout=timeout)
    if res.returncode != 0:
        lines = [line for line in (res.stderr or "").strip().splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {res.returncode}"
        raise EcgEdgeError(f"{module} failed on {target.name}: {last.removeprefix('error: ')}")
    return res
