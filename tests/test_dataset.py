import json

import numpy as np
import pytest

import ecgedge.data.dataset as dataset_mod
from ecgedge.data.dataset import META_FILE, prepare_dataset
from ecgedge.data.records import read_record
from ecgedge.data.beats import extract_beats
from ecgedge.preprocess import PreprocessConfig, beats_to_images, get_preset

RECORDS = ("100", "106")


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def test_prepare_builds_once_and_reuses(mitdb_dir, cache, monkeypatch):
    cfg = get_preset("edge")
    ds = prepare_dataset(mitdb_dir, cfg, RECORDS, cache_root=cache, workers=2)
    assert ds.images.shape[1:] == (32, 32) and len(ds) == len(ds.labels) == len(ds.rr)
    assert set(ds.records) == set(RECORDS)
    # Same images as computing them directly. Workers use one BLAS thread and this process may use
    # more; float32 sums in another order may round a pixel to the neighbouring grey level.
    direct = extract_beats(read_record(mitdb_dir, "106"), cfg)
    diff = np.abs(ds.images[ds.records == "106"].astype(int) - beats_to_images(direct.windows, cfg))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    assert np.array_equal(ds.labels[ds.records == "106"], direct.labels)
    meta = json.loads((ds.path / META_FILE).read_text())
    assert PreprocessConfig.from_dict(meta["config"]) == cfg and set(meta["sources"]) >= {"100.dat", "106.atr"}

    def boom(*a, **k):
        raise AssertionError("cache miss")

    monkeypatch.setattr(dataset_mod, "_write_dataset", boom)
    again = prepare_dataset(mitdb_dir, cfg, RECORDS, cache_root=cache)
    assert again.path == ds.path


def test_cache_key_changes_with_parameters_and_sources(mitdb_dir, mitdb_copy, cache):
    from dataclasses import replace

    cfg = get_preset("edge")
    a = prepare_dataset(mitdb_dir, cfg, ("100",), cache_root=cache, workers=1)
    b = prepare_dataset(mitdb_dir, replace(cfg, highpass_hz=0.5), ("100",), cache_root=cache, workers=1)
    assert a.path != b.path
    # Same bytes elsewhere -> same key; an edited annotation file -> a new key.
    copy = mitdb_copy(("100",), with_sums=False)
    assert prepare_dataset(copy, cfg, ("100",), cache_root=cache, workers=1).path == a.path
    with open(copy / "100.atr", "ab") as fh:
        fh.write(b"\0\0")
    assert prepare_dataset(copy, cfg, ("100",), cache_root=cache, workers=1).path != a.path


def test_interrupted_prepare_leaves_no_cache(mitdb_dir, cache, monkeypatch):
    real = dataset_mod._prepare_record

    def fail_on_second(data_dir, name, config, parts_dir):
        if name == RECORDS[1]:
            raise KeyboardInterrupt
        return real(data_dir, name, config, parts_dir)

    monkeypatch.setattr(dataset_mod, "_prepare_record", fail_on_second)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(mitdb_dir, get_preset("edge"), RECORDS, cache_root=cache, workers=1)
    assert list((cache / "prepared").iterdir()) == []
