import numpy as np
import pytest

from ecgedge.data.aami import AAMI_CLASSES, DS1, DS2, PACED_RECORDS
from ecgedge.data.splits import VALIDATION_FOLDS, make_split
from ecgedge.data.summary import default_records, index_beats
from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess import get_preset


@pytest.fixture(scope="module")
def index(mitdb_dir):
    return index_beats(mitdb_dir, get_preset("edge"))


def test_default_records_exclude_paced_and_cover_both_sets():
    recs = set(default_records())
    assert recs == set(DS1) | set(DS2)
    assert not recs & PACED_RECORDS
    assert not set(DS1) & set(DS2)


def test_inter_patient_is_patient_disjoint(index):
    sp = make_split("inter-patient", index.records, index.labels)
    train, val, test = (set(index.records[i]) for i in (sp.train, sp.val, sp.test))
    assert test == set(DS2)
    assert not (train | val) & set(DS2), "a DS2 patient leaked into training or validation"
    assert not train & val, "validation must hold whole patients"
    assert val == set(sp.val_records) and val <= set(DS1)
    assert len(sp.train) + len(sp.val) + len(sp.test) == len(index.labels)


def test_patient_validation_holds_every_arrhythmia_class(index):
    sp = make_split("inter-patient", index.records, index.labels)
    val_counts = np.bincount(index.labels[sp.val], minlength=5)
    ds1_counts = np.bincount(index.labels[np.concatenate([sp.train, sp.val])], minlength=5)
    for cls in ("N", "S", "V", "F"):
        i = AAMI_CLASSES.index(cls)
        assert val_counts[i] > 0, cls
        assert 0.05 < val_counts[i] / ds1_counts[i] < 0.5, cls
    # Deterministic: model selection must not depend on a lucky seed.
    assert make_split("inter-patient", index.records, index.labels, seed=7).val_records == sp.val_records


def test_intra_patient_is_seeded_and_leaky(index):
    a = make_split("intra-patient", index.records, index.labels, seed=1)
    b = make_split("intra-patient", index.records, index.labels, seed=1)
    c = make_split("intra-patient", index.records, index.labels, seed=2)
    assert np.array_equal(a.test, b.test) and not np.array_equal(a.test, c.test)
    assert not set(a.train) & set(a.test) and not set(a.val) & set(a.test)
    # The point of this protocol: the same patients are on both sides.
    assert set(index.records[a.train]) == set(index.records[a.test])


def test_unknown_split_is_a_user_error(index):
    with pytest.raises(EcgEdgeError, match="unknown split"):
        make_split("random", index.records, index.labels)


def test_validation_folds_partition_ds1_into_whole_patients(index):
    default = make_split("inter-patient", index.records, index.labels)
    folds = [make_split("inter-patient", index.records, index.labels, val_fold=k) for k in range(VALIDATION_FOLDS)]
    assert folds[0].val_records == default.val_records, "fold 0 must be every earlier run's validation set"
    seen = [set(f.val_records) for f in folds]
    assert set().union(*seen) == set(DS1) and sum(map(len, seen)) == len(DS1), "folds must be disjoint and cover DS1"
    for f in folds:
        assert not set(index.records[f.train]) & set(f.val_records)
        assert set(index.records[f.train]) | set(f.val_records) == set(DS1)
        assert np.array_equal(f.test, default.test), "the fold changes validation only, never DS2"
        assert np.bincount(index.labels[f.val], minlength=5)[AAMI_CLASSES.index("S")] > 0
        assert f.to_dict()["val_fold"] == f.val_fold


def test_validation_fold_out_of_range_is_refused(index):
    with pytest.raises(EcgEdgeError, match="--val-fold must be in 0..4"):
        make_split("inter-patient", index.records, index.labels, val_fold=VALIDATION_FOLDS)
    with pytest.raises(EcgEdgeError, match="inter-patient split only"):
        make_split("intra-patient", index.records, index.labels, val_fold=1)


def test_a_training_config_names_its_validation_fold():
    from ecgedge.train.config import train_preset

    assert train_preset("quick", val_fold=3).val_fold == 3 and train_preset("quick").val_fold == 0
    with pytest.raises(EcgEdgeError, match="--val-fold must be in 0..4"):
        train_preset("quick", val_fold=5)
    with pytest.raises(EcgEdgeError, match="needs the inter-patient split"):
        train_preset("quick", split="intra-patient", val_fold=2)
