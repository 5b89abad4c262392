"""Targets: the machines that run the gateway runtime, for validating a model there and deploying bundles to them.

One abstraction, :class:`~.base.Target`: a target runs commands, takes and gives back files and
lends a temporary directory, all built on one primitive (a POSIX shell command line there). A
target that names a gateway directory (``root``) can also take uploads and run the gateway's own
``python -m ecgedge.firmware_host`` commands, so the deploy logic (:mod:`ecgedge.deploy.rollout`)
and the on-target validation (:mod:`ecgedge.validate.on_target`) are the same for every target.
Names, as ``--target`` takes them (:func:`parse_target`, :func:`parse_targets`; :mod:`.spec`):

* ``host`` (:class:`~.local.LocalTarget`): this machine, the reference of every validation;
* ``qemu-aarch64:CPU`` (:class:`~.qemu.QemuTarget`): an emulated Raspberry-Pi-class CPU
  (cortex-a53, cortex-a72, cortex-a76) in a cached arm64 root file system (:mod:`.qemu_rootfs`);
* ``local:DIR`` (:class:`~.local.LocalTarget`): a gateway directory on this machine (tests, or a
  deploy run on the gateway itself);
* ``ssh://[USER@]HOST[:PORT][/DIR]`` (:class:`~.ssh.SshTarget`): a machine over OpenSSH, a gateway
  at ``DIR`` (deploying needs it; validating runs in a temporary directory there).
"""

from __future__ import annotations

from ecgedge.deploy.targets.base import GatewayRefused, Log, Target, last_line, run_module
from ecgedge.deploy.targets.spec import parse_target, parse_targets

__all__ = ["GatewayRefused", "Log", "Target", "last_line", "parse_target", "parse_targets", "run_module"]
