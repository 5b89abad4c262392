"""The train and evaluate stages as functions: typed inputs, a run directory as output."""

import os
from pathlib import Path

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.data.dataset import BeatDataset, prepare_dataset
from ecgedge.data.splits import Split, make_split
from ecgedge.data.summary import class_counts
from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess import get_preset
from ecgedge.train import runs
from ecgedge.train.config import TrainConfig
from ecgedge.train.fit import FitResult, fit
from ecgedge.train.sampling import cap_normal_beats, patient_stratified_subsample, training_class_weights


def training_beats(config: TrainConfig, dataset: BeatDataset, split: Split) -> np.ndarray:
    idx = cap_normal_beats(dataset.records, dataset.labels, split.train, config.max_n_per_record, config.seed)
    return patient_stratified_subsample(dataset.records, dataset.labels, idx, config.train_fraction, config.seed)


def train_run(config: TrainConfig, data_dir: Path, run_dir: Path, resume: bool = False, progress=None) -> FitResult:
    """Prepare (or reuse) the dataset, split it, train, and record everything in ``run_dir``."""
    # Under torchrun only rank 0 owns the directory: a slower rank would otherwise find the files
    # rank 0 has just written and refuse its own run.
    is_main_rank = int(os.environ.get("RANK", "0")) == 0
    if is_main_rank and run_dir.exists() and any(run_dir.iterdir()) and not resume:
        raise EcgEdgeError(f"{run_dir} already holds a run; pass --resume to continue it or choose another -o.")
    if resume and not (run_dir / runs.CONFIG).is_file():
        raise EcgEdgeError(f"nothing to resume in {run_dir} (no {runs.CONFIG}).")
    if resume:
        saved = TrainConfig.from_dict(runs.read_json(run_dir / runs.CONFIG)["train"])
        if saved != config:
            raise EcgEdgeError(f"--resume with other settings than {run_dir / runs.CONFIG}; resume with the same options.")
    run_dir.mkdir(parents=True, exist_ok=True)
    dataset = prepare_dataset(data_dir, get_preset(config.data_preset), progress=progress)
    split = make_split(config.split, dataset.records, dataset.labels, config.seed)
    train_idx = training_beats(config, dataset, split)
    meta = {
        "name": run_dir.name,
        "train": config.to_dict(),
        "preprocess": dataset.config.to_dict(),
        "data_dir": str(Path(data_dir).resolve()),
        "dataset": {"path": str(dataset.path), "n_beats": len(dataset), "sources": dataset.meta["sources"]},
        "split": split.to_dict(),
        "train_beats": class_counts(dataset.labels[train_idx]),
        "val_beats": class_counts(dataset.labels[split.val]),
        "class_weights": dict(zip(AAMI_CLASSES, map(float, training_class_weights(config, dataset.labels, train_idx)))),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }
    if is_main_rank:
        runs.write_json(run_dir / runs.CONFIG, meta)
        runs.write_json(run_dir / runs.VERSIONS, runs.versions())
    return fit(config, dataset, split, train_idx, run_dir, resume=resume, progress=progress, run_meta={"run": {"split": split.to_dict()}})


SET_ALIASES = {"DS2": "test", "test": "test", "DS1": "train", "train": "train", "val": "val"}


def evaluate_run(run_dir: Path, set_name: str = "DS2", data_dir: Path | None = None, progress=None) -> dict:
    """Score the run's best checkpoint on a set of its split; writes metrics and predictions."""
    import torch

    from ecgedge.evaluate import aami_metrics
    from ecgedge.train.batches import BeatTensors
    from ecgedge.train.fit import resolve_device
    from ecgedge.models.checkpoint import load_checkpoint_model
    from ecgedge.models.architectures import SpectrogramClassifier
    from ecgedge.train.predict import predict_logits

    if set_name not in SET_ALIASES:
        raise EcgEdgeError(f"unknown set {set_name!r}; choose one of {', '.join(SET_ALIASES)}.")
    meta = runs.read_json(run_dir / runs.CONFIG)
    config = TrainConfig.from_dict(meta["train"])
    best = run_dir / runs.CHECKPOINTS / runs.BEST
    if not best.is_file():
        raise EcgEdgeError(f"{best} not found: training of {run_dir} has not finished an epoch.")
    dataset = prepare_dataset(Path(data_dir or meta["data_dir"]), get_preset(config.data_preset), progress=progress)
    if dataset.meta["sources"] != meta["dataset"]["sources"]:
        raise EcgEdgeError(f"the MIT-BIH files differ from those {run_dir.name} was trained on; evaluate with the same data.")
    split = make_split(config.split, dataset.records, dataset.labels, config.seed)
    role = SET_ALIASES[set_name]
    if config.split == "inter-patient" and set_name in ("train", "test"):
        raise EcgEdgeError("inter-patient sets are called DS1, DS2 and val.")
    idx = {"test": split.test, "val": split.val, "train": split.train}[role]

    device = resolve_device(config.device)
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    # Plain, pruned (other channel counts) and QAT checkpoints (the int8-simulating graph) alike.
    model = load_checkpoint_model(ckpt, best)
    if isinstance(model, SpectrogramClassifier):
        model.to(device, memory_format=torch.channels_last)
    logits = predict_logits(model, BeatTensors(dataset), idx, config.eval_batch_size, device, progress)
    y_true = dataset.labels[idx].astype(np.int64)
    preds = logits.argmax(1)
    metrics = aami_metrics(y_true, preds)
    metrics.update({"split": config.split, "set": set_name, "model": str(best), "best_epoch": int(ckpt["epoch"])})
    runs.write_json(run_dir / f"metrics_{set_name}.json", metrics)
    if role == "test":
        runs.write_json(run_dir / runs.METRICS, metrics)
    np.savez_compressed(run_dir / f"predictions_{set_name}.npz", index=idx, labels=y_true, preds=preds, logits=logits)
    return metrics
