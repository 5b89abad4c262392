"""Choosing which training beats a run sees (all numpy, seeded)."""

import numpy as np

from ecgedge.errors import EcgEdgeError

N_LABEL = 0


def parse_normal_per_epoch(value: int | str | None, option: str = "--normal-per-epoch") -> int | str | None:
    """A fine-tuning step's N draw: ``"run"`` (None given: keep the run's setting), None ("all":
    every training beat each epoch) or a positive count."""
    if value is None:
        return "run"
    if str(value).strip().lower() == "all":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(n) != str(value).strip():
        raise EcgEdgeError(f"{option} must be a positive whole number or 'all', got {value!r}.")
    return n


def patient_stratified_subsample(records: np.ndarray, labels: np.ndarray, idx: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """``fraction`` of each (record, class) group of ``idx``, at least one beat per group.

    Keeps every patient and every class a patient has, so a 1 % run still sees all the
    training patients' arrhythmias, only fewer of each.
    """
    if fraction >= 1:
        return idx
    rng = np.random.default_rng(seed)
    keep = []
    groups = np.stack([np.unique(records[idx], return_inverse=True)[1], labels[idx]], axis=1)
    _, group_of = np.unique(groups, axis=0, return_inverse=True)
    for g in np.unique(group_of):
        members = idx[group_of == g]
        n = max(1, int(round(fraction * len(members))))
        keep.append(rng.choice(members, size=n, replace=False))
    return np.sort(np.concatenate(keep))


def cap_normal_beats(records: np.ndarray, labels: np.ndarray, idx: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """At most ``cap`` N beats per record (all other classes kept)."""
    if cap is None:
        return idx
    rng = np.random.default_rng(seed)
    keep = [idx[labels[idx] != N_LABEL]]
    for rec in np.unique(records[idx]):
        normal = idx[(records[idx] == rec) & (labels[idx] == N_LABEL)]
        keep.append(normal if len(normal) <= cap else rng.choice(normal, size=cap, replace=False))
    return np.sort(np.concatenate(keep))


def class_weights(labels: np.ndarray, n_classes: int, mode: str) -> np.ndarray:
    """Loss weights ~ frequency^-p (p = 0, 0.5, 1), scaled to mean 1 over the present classes."""
    return weights_from_counts(np.bincount(labels, minlength=n_classes), mode)


def weights_from_counts(counts: np.ndarray, mode: str) -> np.ndarray:
    """:func:`class_weights` from per-class beat counts."""
    power = {"none": 0.0, "sqrt": 0.5, "inverse": 1.0}[mode]
    counts = np.asarray(counts, dtype=float)
    n_classes = len(counts)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = (counts[present] / counts[present].sum()) ** -power
    w[present] /= w[present].mean()
    return w.astype(np.float32)


def epoch_beats(labels: np.ndarray, idx: np.ndarray, normal_per_epoch: int | None, rng: np.random.Generator) -> np.ndarray:
    """The beats of one epoch: every non-N beat of ``idx`` and ``normal_per_epoch`` N beats drawn afresh.

    Sorted; ``None`` (or more than there are) keeps every N beat.
    """
    normal = idx[labels[idx] == N_LABEL]
    if normal_per_epoch is None or normal_per_epoch >= len(normal):
        return idx
    drawn = rng.choice(normal, size=normal_per_epoch, replace=False)
    return np.sort(np.concatenate([idx[labels[idx] != N_LABEL], drawn]))


def epoch_size(labels: np.ndarray, idx: np.ndarray, normal_per_epoch: int | None) -> int:
    n_normal = int(np.sum(labels[idx] == N_LABEL))
    kept = n_normal if normal_per_epoch is None else min(normal_per_epoch, n_normal)
    return len(idx) - n_normal + kept


def training_class_weights(config, labels: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Loss weights of a run: from the class mix of one epoch (N as drawn per epoch), float32 [5]."""
    counts = np.bincount(labels[idx], minlength=5).astype(np.int64)
    if config.normal_per_epoch is not None:
        counts[N_LABEL] = min(counts[N_LABEL], config.normal_per_epoch)
    return weights_from_counts(counts, config.class_weighting)
