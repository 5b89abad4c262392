"""Beat counts per split set, plus the beats dropped at record ends (annotations only, fast)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES, DS1, DS2, PACED_RECORDS
from ecgedge.data.beats import locate_beats
from ecgedge.data.records import check_record_names, read_annotations, require_data_dir
from ecgedge.data.splits import make_split
from ecgedge.preprocess import PreprocessConfig


@dataclass(frozen=True)
class BeatIndex:
    """Record and label of every kept beat, and per-record counts of dropped beats."""

    records: np.ndarray  # <U3 [n]
    labels: np.ndarray  # int8 [n]
    dropped: dict[str, np.ndarray]  # record -> int64 [5]


def default_records() -> tuple[str, ...]:
    """The 44 non-paced records of DS1 and DS2, in database order."""
    return tuple(sorted(r for r in DS1 + DS2 if r not in PACED_RECORDS))


def index_beats(data_dir: Path, config: PreprocessConfig, records: tuple[str, ...] | None = None) -> BeatIndex:
    require_data_dir(data_dir)
    records = default_records() if records is None else tuple(records)
    check_record_names(list(records))
    names, labels, dropped = [], [], {}
    for rec in records:
        loc = locate_beats(read_annotations(data_dir, rec, config.lead, config.fs), config.window)
        labels.append(loc.labels[loc.fits])
        names.append(np.full(int(loc.fits.sum()), rec))
        dropped[rec] = loc.dropped
    return BeatIndex(records=np.concatenate(names), labels=np.concatenate(labels), dropped=dropped)


def class_counts(labels: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(AAMI_CLASSES))
    return {c: int(n) for c, n in zip(AAMI_CLASSES, counts)}


def _dropped_counts(dropped: dict[str, np.ndarray], records) -> dict[str, int]:
    total = sum((dropped[r] for r in records if r in dropped), np.zeros(len(AAMI_CLASSES), dtype=np.int64))
    return {c: int(n) for c, n in zip(AAMI_CLASSES, total)}


def summarize(index: BeatIndex, split: str, seed: int = 0) -> dict:
    """``{"split", "sets": {set: {class: n}}, "dropped": {...}, "validation_records"}``.

    Inter-patient sets are DS1 (training + validation) and DS2. Intra-patient sets are the random
    train (training + validation) and test beats; its dropped beats belong to no set, so they are
    reported once under ``"all"``.
    """
    sp = make_split(split, index.records, index.labels, seed)
    train_name, test_name = sp.set_names
    train_idx = np.concatenate([sp.train, sp.val])
    sets = {train_name: class_counts(index.labels[train_idx]), test_name: class_counts(index.labels[sp.test])}
    if split == "inter-patient":
        dropped = {"DS1": _dropped_counts(index.dropped, DS1), "DS2": _dropped_counts(index.dropped, DS2)}
    else:
        dropped = {"all": _dropped_counts(index.dropped, index.dropped)}
    return {"split": split, "sets": sets, "dropped": dropped, "validation_records": list(sp.val_records)}
