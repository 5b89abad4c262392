"""The train stage as a function: typed inputs, a run directory as output.

Scoring a run is :func:`ecgedge.validate.scoring.evaluate`, the same path as for exported files.
"""

import os
from pathlib import Path

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.data.dataset import BeatDataset, prepare_dataset
from ecgedge.data.run_data import records_of
from ecgedge.data.splits import Split, make_split
from ecgedge.data.summary import class_counts, default_records
from ecgedge import run_dirs
from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess import get_preset
from ecgedge.train.config import TrainConfig
from ecgedge.train.fit import FitResult, fit
from ecgedge.train.sampling import cap_normal_beats, patient_stratified_subsample, training_class_weights


def training_beats(config: TrainConfig, dataset: BeatDataset, split: Split) -> np.ndarray:
    idx = cap_normal_beats(dataset.records, dataset.labels, split.train, config.max_n_per_record, config.seed)
    return patient_stratified_subsample(dataset.records, dataset.labels, idx, config.train_fraction, config.seed)


def train_run(config: TrainConfig, data_dir: Path, run_dir: Path, resume: bool = False, progress=None, records: tuple[str, ...] | None = None) -> FitResult:
    """Prepare (or reuse) the dataset, split it, train, and record everything in ``run_dir``.

    ``records``: the MIT-BIH records to use (default: the 44 of DS1 and DS2); the run's
    ``config.json`` records them (as its dataset's source files), so every later stage uses the same.
    """
    # Under torchrun only rank 0 owns the directory: a slower rank would otherwise find the files
    # rank 0 has just written and refuse its own run.
    is_main_rank = int(os.environ.get("RANK", "0")) == 0
    if is_main_rank and run_dir.exists() and any(run_dir.iterdir()) and not resume:
        raise EcgEdgeError(f"{run_dir} already holds a run; pass --resume to continue it or choose another -o.")
    if resume and not run_dirs.has_config(run_dir):
        raise EcgEdgeError(f"nothing to resume in {run_dir} (no {run_dirs.CONFIG}).")
    saved = run_dirs.read_config(run_dir) if resume else None
    if saved is not None and TrainConfig.from_dict(saved["train"]) != config:
        raise EcgEdgeError(f"--resume with other settings than {run_dir / run_dirs.CONFIG}; resume with the same options.")
    if saved is not None and records_of((saved.get("dataset") or {}).get("sources") or {}) != list(records or default_records()):
        raise EcgEdgeError(f"--resume with other records than {run_dir / run_dirs.CONFIG}; resume with the same records.")
    run_dir.mkdir(parents=True, exist_ok=True)
    dataset = prepare_dataset(data_dir, get_preset(config.data_preset), records=records, progress=progress)
    split = make_split(config.split, dataset.records, dataset.labels, config.seed, config.val_fold)
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
        run_dirs.write_run_record(run_dir, meta)
    return fit(config, dataset, split, train_idx, run_dir, resume=resume, progress=progress, run_meta={"run": {"split": split.to_dict()}})
