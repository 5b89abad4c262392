"""Choosing which training beats a run sees (all numpy, seeded)."""

import numpy as np

N_LABEL = 0


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
    power = {"none": 0.0, "sqrt": 0.5, "inverse": 1.0}[mode]
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = (counts[present] / counts[present].sum()) ** -power
    w[present] /= w[present].mean()
    return w.astype(np.float32)
