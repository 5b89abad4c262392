"""Checks of user options that run before anything is created or written.

A bad option found after a run directory exists leaves a directory that blocks a plain retry (and
a ``--resume`` that has nothing to resume), so everything that can be judged from the options
alone is judged here first: learning rate, seed, device, output paths, and the checkpoint a
``--resume`` or ``evaluate`` will read. :func:`removed_on_failure` covers what can only fail later.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ecgedge.errors import EcgEdgeError

_DEVICE = re.compile(r"cuda(?::(\d+))?")
# numpy's generators and torch.manual_seed both take seeds in [0, 2**32) portably
_SEED_MAX = 2**32 - 1


def check_lr(lr: float | None, option: str = "--lr") -> None:
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise EcgEdgeError(f"{option} is {lr}; it must be a positive finite number, e.g. 1e-3.")


def check_seed(seed: int | None, option: str = "--seed") -> None:
    if seed is not None and not 0 <= seed <= _SEED_MAX:
        raise EcgEdgeError(f"{option} is {seed}; it must be in 0..{_SEED_MAX}.")


def check_device(name: str | None, option: str = "--device") -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``, and a CUDA device only where torch sees one."""
    if name in (None, "auto", "cpu"):
        return
    match = _DEVICE.fullmatch(name)
    if match is None:
        raise EcgEdgeError(f"{option} {name!r} is not a device; choose auto, cpu, cuda or cuda:N.")
    import torch

    if not torch.cuda.is_available():
        raise EcgEdgeError(f"{option} {name}: torch sees no CUDA GPU on this machine; use --device cpu (or auto).")
    if match.group(1) is not None and int(match.group(1)) >= torch.cuda.device_count():
        raise EcgEdgeError(f"{option} {name}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0.")


def check_arch_and_weights(arch: str, weights: str | None) -> None:
    """A registered architecture, and a ``--weights PATH`` that exists (imagenet is checked when loaded)."""
    from ecgedge.models.architectures import ARCHS

    if arch not in ARCHS:
        raise EcgEdgeError(f"--arch {arch!r} is unknown; choose one of {', '.join(sorted(ARCHS))}.")
    if weights not in (None, "none", "imagenet") and not Path(weights).expanduser().is_file():
        raise EcgEdgeError(f"--weights {weights}: no such file; give a .pth state dict, 'imagenet' or 'none'.")


def check_output_dir(path: Path, option: str = "-o") -> None:
    """An output *directory* path: refuse an existing file (or a file where a parent should be)."""
    path = Path(path).expanduser()
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            which = "names" if p == path else f"lies inside {p}, which is"
            raise EcgEdgeError(f"{option} {path} {which} an existing file, not a directory; choose a directory path.")
        if p.exists():
            return


def read_checkpoint(path: Path, fix: str, map_location: str = "cpu") -> dict:
    """Load a checkpoint; one-line EcgEdgeError (with ``fix``) for a truncated or foreign file."""
    import torch

    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises several types for a damaged zip / pickle
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise EcgEdgeError(f"{path} is not a loadable checkpoint (truncated or damaged: {first}); {fix}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise EcgEdgeError(f"{path} is not an ecgedge checkpoint (no model state); {fix}")
    return ckpt


def check_train_options(config, output: Path, resume: bool) -> None:
    """Everything ``ecgedge train`` can judge before it creates ``output``."""
    from ecgedge import run_dirs

    check_lr(config.lr)
    check_seed(config.seed)
    check_device(config.device)
    check_arch_and_weights(config.arch, config.weights)
    check_output_dir(output)
    last = run_dirs.last_checkpoint(output)
    if resume and last.is_file():
        read_checkpoint(last, f"remove {output} and train again, or restore the file.")


def check_run_checkpoint(run_dir: Path) -> None:
    """The best checkpoint ``evaluate`` will score loads (a truncated one is a clean error)."""
    from ecgedge import run_dirs

    meta = run_dirs.read_json(Path(run_dir) / run_dirs.CONFIG)  # missing or invalid: a one-line error already
    if not isinstance(meta, dict) or not isinstance(meta.get("train"), dict):
        raise EcgEdgeError(f"{Path(run_dir) / run_dirs.CONFIG} holds no training settings; give a run directory made by `ecgedge train`.")
    best = run_dirs.best_checkpoint(run_dir)
    if best.is_file():
        read_checkpoint(best, f"train {run_dir} again (or restore the file).")


def resumable(run_dir: Path) -> bool:
    """A run with a last checkpoint: keep it after a failure, so ``--resume`` can continue it."""
    from ecgedge.run_dirs import is_resumable

    return is_resumable(run_dir)


@contextmanager
def removed_on_failure(directory: Path, keep: Callable[[Path], bool] = lambda _d: False) -> Iterator[None]:
    """Undo what the block created in ``directory`` if it fails, unless ``keep(directory)``.

    A directory that did not exist is removed; in one that did, only the new entries are. So a
    failed first attempt never blocks a plain retry, and a run that already has a checkpoint stays
    for ``--resume``.
    """
    directory = Path(directory)
    existed = directory.is_dir()
    before = set(directory.iterdir()) if existed else set()
    try:
        yield
    except BaseException:
        if directory.is_dir() and not keep(directory):
            if not existed:
                shutil.rmtree(directory, ignore_errors=True)
            else:
                for entry in set(directory.iterdir()) - before:
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
        raise
