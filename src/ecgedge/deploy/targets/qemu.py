"""``qemu-aarch64:CPU``: the gateway runtime on an emulated Raspberry-Pi-class CPU (qemu-user in a chroot).

The root file system is :mod:`.qemu_rootfs`'s cached one; the CPU is chosen per target, so one
build serves cortex-a53 (Pi 3 / Zero 2 W), cortex-a72 (Pi 4) and cortex-a76 (Pi 5). Files are
put and got by copying into the chroot; commands run with ``QEMU_CPU`` set and a clean
environment. Emulation checks behaviour (outputs, memory), not a Pi's speed: it runs 15-80x
slower than the host.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ecgedge.deploy.targets import qemu_rootfs as rootfs
from ecgedge.deploy.targets.execution import Log, Target
from ecgedge.errors import EcgEdgeError

__all__ = ["QemuTarget", "KIND"]

KIND = "qemu-aarch64"


class QemuTarget(Target):
    python = f"{rootfs.VENV}/bin/python"

    def __init__(self, cpu: str):
        self.cpu = rootfs.check_cpu(cpu)
        self.name = f"{KIND}:{cpu}"
        self._state: dict = {}

    @property
    def root(self) -> Path:
        return rootfs.rootfs_dir() / "root"

    def preflight(self) -> None:
        rootfs.require_tools(build=not (self.root / "usr" / "bin" / "python3").is_file())

    def prepare(self, log: Log | None = None) -> dict:
        """Build the root file system when absent; refresh its ecgedge when this checkout changed."""
        self._state = rootfs.ensure_rootfs(self.cpu, log=log)
        return self.describe()

    def describe(self) -> dict:
        return {
            "target": self.name,
            "kind": KIND,
            "cpu": self.cpu,
            "board": rootfs.CPUS[self.cpu].board,
            "emulated": True,
            "python": self._state.get("python"),
            "suite": rootfs.SUITE,
            "packages": [p for p in self._state.get("packages", []) if not p.startswith("ecgedge")],
        }

    def _inside(self, remote: str) -> Path:
        """The host path of ``remote`` (an absolute path inside the chroot), refusing ``..``."""
        rel = Path(remote)
        if not rel.is_absolute() or ".." in rel.parts:
            raise EcgEdgeError(f"{remote!r}: paths on {self.name} must be absolute, without '..'")
        return self.root / rel.relative_to("/")

    def run(self, argv: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        if not (self.root / "usr" / "bin" / "python3").is_file():
            raise EcgEdgeError(f"no emulated target at {self.root}: run `ecgedge target build --cpu {self.cpu}` (as root)")
        rootfs.require_tools()
        cmd, env = rootfs.chroot_command(self.root, argv, self.cpu)
        with rootfs.rootfs_lock():  # the cpuinfo file is this run's CPU
            rootfs.write_cpuinfo(self.root, self.cpu)
            return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)

    def put(self, local: Path, remote: str) -> None:
        shutil.copyfile(local, self._inside(remote))

    def get(self, remote: str, local: Path) -> None:
        shutil.copyfile(self._inside(remote), local)

    @contextmanager
    def workdir(self) -> Iterator[str]:
        tmp = Path(tempfile.mkdtemp(prefix="ecgedge-target-", dir=self.root / "tmp"))
        try:
            yield "/" + str(tmp.relative_to(self.root))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
