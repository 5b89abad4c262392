"""AAMI metrics against confusion matrices worked out by hand."""

import json
from fractions import Fraction as Fr

import numpy as np
import pytest

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.errors import EcgEdgeError
from ecgedge.evaluate import aami_metrics, agreement, confusion_matrix

N, S, V, F, Q = range(5)


def check_class(m: dict, c: str, se, ppv, fpr, f1, support: int) -> None:
    got = m["per_class"][c]
    assert got["se"] == pytest.approx(float(se))
    assert got["ppv"] == pytest.approx(float(ppv))
    assert got["fpr"] == pytest.approx(float(fpr))
    assert got["f1"] == pytest.approx(float(f1))
    assert got["support"] == support


def test_mixed_errors_by_hand():
    y_true = [N, N, N, N, N, S, S, V, V, F]
    y_pred = [N, N, N, N, S, S, N, V, S, F]
    m = aami_metrics(y_true, y_pred)
    # rows = reference, columns = predicted; column sums N5 S3 V1 F1 Q0, n = 10.
    assert m["confusion"]["matrix"] == [
        [4, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0],
    ]
    assert m["n"] == 10
    # N: TP4 FN1 FP1 TN4
    check_class(m, "N", Fr(4, 5), Fr(4, 5), Fr(1, 5), Fr(4, 5), 5)
    # S: TP1 FN1 FP2 TN6 -> F1 = 2(1/2)(1/3)/(1/2+1/3) = 2/5
    check_class(m, "S", Fr(1, 2), Fr(1, 3), Fr(2, 8), Fr(2, 5), 2)
    # V: TP1 FN1 FP0 TN8 -> F1 = 2(1/2)(1)/(3/2) = 2/3
    check_class(m, "V", Fr(1, 2), 1, 0, Fr(2, 3), 2)
    # F: TP1 FN0 FP0 TN9
    check_class(m, "F", 1, 1, 0, 1, 1)
    # Q: absent and never predicted: Se and PPV have 0 denominators -> 0.0; FPR = 0/10
    check_class(m, "Q", 0, 0, 0, 0, 0)
    assert m["accuracy"] == pytest.approx(7 / 10)
    # Q has no support, so macro-F1 averages N, S, V, F only: (4/5 + 2/5 + 2/3 + 1) / 4
    assert m["macro_f1"] == pytest.approx(float(Fr(43, 60)))
    # po = 7/10, pe = (5*5 + 2*3 + 2*1 + 1*1 + 0*0) / 100 = 34/100 -> kappa = 0.36/0.66
    kappa = Fr(6, 11)
    assert m["kappa"] == pytest.approx(float(kappa))
    # j = Se_S + Se_V + PPV_S + PPV_V = 1/2 + 1/2 + 1/3 + 1
    j = Fr(7, 3)
    assert m["j_index"] == pytest.approx(float(j))
    assert m["jk"] == pytest.approx(float(kappa / 2 + j / 8))


def test_class_never_predicted_by_hand():
    y_true = np.array([N, N, N, V, V, S])
    y_pred = np.array([N, N, V, V, N, N])
    m = aami_metrics(y_true, y_pred)
    assert m["confusion"]["matrix"][:3] == [[2, 0, 1, 0, 0], [1, 0, 0, 0, 0], [1, 0, 1, 0, 0]]
    # N: TP2 FN1 FP2 TN1 -> F1 = 2(2/3)(1/2)/(7/6) = 4/7
    check_class(m, "N", Fr(2, 3), Fr(1, 2), Fr(2, 3), Fr(4, 7), 3)
    # S: TP0 FN1 FP0 TN5; never predicted -> PPV denominator 0 -> 0.0, F1 0.0
    check_class(m, "S", 0, 0, 0, 0, 1)
    # V: TP1 FN1 FP1 TN3
    check_class(m, "V", Fr(1, 2), Fr(1, 2), Fr(1, 4), Fr(1, 2), 2)
    assert m["accuracy"] == pytest.approx(1 / 2)
    # S has support, so its 0 counts: (4/7 + 0 + 1/2) / 3 = 5/14
    assert m["macro_f1"] == pytest.approx(5 / 14)
    # po = 1/2, pe = (3*4 + 1*0 + 2*2) / 36 = 4/9 -> kappa = (1/18)/(5/9) = 1/10
    assert m["kappa"] == pytest.approx(1 / 10)
    # j = 0 + 1/2 + 0 + 1/2
    assert m["j_index"] == pytest.approx(1.0)
    assert m["jk"] == pytest.approx(1 / 20 + 1 / 8)
    json.dumps(m, allow_nan=False)


def test_perfect_prediction():
    y = [N, S, V, F, Q, N, N, V]
    m = aami_metrics(y, y)
    for c in AAMI_CLASSES:
        assert (m["per_class"][c]["se"], m["per_class"][c]["ppv"], m["per_class"][c]["f1"]) == (1.0, 1.0, 1.0)
        assert m["per_class"][c]["fpr"] == 0.0
    assert (m["accuracy"], m["macro_f1"], m["kappa"], m["j_index"], m["jk"]) == (1.0, 1.0, 1.0, 4.0, 1.0)


def test_single_class_kappa_is_zero_not_nan():
    m = aami_metrics([N, N, N], [N, N, N])
    assert m["kappa"] == 0.0  # chance agreement is 1: 0/0, reported as 0.0
    assert m["macro_f1"] == 1.0
    assert m["j_index"] == 0.0
    json.dumps(m, allow_nan=False)


def test_schema_is_plain_json():
    m = aami_metrics(np.array([N, S, V], dtype=np.int8), np.array([N, N, V], dtype=np.int8))
    back = json.loads(json.dumps(m, allow_nan=False))
    assert back == m
    assert list(m) == ["classes", "n", "accuracy", "macro_f1", "j_index", "kappa", "jk", "per_class", "confusion", "four_class", "ec57"]
    assert m["classes"] == list(AAMI_CLASSES) == m["confusion"]["classes"]
    assert m["confusion"]["order"] == "rows = reference class, columns = predicted class"
    assert set(m["per_class"]["N"]) == {"se", "ppv", "fpr", "f1", "support"}


def test_confusion_matrix_and_agreement():
    cm = confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert agreement([0, 1, 1, 2], [0, 1, 2, 2]) == 0.75


def test_against_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 5, 500))
    m = aami_metrics(y_true, y_pred)
    assert m["kappa"] == pytest.approx(skm.cohen_kappa_score(y_true, y_pred))
    f1 = skm.f1_score(y_true, y_pred, labels=range(5), average=None, zero_division=0)
    assert [m["per_class"][c]["f1"] for c in AAMI_CLASSES] == pytest.approx(list(f1))


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([0, 1], [0], "differ in length"),
        ([[0, 1]], [[0, 1]], "1-D"),
        ([], [], "empty"),
        ([0, 5], [0, 1], "outside"),
        ([0, 1], [-1, 1], "outside"),
        ([0.0, 1.0], [0, 1], "integer"),
    ],
)
def test_bad_input(y_true, y_pred, match):
    with pytest.raises(EcgEdgeError, match=match):
        aami_metrics(y_true, y_pred)


def test_bad_agreement_and_classes():
    with pytest.raises(EcgEdgeError, match="differ in length"):
        agreement([0, 1], [0])
    with pytest.raises(EcgEdgeError, match="j index"):
        aami_metrics([0, 1], [0, 1], classes=("A", "B"))


def _cm_to_labels(cm):
    t, p = [], []
    for i, row in enumerate(cm):
        for j, k in enumerate(row):
            t += [i] * k
            p += [j] * k
    return np.array(t), np.array(p)


def test_ec57_gross_veb_and_sveb_follow_the_standards_rules():
    #            predicted N   S   V   F   Q
    cm = np.array([[900, 20, 10, 5, 1],  # N
                   [30, 60, 5, 0, 0],    # S
                   [8, 2, 80, 4, 1],     # V
                   [6, 1, 9, 20, 0],     # F: the 9 called V are not VEB false positives
                   [1, 1, 1, 0, 2]])     # Q: never scored
    m = aami_metrics(*_cm_to_labels(cm))["ec57"]
    veb, sveb = m["veb"], m["sveb"]
    assert (veb["tp"], veb["fn"], veb["fp"]) == (80, 8 + 2 + 4 + 1, 10 + 5)
    assert veb["negatives"] == 936 + 95
    assert veb["se"] == pytest.approx(80 / 95) and veb["ppv"] == pytest.approx(80 / 95)
    assert veb["fpr"] == pytest.approx(15 / 1031)
    assert (sveb["tp"], sveb["fn"], sveb["fp"]) == (60, 35, 20 + 2 + 1)
    assert sveb["negatives"] == 936 + 95 + 36
    assert sveb["ppv"] == pytest.approx(60 / 83) and sveb["fpr"] == pytest.approx(23 / 1067)


def test_four_class_figures_leave_out_reference_q_but_count_q_predictions_as_errors():
    cm = np.array([[50, 0, 0, 0, 10], [0, 10, 0, 0, 0], [0, 0, 10, 0, 0], [0, 0, 0, 10, 0], [0, 0, 0, 0, 7]])
    m = aami_metrics(*_cm_to_labels(cm))
    four = m["four_class"]
    assert four["n"] == 90 and four["accuracy"] == pytest.approx(80 / 90)
    assert four["f1"]["S"] == four["f1"]["V"] == four["f1"]["F"] == 1.0
    assert four["f1"]["N"] == pytest.approx(2 * 50 / (2 * 50 + 10))
    # kappa by hand: observed 80/90; chance = (60*50 + 10*10 * 3) / 90^2 (the Q column has no row)
    chance = (60 * 50 + 3 * 100) / 90**2
    assert four["kappa"] == pytest.approx((80 / 90 - chance) / (1 - chance))
    assert four["macro_f1"] == pytest.approx((four["f1"]["N"] + 3) / 4)
    # the 5-class figures still see Q (its F1 = 2 * 1 * 7/17 / (1 + 7/17), lower than the others)
    assert m["per_class"]["Q"]["f1"] == pytest.approx(14 / 24)
    assert m["macro_f1"] == pytest.approx(np.mean([m["per_class"][c]["f1"] for c in AAMI_CLASSES]))
