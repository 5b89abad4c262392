"""AAMI EC57 beat-classification metrics (Mondéjar-Guerra et al. 2019) from label arrays."""

from collections.abc import Sequence

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.errors import EcgEdgeError

CONFUSION_ORDER = "rows = reference class, columns = predicted class"


def _as_labels(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise EcgEdgeError(f"{name} must be a 1-D label array, got shape {arr.shape}")
    if arr.size == 0:
        raise EcgEdgeError(f"{name} is empty: there is nothing to score")
    return arr


def _check_pair(a, b, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_labels(a, names[0]), _as_labels(b, names[1])
    if a.shape != b.shape:
        raise EcgEdgeError(f"{names[0]} and {names[1]} differ in length: {a.size} vs {b.size}")
    return a, b


def _check_range(arr: np.ndarray, name: str, n_classes: int) -> np.ndarray:
    if not np.issubdtype(arr.dtype, np.integer):
        raise EcgEdgeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= n_classes:
        raise EcgEdgeError(f"{name} has labels in [{lo}, {hi}], outside [0, {n_classes - 1}]")
    return arr.astype(np.int64, copy=False)


def _div(num: float, den: float) -> float:
    # A metric with an empty denominator (class absent, never predicted) is reported as 0.0,
    # not NaN, so the result stays valid JSON and comparable across runs.
    return float(num) / float(den) if den else 0.0


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """int64 ``[n_classes, n_classes]`` counts; rows = reference class, columns = predicted class."""
    t, p = _check_pair(y_true, y_pred, ("y_true", "y_pred"))
    t, p = _check_range(t, "y_true", n_classes), _check_range(p, "y_pred", n_classes)
    flat = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def agreement(pred_a, pred_b) -> float:
    """Fraction of positions where two prediction arrays are equal (e.g. torch vs TFLite)."""
    a, b = _check_pair(pred_a, pred_b, ("pred_a", "pred_b"))
    return float(np.mean(a == b))


def _kappa(cm: np.ndarray) -> float:
    n = cm.sum()
    observed = np.trace(cm) / n
    chance = float(cm.sum(axis=1) @ cm.sum(axis=0)) / n**2
    return _div(observed - chance, 1.0 - chance)


def aami_metrics(y_true, y_pred, classes: Sequence[str] = AAMI_CLASSES) -> dict:
    """Score integer labels (label ``i`` is ``classes[i]``); returns a JSON-serialisable dict.

    Per class: Se = TP/(TP+FN), PPV = TP/(TP+FP), FPR = FP/(FP+TN), F1 = 2·Se·PPV/(Se+PPV).
    Any ratio whose denominator is 0 (a class absent from ``y_true`` or never predicted) is 0.0,
    never NaN; so is kappa when chance agreement is 1 (every beat in one class on both sides).

    ``macro_f1`` averages F1 over the classes present in ``y_true`` only: Q has ~7 beats in DS2,
    and an absent class would otherwise add a meaningless 0. ``j_index`` = Se_S + Se_V + PPV_S +
    PPV_V (max 4); ``jk`` = 0.5·kappa + 0.125·j_index (Mondéjar-Guerra's jκ index, max 1), so
    ``classes`` must contain "S" and "V".
    """
    classes = list(classes)
    missing = {"S", "V"} - set(classes)
    if missing:
        raise EcgEdgeError(f"classes {classes} lack {sorted(missing)}, which the j index needs")
    cm = confusion_matrix(y_true, y_pred, len(classes))
    n = int(cm.sum())
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    fp, fn = predicted - tp, support - tp
    tn = n - tp - fp - fn

    per_class = {}
    for i, c in enumerate(classes):
        se = _div(tp[i], tp[i] + fn[i])
        ppv = _div(tp[i], tp[i] + fp[i])
        per_class[c] = {
            "se": se,
            "ppv": ppv,
            "fpr": _div(fp[i], fp[i] + tn[i]),
            "f1": _div(2 * se * ppv, se + ppv),
            "support": int(support[i]),
        }

    present = [per_class[c]["f1"] for c, s in zip(classes, support) if s > 0]
    s_, v_ = per_class["S"], per_class["V"]
    j_index = s_["se"] + v_["se"] + s_["ppv"] + v_["ppv"]
    kappa = _kappa(cm)
    out = {
        "classes": classes,
        "n": n,
        "accuracy": _div(np.trace(cm), n),
        "macro_f1": float(np.mean(present)),
        "j_index": j_index,
        "kappa": kappa,
        "jk": 0.5 * kappa + 0.125 * j_index,
        "per_class": per_class,
        "confusion": {"classes": classes, "order": CONFUSION_ORDER, "matrix": cm.tolist()},
    }
    if list(classes) == list(AAMI_CLASSES):
        out["four_class"] = four_class_metrics(cm)
        out["ec57"] = ec57_gross(cm)
    return out


HEADLINE_CLASSES = ("N", "S", "V", "F")


def four_class_metrics(cm: np.ndarray) -> dict:
    """Headline figures over N, S, V, F: the beats whose reference is Q are left out.

    DS2 holds 7 Q beats (F1 0 for every model in the literature), and model selection never sees
    any, so the 5-class macro-F1 mostly measures that noise. A beat of N/S/V/F *predicted* Q still
    counts as wrong: the Q column stays, as a fifth "other" prediction.
    """
    keep = [AAMI_CLASSES.index(c) for c in HEADLINE_CLASSES]
    sub = cm[keep]  # rows N S V F; columns N S V F Q
    n = int(sub.sum())
    tp = sub[np.arange(4), keep]
    support = sub.sum(axis=1)
    predicted = sub[:, keep].sum(axis=0)
    f1 = {}
    for i, c in enumerate(HEADLINE_CLASSES):
        se, ppv = _div(tp[i], support[i]), _div(tp[i], predicted[i])
        f1[c] = _div(2 * se * ppv, se + ppv)
    observed = _div(tp.sum(), n)
    chance = _div(float(support @ predicted), float(n) ** 2)
    kappa = _div(observed - chance, 1.0 - chance)
    # Rows 1 and 2 of HEADLINE_CLASSES are S and V.
    j_index = _div(tp[1], support[1]) + _div(tp[2], support[2]) + _div(tp[1], predicted[1]) + _div(tp[2], predicted[2])
    return {
        "classes": list(HEADLINE_CLASSES),
        "n": n,
        "accuracy": observed,
        "macro_f1": float(np.mean([f1[c] for c, k in zip(HEADLINE_CLASSES, support) if k > 0])),
        "f1": f1,
        "kappa": kappa,
        "j_index": j_index,
        "jk": 0.5 * kappa + 0.125 * j_index,
    }


def ec57_gross(cm: np.ndarray) -> dict:
    """ANSI/AAMI EC57 gross VEB and SVEB statistics from a 5-class confusion matrix (N S V F Q).

    The standard's rules, as de Chazal et al. 2004 applied them to MIT-BIH:
    * VEB: TP = V called V; FN = V called anything else; FP = N or S called V. A fusion beat (F)
      called V is *not* a false positive (it is partly ventricular), and reference Q beats are
      not scored at all; FPR = FP / (reference N and S beats).
    * SVEB: TP = S called S; FN = S called anything else; FP = N, V or F called S; reference Q
      beats not scored; FPR = FP / (reference N, V and F beats).
    "Gross" = counts summed over every beat of the set (the per-record average needs records).
    """
    i = {c: AAMI_CLASSES.index(c) for c in AAMI_CLASSES}

    def stats(target: str, negatives: tuple[str, ...]) -> dict:
        t = i[target]
        tp = int(cm[t, t])
        fn = int(cm[t].sum() - tp)
        fp = int(sum(cm[i[c], t] for c in negatives))
        neg = int(sum(cm[i[c]].sum() for c in negatives))
        se, ppv = _div(tp, tp + fn), _div(tp, tp + fp)
        return {"se": se, "ppv": ppv, "fpr": _div(fp, neg), "f1": _div(2 * se * ppv, se + ppv), "tp": tp, "fn": fn, "fp": fp, "negatives": neg}

    return {
        "veb": stats("V", ("N", "S")),
        "sveb": stats("S", ("N", "V", "F")),
        "rules": "EC57: F called V is not a VEB false positive; reference Q beats are not scored",
    }
