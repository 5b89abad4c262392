import numpy as np
import pytest

from ecgedge.data.aami import AAMI_CLASSES, DS1, DS2, PACED_RECORDS
from ecgedge.data.splits import make_split
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
