"""Target names as the user writes them: one parser for ``ecgedge validate`` and ``ecgedge deploy``.

:data:`KINDS` maps the part before the first ``:`` to a factory taking the rest and the access
options, so another kind of target joins by adding its entry. Deploying needs a gateway directory
(``gateway=True``): ``local:DIR`` or ``ssh://...`` with its ``/DIR``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ecgedge.deploy.targets.base import Target
from ecgedge.errors import EcgEdgeError

__all__ = ["KINDS", "Access", "parse_target", "parse_targets"]

USAGE = "host, qemu-aarch64:CPU (cortex-a53, cortex-a72, cortex-a76), local:DIR or ssh://[USER@]HOST[:PORT][/DIR]"
GATEWAY_USAGE = "ssh://[USER@]HOST[:PORT]/ABSOLUTE/DIR (a gateway) or local:DIR (a directory here)"


@dataclass(frozen=True)
class Access:
    """How to reach a target: the SSH login (``ssh://`` only) and its Python (``ssh://`` and ``local:``)."""

    identity: Path | None = None
    known_hosts: Path | None = None
    ssh_options: Sequence[str] = ()
    remote_python: str | None = None


def _host(rest: str, access: Access) -> Target:
    from ecgedge.deploy.targets.local import LocalTarget

    if rest:
        raise EcgEdgeError(f"target 'host' takes no argument (got 'host:{rest}').")
    return LocalTarget()


def _qemu(rest: str, access: Access) -> Target:
    from ecgedge.deploy.targets.qemu import QemuTarget
    from ecgedge.deploy.targets.qemu_rootfs import CPUS

    if not rest:
        raise EcgEdgeError(f"name the emulated CPU: qemu-aarch64:CPU with CPU one of {', '.join(CPUS)}.")
    return QemuTarget(rest)


def _local(rest: str, access: Access) -> Target:
    from ecgedge.deploy.targets.local import LocalTarget

    if not rest:
        raise EcgEdgeError("name the directory: local:DIR.")
    return LocalTarget(rest, python=access.remote_python)


def _ssh(rest: str, access: Access) -> Target:
    from ecgedge.deploy.targets.ssh import SshTarget

    return SshTarget.from_url(f"ssh:{rest}", identity=access.identity, known_hosts=access.known_hosts, options=list(access.ssh_options), python=access.remote_python)


KINDS: dict[str, Callable[[str, Access], Target]] = {"host": _host, "qemu-aarch64": _qemu, "local": _local, "ssh": _ssh}


def parse_target(spec: str, *, gateway: bool = False, **access) -> Target:
    """One target; ``gateway``: it must name a gateway directory (deploying). ``access``: the fields of :class:`Access`."""
    return _parse([spec.strip()], spec, gateway, Access(**_given(access)))[0]


def parse_targets(specs: str, *, gateway: bool = False, **access) -> list[Target]:
    """Comma-separated target names, each once, in the order given."""
    names = [s.strip() for s in specs.split(",") if s.strip()]
    if not names:
        raise EcgEdgeError(f"--target is empty; use {USAGE}.")
    if len(set(names)) != len(names):
        raise EcgEdgeError(f"--target names a target twice: {specs}")
    return _parse(names, specs, gateway, Access(**_given(access)))


def _given(access: dict) -> dict:
    return {k: v for k, v in access.items() if v is not None}


def _parse(names: list[str], specs: str, gateway: bool, access: Access) -> list[Target]:
    kinds = [name.partition(":")[0] for name in names]
    for name, kind in zip(names, kinds):
        if kind not in KINDS:
            raise EcgEdgeError(f"unknown target {name!r}; use {GATEWAY_USAGE if gateway else USAGE}.")
    # an option no target takes is a mistake said now, not silently ignored
    if (access.identity or access.known_hosts or access.ssh_options) and "ssh" not in kinds:
        raise EcgEdgeError(f"--identity, --known-hosts and --ssh-option apply to ssh:// targets only, not {specs!r}.")
    if access.remote_python and not {"ssh", "local"} & set(kinds):
        raise EcgEdgeError(f"--remote-python applies to ssh:// and local: targets only, not {specs!r}.")
    targets = [KINDS[kind](name.partition(":")[2], access) for name, kind in zip(names, kinds)]
    for target in targets:
        if gateway and target.root is None:
            raise EcgEdgeError(f"{target.describe()} names no gateway directory; expected {GATEWAY_USAGE}.")
    return targets
