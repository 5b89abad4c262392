"""Target names as the user writes them: ``host``, ``qemu-aarch64:cortex-a72``.

:data:`KINDS` maps the part before the first ``:`` to a factory taking the rest, so another kind of
target (a gateway over SSH) joins by adding its entry.
"""

from __future__ import annotations

from collections.abc import Callable

from ecgedge.deploy.targets.execution import Target
from ecgedge.errors import EcgEdgeError

__all__ = ["KINDS", "parse_target", "parse_targets"]


def _host(rest: str) -> Target:
    from ecgedge.deploy.targets.host import HostTarget

    if rest:
        raise EcgEdgeError(f"target 'host' takes no argument (got 'host:{rest}').")
    return HostTarget()


def _qemu(rest: str) -> Target:
    from ecgedge.deploy.targets.qemu import QemuTarget
    from ecgedge.deploy.targets.qemu_rootfs import CPUS

    if not rest:
        raise EcgEdgeError(f"name the emulated CPU: qemu-aarch64:CPU with CPU one of {', '.join(CPUS)}.")
    return QemuTarget(rest)


KINDS: dict[str, Callable[[str], Target]] = {"host": _host, "qemu-aarch64": _qemu}


def parse_target(spec: str) -> Target:
    kind, _, rest = spec.strip().partition(":")
    factory = KINDS.get(kind)
    if factory is None:
        raise EcgEdgeError(f"unknown target {spec!r}; use host or qemu-aarch64:CPU (cortex-a53, cortex-a72, cortex-a76).")
    return factory(rest)


def parse_targets(specs: str) -> list[Target]:
    """Comma-separated target names, each once, in the order given."""
    names = [s.strip() for s in specs.split(",") if s.strip()]
    if not names:
        raise EcgEdgeError("--target is empty; use host or qemu-aarch64:CPU.")
    if len(set(names)) != len(names):
        raise EcgEdgeError(f"--target names a target twice: {specs}")
    return [parse_target(n) for n in names]
