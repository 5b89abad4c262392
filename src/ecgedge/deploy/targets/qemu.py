"""``qemu-aarch64:CPU``: the gateway runtime on an emulated Raspberry-Pi-class CPU (qemu-user in a chroot).

The root file system is :mod:`.qemu_rootfs`'s cached one; the CPU is chosen per target, so one
build serves cortex-a53 (Pi 3 / Zero 2 W), cortex-a72 (Pi 4) and cortex-a76 (Pi 5). Files are
copied into and out of the chroot directly; commands run with ``QEMU_CPU`` set and a clean
environment. Emulation checks behaviour (outputs, memory), not a Pi's speed: it runs 15-80x
slower than the host.
"""

from __future__ import annotations

from pathlib import Path

import ecgedge.deploy.targets.qemu_rootfs as rootfs
from ecgedge.deploy.targets.base import LocalFiles, Log, run_process
from ecgedge.errors import EcgEdgeError

__all__ = ["QemuTarget", "KIND"]

KIND = "qemu-aarch64"


class QemuTarget(LocalFiles):
    kind = KIND

    def __init__(self, cpu: str):
        super().__init__(f"{KIND}:{cpu}", [f"{rootfs.VENV}/bin/python"])
        self.cpu = rootfs.check_cpu(cpu)
        self._state: dict = {}

    @property
    def fs_root(self) -> Path:
        return rootfs.rootfs_dir() / "root"

    @property
    def built(self) -> bool:
        """Whether its root file system exists already (else :meth:`prepare` builds it: minutes)."""
        return rootfs.is_built(self.fs_root)

    def preflight(self) -> None:
        rootfs.require_tools(build=not self.built)

    def prepare(self, log: Log | None = None) -> None:
        """Build the root file system when absent; refresh its ecgedge when this checkout changed."""
        self._state = rootfs.ensure_rootfs(self.cpu, log=log)

    def facts(self) -> dict:
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

    def _sh(self, command, *, stdin=None, stdout=None, timeout=None):
        if not self.built:
            raise EcgEdgeError(f"no emulated target at {self.fs_root}: run `ecgedge target build --cpu {self.cpu}` (as root)")
        rootfs.require_tools()
        cmd, env = rootfs.chroot_command(self.fs_root, ["/bin/sh", "-c", command], self.cpu)
        with rootfs.rootfs_lock():  # the cpuinfo file is this run's CPU
            rootfs.write_cpuinfo(self.fs_root, self.cpu)
            return run_process(cmd, stdin, timeout, stdout, env)
