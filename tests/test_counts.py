"""The data layer's acceptance test: AAMI counts of DS1 and DS2 equal the published ones."""

import json

import pytest

from conftest import run_cli
from ecgedge.data.aami import AAMI_CLASSES, PUBLISHED_COUNTS


@pytest.mark.parametrize("preset", ["edge", "paper"])
def test_summary_json_matches_published_counts(mitdb_dir, preset):
    res = run_cli("data", "summary", "--data-dir", str(mitdb_dir), "--split", "inter-patient", "--preset", preset, "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)  # exactly one JSON object on stdout
    assert res.stdout.strip().count("\n") == 0
    assert summary["split"] == "inter-patient"
    assert set(summary["sets"]) == {"DS1", "DS2"} and set(summary["dropped"]) == {"DS1", "DS2"}
    for ds, published in PUBLISHED_COUNTS.items():
        for cls in AAMI_CLASSES:
            assert summary["sets"][ds][cls] + summary["dropped"][ds][cls] == published[cls], (ds, cls)
    # Beats too close to a record end are counted as dropped, not silently lost.
    assert sum(summary["dropped"]["DS1"].values()) > 0


def test_intra_patient_summary_keeps_every_beat(mitdb_dir):
    res = run_cli("data", "summary", "--data-dir", str(mitdb_dir), "--split", "intra-patient", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert set(summary["sets"]) == {"train", "test"}
    for cls in AAMI_CLASSES:
        total = summary["sets"]["train"][cls] + summary["sets"]["test"][cls] + summary["dropped"]["all"][cls]
        assert total == PUBLISHED_COUNTS["DS1"][cls] + PUBLISHED_COUNTS["DS2"][cls]
    n_test = sum(summary["sets"]["test"].values())
    n_all = n_test + sum(summary["sets"]["train"].values())
    assert abs(n_test / n_all - 0.2) < 0.001
