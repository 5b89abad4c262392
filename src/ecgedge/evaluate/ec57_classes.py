"""EC57 VEB / SVEB statistics of *detected and classified* beats against reference annotations (numpy).

The beats come from the gateway (its own R peaks, its own classes), so some reference beats are
missed and some detections match no reference beat. Matching is :func:`ecgedge.evaluate.ec57.match_beats`
(150 ms, one-to-one, closest first); the learning period (first 5 min) is excluded from every
count, as in :func:`~ecgedge.evaluate.ec57.qrs_counts`. Following ANSI/AAMI EC57 (as ``bxb``
applies it, and as :func:`ecgedge.evaluate.metrics.ec57_gross` does at reference peaks):

* **VEB** (reference V = MIT symbols V, E): TP = reference V detected and labelled V; FN =
  reference V missed or labelled anything else; FP = reference N or S labelled V, plus detections
  matching no reference beat labelled V. A reference fusion beat (F) labelled V is *not* a false
  positive, and reference Q beats are not scored. FPR = (N, S labelled V) / matched reference N, S.
* **SVEB** (reference S = A a J S): TP = S labelled S; FN = S missed or labelled otherwise; FP =
  reference N, V or F labelled S, plus unmatched detections labelled S; reference Q not scored;
  FPR = (N, V, F labelled S) / matched reference N, V, F.
* Unmatched detections inside ventricular-flutter episodes ``[``..``]`` are not counted (EC57
  leaves VF out of the beat statistics).

Gross = counts summed over records, then divided; average = mean of the per-record figures over
the records where the figure is defined (a record without reference V beats has no VEB Se).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES, aami_label
from ecgedge.evaluate.ec57 import LEARNING_PERIOD_S, BeatMatch, QrsCounts, _in_episodes

__all__ = ["ClassCounts", "class_counts", "matched_labels", "gross_class", "average_class"]

_N, _S, _V, _F, _Q = (AAMI_CLASSES.index(c) for c in "NSVFQ")


@dataclass(frozen=True)
class ClassCounts(QrsCounts):
    """VEB or SVEB counts of one record (or summed): the QRS counts' Se and +P, plus an FPR."""

    negatives: int  # matched reference beats of the negative classes (FPR denominator)
    fp_negatives: int  # of those, labelled positive (FPR numerator)

    @property
    def fpr(self) -> float:
        return self.fp_negatives / self.negatives if self.negatives else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "se": _json(self.se), "ppv": _json(self.ppv), "fpr": _json(self.fpr)}


def _json(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def matched_labels(ref_symbols: np.ndarray, det_labels: np.ndarray, match: BeatMatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reference AAMI label, predicted label, pair index) of the matched pairs whose reference is an AAMI beat."""
    ref_lab = np.array([-1 if (lab := aami_label(s)) is None else lab for s in np.asarray(ref_symbols).tolist()], dtype=np.int64)
    if len(match.pairs) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    r, d = match.pairs[:, 0], match.pairs[:, 1]
    keep = ref_lab[r] >= 0
    return ref_lab[r][keep], np.asarray(det_labels, np.int64)[d][keep], np.flatnonzero(keep)


def class_counts(
    record: str,
    ref_samples: np.ndarray,
    ref_symbols: np.ndarray,
    det_samples: np.ndarray,
    det_labels: np.ndarray,
    match: BeatMatch,
    fs: float,
    episodes: np.ndarray | None = None,
    learning_s: float = LEARNING_PERIOD_S,
) -> dict[str, ClassCounts]:
    """VEB and SVEB counts of one record after the learning period (rules in the module docstring)."""
    ref_samples = np.asarray(ref_samples, np.int64)
    det_samples = np.asarray(det_samples, np.int64)
    det_labels = np.asarray(det_labels, np.int64)
    start = learning_s * fs
    ref_lab = np.array([-1 if (lab := aami_label(s)) is None else lab for s in np.asarray(ref_symbols).tolist()], dtype=np.int64)
    pairs = match.pairs if len(match.pairs) else np.zeros((0, 2), np.int64)
    pairs = pairs[ref_samples[pairs[:, 0]] >= start]
    pr, pd = ref_lab[pairs[:, 0]], det_labels[pairs[:, 1]]
    missed = match.unmatched_ref[ref_samples[match.unmatched_ref] >= start]
    missed_lab = ref_lab[missed]
    extra = match.unmatched_det[det_samples[match.unmatched_det] >= start]
    if episodes is not None and len(episodes):
        extra = extra[~_in_episodes(det_samples[extra], np.asarray(episodes, np.int64).reshape(-1, 2))]
    extra_lab = det_labels[extra]

    def stats(pos: int, negatives: tuple[int, ...]) -> ClassCounts:
        neg = np.isin(pr, negatives)
        tp = int(np.sum((pr == pos) & (pd == pos)))
        fn = int(np.sum((pr == pos) & (pd != pos)) + np.sum(missed_lab == pos))
        fp_neg = int(np.sum(neg & (pd == pos)))
        fp = fp_neg + int(np.sum(extra_lab == pos))
        return ClassCounts(record, tp, fn, fp, int(neg.sum()), fp_neg)

    return {"veb": stats(_V, (_N, _S)), "sveb": stats(_S, (_N, _V, _F))}


def gross_class(counts: list[ClassCounts], name: str = "gross") -> ClassCounts:
    return ClassCounts(name, *(sum(getattr(c, f) for c in counts) for f in ("tp", "fn", "fp", "negatives", "fp_negatives")))


def average_class(counts: list[ClassCounts]) -> dict[str, float | None]:
    out = {}
    for key in ("se", "ppv", "fpr"):
        vals = [getattr(c, key) for c in counts if not np.isnan(getattr(c, key))]
        out[key] = float(np.mean(vals)) if vals else None
        out[f"n_records_{key}"] = len(vals)
    return out
