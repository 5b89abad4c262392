"""Scoring a model on a whole set: what ``ecgedge evaluate RUN|MODEL.onnx|MODEL.tflite`` reports.

One path for both kinds of model. :func:`predict` runs it over one set of the split it was trained
with (a run directory: its best checkpoint in torch, on the run's device; an exported file: its
runtime, :mod:`ecgedge.firmware_host`); :func:`score` turns the predictions into the AAMI metrics
of :func:`ecgedge.evaluate.aami_metrics` plus what identifies the model; :func:`keep_scores`
writes both where ``ecgedge report`` finds them (:func:`ecgedge.run_dirs.write_scores`).

An exported file's metrics also hold ``agreement`` with the float model on the same beats (the
run's ``predictions_<set>.npz`` when it belongs to the same checkpoint, else computed with torch),
``format``, ``precision``, ``quantization``, ``size_bytes`` and ``compression`` (how its source
run was compressed). No torch at import time; a run directory needs it, an exported file does not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ecgedge import run_dirs
from ecgedge.errors import EcgEdgeError

SET_ALIASES = {"DS2": "test", "test": "test", "DS1": "train", "train": "train", "val": "val"}


@dataclass(frozen=True)
class SetPredictions:
    index: np.ndarray  # dataset indices of the set
    labels: np.ndarray  # int64 reference classes
    logits: np.ndarray  # float32 [n, C]
    split: str
    set_name: str
    run_dir: Path | None  # the run the model comes from
    metadata: dict  # an exported file's ecgedge metadata; for a run, its checkpoint and epoch

    @classmethod
    def of(cls, dataset, idx, logits: np.ndarray, split: str, set_name: str, run_dir: Path | None, metadata: dict) -> SetPredictions:
        """The predictions ``logits`` of the beats ``idx`` of ``dataset``."""
        return cls(np.asarray(idx), dataset.labels[idx].astype(np.int64), logits, split, set_name, run_dir, metadata)

    @property
    def preds(self) -> np.ndarray:
        return self.logits.argmax(1)


def set_indices(split_name: str, set_name: str, records, labels, seed: int, val_fold: int = 0):
    """(the split, the dataset indices of ``set_name`` in it)."""
    from ecgedge.data.splits import make_split

    check_set_name(split_name, set_name)
    split = make_split(split_name, records, labels, seed, val_fold)
    role = SET_ALIASES[set_name]
    return split, {"test": split.test, "val": split.val, "train": split.train}[role]


def check_set_name(split_name: str, set_name: str) -> None:
    if set_name not in SET_ALIASES:
        raise EcgEdgeError(f"unknown set {set_name!r}; choose one of {', '.join(SET_ALIASES)}.")
    if split_name == "inter-patient" and set_name in ("train", "test"):
        raise EcgEdgeError("inter-patient sets are called DS1, DS2 and val.")


def predict(path: Path, set_name: str = "DS2", data_dir: Path | None = None, progress=None) -> SetPredictions:
    """Run a run directory's best checkpoint or an exported file over one set of its split."""
    path = Path(path)
    if run_dirs.is_model_file(path):
        return predict_model_file(path, set_name, data_dir, progress)
    return predict_run(path, set_name, data_dir, progress)


def predict_run(run_dir: Path, set_name: str = "DS2", data_dir: Path | None = None, progress=None) -> SetPredictions:
    """The run's best checkpoint (plain, pruned or QAT) in torch, on the device it was trained for."""
    import torch

    from ecgedge.data.run_data import run_dataset
    from ecgedge.models.architectures import SpectrogramClassifier
    from ecgedge.models.checkpoint import load_checkpoint_model
    from ecgedge.train.batches import BeatTensors
    from ecgedge.train.config import TrainConfig
    from ecgedge.train.fit import resolve_device
    from ecgedge.train.predict import predict_logits

    run_dir = Path(run_dir)
    meta = run_dirs.read_config(run_dir)
    config = TrainConfig.from_dict(meta["train"])
    check_set_name(config.split, set_name)  # before the dataset is loaded
    best = run_dirs.best_checkpoint(run_dir, must_exist=True)
    dataset = run_dataset(meta, data_dir)  # the run's records and preprocessing; other MIT-BIH files are refused
    split, idx = set_indices(config.split, set_name, dataset.records, dataset.labels, config.seed, config.val_fold)
    device = resolve_device(config.device)
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    model = load_checkpoint_model(ckpt, best)  # plain, pruned (other channel counts) and QAT (the int8-simulating graph) alike
    if isinstance(model, SpectrogramClassifier):
        model.to(device, memory_format=torch.channels_last)
    logits = predict_logits(model, BeatTensors(dataset), idx, config.eval_batch_size, device, progress)
    return SetPredictions.of(dataset, idx, logits, config.split, set_name, run_dir, {"checkpoint": str(best), "epoch": int(ckpt["epoch"])})


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
    split_md = md["split"]
    check_set_name(split_md["name"], set_name)  # before the dataset is loaded
    dataset = load_beats(md["preprocess"], ds.get("records") or None, ds.get("sources_sha256"), Path(data_dir))
    split, idx = set_indices(split_md["name"], set_name, dataset.records, dataset.labels, int(split_md.get("seed", 0)), int(split_md.get("val_fold", 0)))
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
    return SetPredictions.of(dataset, idx, logits, split.name, set_name, Path(run_dir) if run_dir else None, md)


def float_reference(pred: SetPredictions, progress=None) -> tuple[np.ndarray | None, np.ndarray | None, dict]:
    """(preds, logits, description) of the float model on the same beats, or (None, None, why)."""
    from ecgedge.atomic import sha256_file

    src = pred.metadata.get("source") or {}
    want_sha = src.get("checkpoint_sha256")
    run_dir = pred.run_dir
    if run_dir is None or not run_dir.is_dir():
        return None, None, {"source": None, "note": f"source run directory {run_dir} not found"}
    ckpt = Path(src.get("checkpoint") or run_dirs.best_checkpoint(run_dir))
    same_ckpt = ckpt.is_file() and want_sha is not None and sha256_file(ckpt) == want_sha
    npz = run_dirs.predictions_path(run_dir, pred.set_name)
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


def score(path: Path, set_name: str = "DS2", data_dir: Path | None = None, progress=None) -> tuple[dict, SetPredictions]:
    """(AAMI metrics of the model at ``path`` on ``set_name``, the per-beat predictions they come from)."""
    from ecgedge.evaluate import aami_metrics

    path = Path(path)
    pred = predict(path, set_name, data_dir, progress)
    metrics = aami_metrics(pred.labels, pred.preds)
    if not run_dirs.is_model_file(path):
        metrics.update({"split": pred.split, "set": set_name, "model": pred.metadata["checkpoint"], "best_epoch": pred.metadata["epoch"]})
        return metrics, pred
    metrics.update(_model_file_facts(path, pred, data_dir, progress))
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


def _model_file_facts(path: Path, pred: SetPredictions, data_dir, progress) -> dict:
    from ecgedge.evaluate import agreement

    md = pred.metadata
    if data_dir is not None:  # the metadata's data_dir may be stale; the float reference uses the one given
        md = {**md, "dataset": {**(md.get("dataset") or {}), "data_dir": str(data_dir)}}
    ref_preds, ref_logits, ref = float_reference(replace(pred, metadata=md), progress)
    facts = {
        **model_file_fields(path, md, pred.split, pred.set_name),
        "compression": _source_compression(md, pred.run_dir),
        "agreement": agreement(pred.preds, ref_preds) if ref_preds is not None else None,
        "agreement_reference": ref,
    }
    if ref_logits is not None:
        facts["max_abs_logit_diff"] = float(np.abs(pred.logits - ref_logits).max())
    return facts


def _source_compression(md: dict, run_dir: Path | None) -> dict | None:
    """How the file's source run was compressed: from its metadata, else from the run's config.json."""
    source = md.get("source") or {}
    if "compression" in source:
        return source["compression"]
    if run_dir is not None and run_dirs.has_config(run_dir):
        try:
            return run_dirs.compression(run_dirs.read_config(run_dir))
        except EcgEdgeError:
            return None
    return None


def keep_scores(path: Path, metrics: dict, pred: SetPredictions) -> None:
    """Write the metrics and predictions beside the run or file (where ``ecgedge report`` reads them)."""
    run_dirs.write_scores(path, metrics, pred.index, pred.labels, pred.preds, pred.logits)


def evaluate(path: Path, set_name: str = "DS2", data_dir: Path | None = None, progress=None) -> dict:
    """Score a run directory or an exported file on ``set_name`` and keep the scores beside it."""
    metrics, pred = score(path, set_name, data_dir, progress)
    keep_scores(path, metrics, pred)
    return metrics
