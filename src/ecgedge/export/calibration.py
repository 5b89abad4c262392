"""Beats for int8 calibration and for the export self-check: DS1 training beats only, never DS2.

The run's own dataset (same preprocessing, same MIT-BIH files, checked by their SHA-256) is
split exactly as in training (``make_split(...).train``: for inter-patient, DS1 minus the
patient-wise validation records) and two disjoint, seeded, class-mixed samples are drawn from it:
``calib`` (fed to the quantisers) and ``check`` (exported model vs torch). Each sample takes up to
a fifth of its size from every class present and fills the rest with N beats, so the rare classes'
activations are seen by the calibration too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.data.run_data import run_dataset
from ecgedge.data.splits import make_split
from ecgedge.errors import EcgEdgeError


@dataclass(frozen=True)
class BeatSample:
    index: np.ndarray  # dataset indices
    images: np.ndarray  # uint8 [n, H, W]
    rr: np.ndarray  # float32 [n, N_RHYTHM] rhythm features
    labels: np.ndarray  # int64 [n]

    def __len__(self) -> int:
        return len(self.index)

    def float_images(self) -> np.ndarray:
        """float32 [n, 1, H, W] = uint8 / 255 (the exported graphs' input)."""
        return (self.images.astype(np.float32) / np.float32(255.0))[:, None]

    def class_counts(self) -> dict[str, int]:
        return {c: int(np.sum(self.labels == i)) for i, c in enumerate(AAMI_CLASSES)}


@dataclass(frozen=True)
class CalibrationData:
    calib: BeatSample
    check: BeatSample
    description: dict


def _stratified(rng: np.random.Generator, idx: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    if len(idx) <= n:
        return np.sort(idx)
    per_class = max(1, n // len(AAMI_CLASSES))
    chosen: list[np.ndarray] = []
    for c in range(1, len(AAMI_CLASSES)):  # rare classes first, up to a fifth each
        pool = idx[labels[idx] == c]
        if len(pool):
            chosen.append(rng.choice(pool, min(per_class, len(pool)), replace=False))
    taken = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    rest = np.setdiff1d(idx, taken)
    fill = rng.choice(rest, n - len(taken), replace=False)  # mostly N, like the data
    return np.sort(np.concatenate([taken, fill]))


def calibration_data(meta: dict, data_dir: Path | None = None, n_calib: int = 256, n_check: int = 256, seed: int = 0) -> CalibrationData:
    """Disjoint calibration and check samples of the run's training beats (see module docstring)."""
    dataset = run_dataset(meta, data_dir)
    train = meta.get("train") or {}
    split = make_split(train.get("split", "inter-patient"), dataset.records, dataset.labels, int(train.get("seed", 0)), int(train.get("val_fold", 0)))
    pool = np.asarray(split.train)
    if len(pool) < 2:
        raise EcgEdgeError("the run's training set has fewer than 2 beats; nothing to calibrate on.")
    rng = np.random.default_rng(seed)
    labels = dataset.labels.astype(np.int64)
    n_calib = min(n_calib, max(1, len(pool) // 2))
    calib = _stratified(rng, pool, labels, n_calib)
    check = _stratified(rng, np.setdiff1d(pool, calib), labels, n_check)

    def sample(idx: np.ndarray) -> BeatSample:
        return BeatSample(idx, np.asarray(dataset.images[idx]), np.asarray(dataset.rr[idx], np.float32), labels[idx])

    c, k = sample(calib), sample(check)
    description = {
        "set": f"{split.set_names[0]} training beats (make_split({split.name!r}).train; validation records excluded)",
        "records": sorted(set(dataset.records[calib].tolist())),
        "n_beats": len(c),
        "class_counts": c.class_counts(),
        "seed": seed,
        "sampling": "seeded, up to n/5 beats of each class, the rest N",
    }
    return CalibrationData(calib=c, check=k, description=description)
