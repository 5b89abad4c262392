"""The host itself as a target: the reference every other target is compared with.

It runs the gateway code in a fresh interpreter (this one's executable), exactly as a target would,
so its time and peak memory are measured the same way.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ecgedge.deploy.targets.execution import Target

__all__ = ["HostTarget"]


class HostTarget(Target):
    name = "host"

    def __init__(self) -> None:
        self.python = sys.executable

    def describe(self) -> dict:
        return {"target": self.name, "kind": "host", "machine": platform.machine(), "cpu": _cpu_model(), "emulated": False}

    def run(self, argv: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        # the child imports the same ecgedge as this process, also when it comes from PYTHONPATH
        src = str(Path(__file__).resolve().parents[3])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env)

    def put(self, local: Path, remote: str) -> None:
        shutil.copyfile(local, remote)

    def get(self, remote: str, local: Path) -> None:
        shutil.copyfile(remote, local)

    @contextmanager
    def workdir(self) -> Iterator[str]:
        with tempfile.TemporaryDirectory(prefix="ecgedge-target-") as d:
            yield d


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None
