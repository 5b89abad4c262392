"""Scoring a model file on a whole set: what ``ecgedge evaluate MODEL.onnx|MODEL.tflite`` reports.

* :func:`evaluate_model_file`: ``ecgedge evaluate MODEL.onnx|MODEL.tflite --split DS2`` - the same
  AAMI metrics as :func:`ecgedge.evaluate.aami_metrics`, plus ``agreement`` with the float
  model's predictions on the same beats (the run's ``predictions_<set>.npz`` when it belongs to
  the same checkpoint, else computed with torch), plus ``model``, ``format``, ``size_bytes``.

No torch at import time; torch is only used when the float reference must be computed. Sits above
:mod:`ecgedge.firmware_host` (whose runtimes it scores) beside ``report`` and ``cli``; the export
self-check's comparison is :func:`ecgedge.export.validate.compare_outputs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgedge.errors import EcgEdgeError

SET_ALIASES = {"DS2": "test", "test": "test", "DS1": "train", "train": "train", "val": "val"}


@dataclass(frozen=True)
class SetPredictions:
    index: np.ndarray  # dataset indices of the set
    labels: np.ndarray  # int64 reference classes
    logits: np.ndarray  # float32 [n, C]
    split: str
    set_name: str
    run_dir: Path | None
    metadata: dict

    @property
    def preds(self) -> np.ndarray:
        return self.logits.argmax(1)


def set_indices(split_name: str, set_name: str, records, labels, seed: int):
    from ecgedge.data.splits import make_split

    if set_name not in SET_ALIASES:
        raise EcgEdgeError(f"unknown set {set_name!r}; choose one of {', '.join(SET_ALIASES)}.")
    if split_name == "inter-patient" and set_name in ("train", "test"):
        raise EcgEdgeError("inter-patient sets are called DS1, DS2 and val.")
    split = make_split(split_name, records, labels, seed)
    role = SET_ALIASES[set_name]
    return split, {"test": split.test, "val": split.val, "train": split.train}[role]


def model_set(path: Path, md: dict, set_name: str = "DS2", data_dir: Path | None = None):
    """(prepared dataset, split, indices of ``set_name``) of the data an exported model was made from.

    Rebuilt from the model's metadata (preprocessing, records, split): the beats are prepared
    exactly as for training, and the split must be the one the model was trained with.
    """
    from ecgedge.data.run_data import load_beats

    if not md.get("preprocess") or not md.get("split"):
        raise EcgEdgeError(f"{path} carries no ecgedge metadata (preprocessing, split); export it with `ecgedge export`.")
    ds = md.get("dataset") or {}
    data_dir = data_dir or ds.get("data_dir")
    if not data_dir:
        raise EcgEdgeError(f"{path} records no data directory; pass --data-dir DIR (MIT-BIH).")
    dataset = load_beats(md["preprocess"], ds.get("records") or None, ds.get("sources_sha256"), Path(data_dir))
    split_md = md["split"]
    split, idx = set_indices(split_md["name"], set_name, dataset.records, dataset.labels, int(split_md.get("seed", 0)))
    if split_md.get("val_records") and list(split.val_records) != list(split_md["val_records"]):
        raise EcgEdgeError(f"the split rebuilt from {data_dir} differs from the one {Path(path).name} was trained with.")
    return dataset, split, idx


def predict_model_file(path: Path, set_name: str = "DS2", data_dir: Path | None = None, progress=None, runtime=None) -> SetPredictions:
    """Run an exported model over one set of the split its source run was trained with."""
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.model_files import verify_model_file

    path = Path(path)
    if runtime is None:
        verify_model_file(path)  # refuse a file whose bytes changed since export
    rt = runtime or load_runtime(path)
    md = rt.metadata
    dataset, split, idx = model_set(path, md, set_name, data_dir)
    chunk = 2048
    task = progress.add_task(f"predict {path.name}", total=len(idx)) if progress else None
    parts = []
    for s in range(0, len(idx), chunk):
        b = idx[s : s + chunk]
        parts.append(rt.predict(np.asarray(dataset.images[b]), np.asarray(dataset.rr[b], np.float32)))
        if progress:
            progress.advance(task, len(b))
    if progress:
        progress.remove_task(task)
    logits = np.concatenate(parts) if parts else np.zeros((0, rt.num_classes), np.float32)
    run_dir = (md.get("source") or {}).get("run_dir")
    return SetPredictions(
        index=np.asarray(idx),
        labels=dataset.labels[idx].astype(np.int64),
        logits=logits,
        split=split.name,
        set_name=set_name,
        run_dir=Path(run_dir) if run_dir else None,
        metadata=md,
    )


def float_reference(pred: SetPredictions, progress=None) -> tuple[np.ndarray | None, np.ndarray | None, dict]:
    """(preds, logits, description) of the float model on the same beats, or (None, None, why)."""
    from ecgedge.atomic import sha256_file

    src = pred.metadata.get("source") or {}
    want_sha = src.get("checkpoint_sha256")
    run_dir = pred.run_dir
    if run_dir is None or not run_dir.is_dir():
        return None, None, {"source": None, "note": f"source run directory {run_dir} not found"}
    ckpt = Path(src.get("checkpoint") or run_dir / "checkpoints" / "best.pt")
    same_ckpt = ckpt.is_file() and want_sha is not None and sha256_file(ckpt) == want_sha
    npz = run_dir / f"predictions_{pred.set_name}.npz"
    if npz.is_file() and (same_ckpt or not ckpt.is_file()):
        with np.load(npz) as d:
            if np.array_equal(d["index"], pred.index) and np.array_equal(d["labels"], pred.labels):
                note = "same checkpoint (SHA-256 checked)" if same_ckpt else "checkpoint missing: SHA-256 not checked"
                return d["preds"].astype(np.int64), d["logits"].astype(np.float32), {"source": str(npz), "note": note}
    if not same_ckpt:
        why = "missing" if not ckpt.is_file() else "changed since export (SHA-256 differs)"
        return None, None, {"source": None, "note": f"float checkpoint {ckpt} {why}"}
    from ecgedge.data.run_data import load_beats
    from ecgedge.models.torch_runtime import TorchRuntime

    md = pred.metadata
    ds = md.get("dataset") or {}
    dataset = load_beats(md["preprocess"], ds.get("records") or None, ds.get("sources_sha256"), Path(ds.get("data_dir") or "."))
    try:  # no torch on this machine, or an architecture it does not know: score without agreement
        rt = TorchRuntime(ckpt)
        logits = rt.predict(np.asarray(dataset.images[pred.index]), np.asarray(dataset.rr[pred.index], np.float32))
    except EcgEdgeError as exc:
        return None, None, {"source": None, "note": f"float reference unavailable: {exc}"}
    return logits.argmax(1), logits, {"source": f"{ckpt} (torch)", "note": "computed: no matching predictions file"}


def metrics_sidecar(model_file: Path) -> Path:
    """Where ``ecgedge evaluate MODEL_FILE`` keeps its metrics (what ``ecgedge report FILE`` reads)."""
    return Path(f"{model_file}.metrics.json")


def predictions_sidecar(model_file: Path, set_name: str) -> Path:
    """Where ``ecgedge evaluate MODEL_FILE`` keeps its per-beat predictions (as a run's ``predictions_<set>.npz``)."""
    return Path(f"{model_file}.predictions_{set_name}.npz")


def keep_scores(path: Path, metrics: dict, pred: SetPredictions) -> None:
    """Write a scored file's metrics and predictions beside it (what ``ecgedge report FILE`` reads)."""
    from ecgedge.jsonio import write_json

    from ecgedge.atomic import atomic_path

    write_json(metrics_sidecar(path), metrics)
    with atomic_path(predictions_sidecar(path, pred.set_name)) as tmp:
        np.savez_compressed(tmp, index=pred.index, labels=pred.labels, preds=pred.preds, logits=pred.logits)


def evaluate_model_file(path: Path, set_name: str = "DS2", data_dir: Path | None = None, progress=None) -> dict:
    """AAMI metrics of an exported model on a set, plus ``agreement`` with the float model."""
    return evaluate_with_predictions(path, set_name, data_dir, progress)[0]


def evaluate_with_predictions(path: Path, set_name: str = "DS2", data_dir: Path | None = None, progress=None) -> tuple[dict, SetPredictions]:
    """(:func:`evaluate_model_file`'s metrics, the per-beat predictions they were computed from)."""
    from ecgedge.evaluate import aami_metrics, agreement

    path = Path(path)
    pred = predict_model_file(path, set_name, data_dir, progress)
    metrics = aami_metrics(pred.labels, pred.preds)
    md = pred.metadata
    ref_preds, ref_logits, ref = _reference_with_data_dir(pred, data_dir, progress)
    metrics.update(model_file_fields(path, md, pred.split, set_name))
    metrics.update({"agreement": agreement(pred.preds, ref_preds) if ref_preds is not None else None, "agreement_reference": ref})
    if ref_logits is not None:
        metrics["max_abs_logit_diff"] = float(np.abs(pred.logits - ref_logits).max())
    return metrics, pred


def model_file_fields(path: Path, md: dict, split: str, set_name: str) -> dict:
    """What an exported file's metrics say about the file and the set, beside the AAMI figures."""
    path = Path(path)
    return {
        "split": split,
        "set": set_name,
        "model": str(path),
        "format": md.get("format", path.suffix.lstrip(".")),
        "precision": md.get("precision"),
        "quantization": (md.get("export") or {}).get("quantization"),
        "size_bytes": path.stat().st_size,
        "complexity": md.get("complexity"),
        "source_checkpoint_sha256": (md.get("source") or {}).get("checkpoint_sha256"),
    }


def _reference_with_data_dir(pred: SetPredictions, data_dir, progress):
    if data_dir is not None:  # the metadata's data_dir may be stale; use the one given
        md = dict(pred.metadata)
        md["dataset"] = {**(md.get("dataset") or {}), "data_dir": str(data_dir)}
        pred = SetPredictions(pred.index, pred.labels, pred.logits, pred.split, pred.set_name, pred.run_dir, md)
    return float_reference(pred, progress)
