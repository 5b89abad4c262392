"""Train / validation / test splits of a set of beats.

``inter-patient`` (de Chazal 2004) is the honest protocol: DS1 records train, DS2 records test,
and model selection uses a patient-wise subset of DS1, so DS2 is never used for any choice.
``intra-patient`` (a seeded random 80/20 split of all beats) is the leaky protocol the paper
criticises: the same patients' beats sit on both sides. It exists only for comparison.
"""

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES, DS1, DS2
from ecgedge.errors import EcgEdgeError

SPLITS = ("inter-patient", "intra-patient")
INTRA_TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.2
#: Patient-wise folds of DS1 for cross-validated selection; fold 0 is the default validation set.
VALIDATION_FOLDS = round(1 / VALIDATION_FRACTION)
#: Classes whose share a patient-wise validation subset tries to match (Q has 8 DS1 beats).
_BALANCED_CLASSES = ("N", "S", "V", "F")


@dataclass(frozen=True)
class Split:
    """Beat indices of each role; ``set_names`` are the names reports use for train and test."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    set_names: tuple[str, str]  # (train set, test set), e.g. ("DS1", "DS2")
    val_records: tuple[str, ...]  # empty for intra-patient (beat-wise validation)
    val_fold: int = 0  # which of the VALIDATION_FOLDS patient folds of DS1 validates (inter-patient)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "set_names": list(self.set_names),
            "val_records": list(self.val_records),
            "val_fold": self.val_fold,
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
        }


def check_split_name(name: str) -> None:
    if name not in SPLITS:
        raise EcgEdgeError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}.")


def patient_validation_records(
    records: np.ndarray, labels: np.ndarray, candidates: tuple[str, ...], fraction: float = VALIDATION_FRACTION
) -> tuple[str, ...]:
    """The subset of ``candidates`` (whole patients) whose class shares come closest to ``fraction``.

    Exhaustive over subsets of the target size, so the choice is deterministic and needs no seed.
    """
    present = [r for r in candidates if np.any(records == r)]
    k = max(1, round(fraction * len(present)))
    counts = np.array(
        [[np.sum((records == r) & (labels == AAMI_CLASSES.index(c))) for c in _BALANCED_CLASSES] for r in present],
        dtype=float,
    )
    totals = counts.sum(axis=0)
    totals[totals == 0] = 1
    best, best_cost = None, np.inf
    for combo in combinations(range(len(present)), k):
        share = counts[list(combo)].sum(axis=0) / totals
        cost = np.abs(share - fraction).sum() + 10 * np.sum(share == 0)  # every class must appear
        if cost < best_cost:
            best, best_cost = combo, cost
    return tuple(present[i] for i in best)


def patient_folds(records: np.ndarray, labels: np.ndarray, candidates: tuple[str, ...], n_folds: int = VALIDATION_FOLDS) -> tuple[tuple[str, ...], ...]:
    """``candidates`` (whole patients) in ``n_folds`` disjoint folds, each with class shares close to 1/n_folds.

    Fold 0 is :func:`patient_validation_records` at ``1 / n_folds`` (the default validation
    patients); each next fold is chosen the same way from the patients left, at the share that
    splits them evenly, so the folds are deterministic and every earlier run's validation set is
    fold 0. Used for cross-validated choices on DS1: train once per fold, pool the folds'
    validation predictions.
    """
    present = [r for r in candidates if np.any(records == r)]
    if n_folds < 2 or n_folds > len(present):
        raise EcgEdgeError(f"cannot cut {len(present)} patients into {n_folds} validation folds.")
    folds, left = [], present
    for i in range(n_folds - 1):
        keep = np.isin(records, left)
        fold = patient_validation_records(records[keep], labels[keep], tuple(left), 1 / (n_folds - i))
        folds.append(fold)
        left = [r for r in left if r not in fold]
    return (*folds, tuple(left))


def make_split(name: str, records: np.ndarray, labels: np.ndarray, seed: int = 0, val_fold: int = 0) -> Split:
    """Split beats (given by their record names and labels) by protocol ``name``.

    ``val_fold`` (inter-patient only) picks which of :func:`patient_folds` of DS1 validates; the
    other DS1 patients train. 0, the default, is every run's validation set.
    """
    check_split_name(name)
    if not 0 <= val_fold < VALIDATION_FOLDS:
        raise EcgEdgeError(f"--val-fold must be in 0..{VALIDATION_FOLDS - 1}, got {val_fold}.")
    if val_fold and name != "inter-patient":
        raise EcgEdgeError("--val-fold applies to the inter-patient split only.")
    if name == "inter-patient":
        in_ds1 = np.isin(records, DS1)
        if not in_ds1.any():  # no patient to train on or to select with
            given = ", ".join(sorted(set(map(str, records)))) or "none"
            raise EcgEdgeError(
                f"the inter-patient split trains and validates on DS1 records, but the records given ({given}) hold none; "
                f"add DS1 records (e.g. {', '.join(DS1[:2])}) or use --split intra-patient."
            )
        if val_fold == 0:
            val_records = patient_validation_records(records[in_ds1], labels[in_ds1], DS1)
        else:
            val_records = patient_folds(records[in_ds1], labels[in_ds1], DS1)[val_fold]
        is_val = np.isin(records, val_records)
        return Split(
            name=name,
            train=np.flatnonzero(in_ds1 & ~is_val),
            val=np.flatnonzero(is_val),
            test=np.flatnonzero(np.isin(records, DS2)),
            set_names=("DS1", "DS2"),
            val_records=val_records,
            val_fold=val_fold,
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.flatnonzero(np.isin(records, DS1 + DS2)))
    n_test = round(INTRA_TEST_FRACTION * len(order))
    test, rest = np.sort(order[:n_test]), order[n_test:]
    n_val = round(VALIDATION_FRACTION * len(rest))
    return Split(
        name=name,
        train=np.sort(rest[n_val:]),
        val=np.sort(rest[:n_val]),
        test=test,
        set_names=("train", "test"),
        val_records=(),
    )
