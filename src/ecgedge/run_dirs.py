"""What lies where in the directories the toolkit writes, and how it is read and written.

Every stage that writes or reads a run directory, an export directory, the scores of a model or a
pipeline directory takes the names from here. It imports no other stage and nothing heavy (numpy
only inside :func:`write_scores`), so every stage, the gateway package included, can use it.

A run directory (``ecgedge train``; ``ecgedge compress`` writes the same layout)::

    config.json               what was run: train settings, preprocessing, dataset sources, split
    versions.json             ecgedge, Python, platform and package versions
    history.json              one object per epoch
    checkpoints/best.pt       the state chosen on validation (what evaluate, compress, export read)
    checkpoints/last.pt       the latest epoch, for --resume (train only)
    checkpoints/qat_int8.pt2  the converted QAT graph (compress --qat; ecgedge.models.qat_program)
    metrics_<SET>.json        ecgedge evaluate RUN --split SET
    predictions_<SET>.npz     the per-beat predictions behind them (index, labels, preds, logits)
    metrics.json              the test set's (DS2 / test) metrics again: what ecgedge report reads

A scored model file (``ecgedge evaluate MODEL.onnx``) keeps the same two files beside it:
``MODEL.onnx.metrics.json`` and ``MODEL.onnx.predictions_<SET>.npz``.

An export directory (``ecgedge export RUN -o DIR``): ``<run name>-<fp32|int8>.<onnx|tflite>``, each
with its ``.sha256`` (and, when the file cannot embed it, ``.json`` metadata) sidecar
(:mod:`ecgedge.model_files`), and ``export.json``, the manifest of all of them.

A pipeline directory (``ecgedge pipeline -o DIR``): :class:`PipelineDirs`.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ecgedge import __version__, jsonio
from ecgedge.errors import EcgEdgeError

CONFIG = "config.json"
VERSIONS = "versions.json"
HISTORY = "history.json"
METRICS = "metrics.json"
CHECKPOINTS = "checkpoints"
BEST = "best.pt"
LAST = "last.pt"
EXPORT_MANIFEST = "export.json"
#: the set whose scores a run's ``metrics.json`` repeats, per split
TEST_SETS = ("DS2", "test")
MODEL_SUFFIXES = (".onnx", ".tflite")

_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "wfdb", "onnx", "onnxruntime", "nncf", "ai-edge-litert")


# --------------------------------------------------------------------------- JSON files


def write_json(path: Path, obj) -> None:
    """Write strict JSON atomically (non-finite floats become null; see :mod:`ecgedge.jsonio`)."""
    jsonio.write_json(path, obj)


def read_json(path: Path):
    path = Path(path)
    if not path.is_file():
        raise EcgEdgeError(f"{path} not found: is {path.parent} a run directory made by `ecgedge train`?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EcgEdgeError(f"{path} is not valid JSON ({exc}); the run directory is damaged.") from None


def read_config(run_dir: Path) -> dict:
    """The run's ``config.json`` (EcgEdgeError when missing, not JSON or not an object)."""
    config = read_json(Path(run_dir) / CONFIG)
    if not isinstance(config, dict):
        raise EcgEdgeError(f"{Path(run_dir) / CONFIG} must hold a JSON object; the run directory is damaged.")
    return config


def has_config(run_dir: Path) -> bool:
    return (Path(run_dir) / CONFIG).is_file()


def compression(config: dict) -> dict | None:
    """``{"prune": share of channels removed or None, "qat": bool}`` of a compressed run's config; None for a trained one."""
    c = config.get("compress")
    if not isinstance(c, dict):
        return None
    prune = c.get("prune")
    return {"prune": float(prune) if isinstance(prune, int | float) else None, "qat": bool(c.get("qat"))}


# --------------------------------------------------------------------------- checkpoints


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def best_checkpoint(run_dir: Path, must_exist: bool = False) -> Path:
    """``RUN/checkpoints/best.pt``; with ``must_exist``, EcgEdgeError when training has not made it yet."""
    best = checkpoint_dir(run_dir) / BEST
    if must_exist and not best.is_file():
        raise EcgEdgeError(f"{best} not found: training of {run_dir} has not finished an epoch.")
    return best


def last_checkpoint(run_dir: Path) -> Path:
    return checkpoint_dir(run_dir) / LAST


def is_resumable(run_dir: Path) -> bool:
    """A run with a last checkpoint, which ``--resume`` continues."""
    return last_checkpoint(run_dir).is_file()


def compressed_from(compressed: Path, source: Path) -> bool:
    """Does ``compressed`` hold a finished compress run of ``source``'s current best checkpoint?"""
    from ecgedge.atomic import sha256_file

    if not best_checkpoint(compressed).is_file() or not has_config(compressed):
        return False
    made_from = (read_config(compressed).get("compress") or {}).get("source_checkpoint_sha256")
    return made_from == sha256_file(best_checkpoint(source))


# --------------------------------------------------------------------------- versions


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of ``names`` (packages that are not installed are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def versions(*extra_packages: str) -> dict:
    """What ``versions.json`` records: ecgedge, Python, platform, the usual packages and ``extra_packages``."""
    return {
        "ecgedge": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        **package_versions(*_PACKAGES, *extra_packages),
    }


def write_run_record(run_dir: Path, config: dict, *extra_packages: str) -> None:
    """``config.json`` and ``versions.json`` of a run."""
    write_json(Path(run_dir) / CONFIG, config)
    write_json(Path(run_dir) / VERSIONS, versions(*extra_packages))


# --------------------------------------------------------------------------- scores


def is_model_file(path: Path) -> bool:
    return Path(path).suffix.lower() in MODEL_SUFFIXES


def metrics_path(scored: Path, set_name: str | None = None) -> Path:
    """Where the scores of ``scored`` (a run directory or a model file) are kept.

    A run: ``metrics_<SET>.json``, or ``metrics.json`` (the test set's) when ``set_name`` is None.
    A model file: ``FILE.metrics.json`` (the set it was last scored on).
    """
    scored = Path(scored)
    if is_model_file(scored):
        return Path(f"{scored}.metrics.json")
    return scored / (METRICS if set_name is None else f"metrics_{set_name}.json")


def predictions_path(scored: Path, set_name: str) -> Path:
    """The per-beat predictions behind the scores: ``RUN/predictions_<SET>.npz``, ``FILE.predictions_<SET>.npz``."""
    scored = Path(scored)
    if is_model_file(scored):
        return Path(f"{scored}.predictions_{set_name}.npz")
    return scored / f"predictions_{set_name}.npz"


def write_scores(scored: Path, metrics: dict, index, labels, preds, logits) -> None:
    """Keep ``metrics`` and the predictions they come from beside a run or a model file (atomically)."""
    import numpy as np

    from ecgedge.atomic import atomic_path

    scored = Path(scored)
    set_name = metrics["set"]
    if is_model_file(scored):
        write_json(metrics_path(scored), metrics)
    else:
        write_json(metrics_path(scored, set_name), metrics)
        if set_name in TEST_SETS:
            write_json(metrics_path(scored), metrics)
    with atomic_path(predictions_path(scored, set_name)) as tmp:
        np.savez_compressed(tmp, index=index, labels=labels, preds=preds, logits=logits)


# --------------------------------------------------------------------------- exports


def export_file(out_dir: Path, run_name: str, precision: str, suffix: str) -> Path:
    """``OUT/<run name>-<precision><suffix>``: where ``ecgedge export`` writes one model file."""
    return Path(out_dir) / f"{run_name}-{precision}{suffix}"


def export_manifest(out_dir: Path) -> Path:
    return Path(out_dir) / EXPORT_MANIFEST


# --------------------------------------------------------------------------- pipeline


@dataclass(frozen=True)
class PipelineDirs:
    """The layout of ``ecgedge pipeline -o ROOT``::

        ROOT/<preset>-<arch>-<split>/               the training run
        ROOT/<that name>-prune<P>[-qat]/            its compressed run (P: percent of channels removed)
        ROOT/exports/<run name>/                    int8 files of each run, scored (export.json, *.metrics.json)
        ROOT/bundle/model.bundle                    the final int8 files, signed (ROOT/keys/: the job's own key pair)
        ROOT/validation/                            that bundle validated on the host and emulated Pis
        ROOT/report/                                report.md (+ PNGs), report.json
    """

    root: Path
    run: Path
    compressed: Path | None

    @classmethod
    def of(cls, root: Path, preset: str, arch: str, split: str, compression: dict | None = None) -> "PipelineDirs":
        """``compression``: ``{"prune": share or None, "qat": bool}`` of the compress step (None: no step)."""
        root = Path(root)
        run = root / f"{preset}-{arch}-{split}"
        compressed = root / compressed_name(run.name, compression["prune"], compression["qat"]) if compression else None
        return cls(root, run, compressed)

    def exports(self, run_dir: Path) -> Path:
        return self.root / "exports" / Path(run_dir).name

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def bundle(self) -> Path:
        return self.root / "bundle" / "model.bundle"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def validation(self) -> Path:
        return self.root / "validation"


def compressed_name(run_name: str, prune: float | None, qat: bool) -> str:
    """``<run>-prune50-qat``, ``<run>-prune50``, ``<run>-qat``: a compressed run's name says what was done."""
    parts = [run_name] + ([f"prune{round(prune * 100)}"] if prune is not None else []) + (["qat"] if qat else [])
    return "-".join(parts)
