"""Training on real beats: it learns, it resumes exactly, it runs under torchrun, and evaluate reports."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import run_cli
from ecgedge.data.dataset import prepare_dataset
from ecgedge.data.aami import DS1, DS2
from ecgedge.data.splits import Split
from ecgedge.preprocess import get_preset
from ecgedge import run_dirs
from ecgedge.train.batches import BeatTensors
from ecgedge.train.config import train_preset
from ecgedge.train.fit import fit
from ecgedge.models.architectures import create_model
from ecgedge.train.predict import predict_logits
from ecgedge.train.sampling import cap_normal_beats, class_weights, patient_stratified_subsample

RECORDS = ("119", "208")  # N, V and F beats side by side


@pytest.fixture(scope="module")
def tiny(mitdb_dir, tmp_path_factory):
    """~600 training beats and held-out beats of the same two records."""
    ds = prepare_dataset(mitdb_dir, get_preset(train_preset("quick").data_preset), RECORDS, cache_root=tmp_path_factory.mktemp("c"))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds))
    held_out = np.sort(order[:800])
    train = cap_normal_beats(ds.records, ds.labels, np.sort(order[800:]), 150, seed=0)
    train = patient_stratified_subsample(ds.records, ds.labels, train, 0.5, seed=0)
    split = Split("tiny", train=train, val=held_out, test=held_out, set_names=("a", "b"), val_records=())
    return ds, split


def _config(**kw):
    base = dict(epochs=2, batch_size=64, lr=2e-3, seed=3, patience=5, eval_batch_size=256)
    return train_preset("quick", **{**base, **kw})


def test_tiny_training_beats_chance(tiny, tmp_path):
    ds, split = tiny
    torch.set_num_threads(2)
    result = fit(_config(), ds, split, split.train, tmp_path / "run")
    assert [row["epoch"] for row in result.history] == [1, 2]
    model = create_model("resnet18", "none", rr_features=True)
    model.load_state_dict(torch.load(tmp_path / "run" / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False)["model"])
    preds = predict_logits(model, BeatTensors(ds), split.val, 256, torch.device("cpu")).argmax(1)
    y = ds.labels[split.val]
    present = np.unique(y[np.isin(y, [0, 2, 3])])  # N, V, F (S: 2 beats in these records)
    balanced_accuracy = np.mean([(preds[y == c] == c).mean() for c in present])
    assert balanced_accuracy > 1 / len(present) + 0.25, balanced_accuracy


@pytest.mark.parametrize("ema_half_life", [0.0, 0.5])
def test_resume_continues_exactly(tiny, tmp_path, monkeypatch, ema_half_life):
    ds, split = tiny
    cfg = _config(epochs=2, ema_half_life=ema_half_life)
    full = fit(cfg, ds, split, split.train, tmp_path / "full")

    import ecgedge.train.fit as fit_mod

    real = fit_mod.evaluate_val
    calls = {"n": 0}

    def crash_in_second_validation(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(fit_mod, "evaluate_val", crash_in_second_validation)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, ds, split, split.train, tmp_path / "resumed")
    monkeypatch.setattr(fit_mod, "evaluate_val", real)
    resumed = fit(cfg, ds, split, split.train, tmp_path / "resumed", resume=True)

    assert [r["epoch"] for r in resumed.history] == [1, 2]
    assert resumed.history[0]["train_loss"] == full.history[0]["train_loss"]
    assert resumed.history[1]["train_loss"] == pytest.approx(full.history[1]["train_loss"], rel=1e-5)
    a = torch.load(tmp_path / "full" / run_dirs.CHECKPOINTS / run_dirs.LAST, weights_only=False)["model"]
    b = torch.load(tmp_path / "resumed" / run_dirs.CHECKPOINTS / run_dirs.LAST, weights_only=False)["model"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k
    best_full = torch.load(tmp_path / "full" / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False)["model"]
    best_resumed = torch.load(tmp_path / "resumed" / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False)["model"]
    for k in best_full:  # the weight average (when on) is carried across the interruption too
        assert torch.allclose(best_full[k].float(), best_resumed[k].float(), atol=1e-5), k


def test_weight_average_is_what_is_validated_and_kept(tiny, tmp_path):
    ds, split = tiny
    torch.set_num_threads(2)
    result = fit(_config(epochs=1, ema_half_life=0.25), ds, split, split.train, tmp_path / "run")
    best = torch.load(tmp_path / "run" / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False)
    last = torch.load(tmp_path / "run" / run_dirs.CHECKPOINTS / run_dirs.LAST, weights_only=False)
    averaged = {k.removeprefix("module."): v for k, v in last["weight_average"].items() if k.startswith("module.")}
    assert averaged.keys() == best["model"].keys()
    assert all(torch.equal(averaged[k], best["model"][k]) for k in averaged)
    assert not torch.equal(best["model"]["head.fc.weight"], last["model"]["head.fc.weight"])  # not the raw weights
    model = create_model("resnet18", "none", rr_features=True)
    model.load_state_dict(best["model"])
    from ecgedge.evaluate import aami_metrics

    preds = predict_logits(model, BeatTensors(ds), split.val, 256, torch.device("cpu")).argmax(1)
    assert aami_metrics(ds.labels[split.val], preds)["macro_f1"] == pytest.approx(result.history[0]["val_macro_f1"])


def test_same_seed_same_machine_same_history(tiny, tmp_path):
    """Reproducible: N drawn per epoch, augmentation on, two runs give the same history and weights."""
    ds, split = tiny
    torch.set_num_threads(2)
    cfg = _config(epochs=2, normal_per_epoch=100, augment="all")
    a = fit(cfg, ds, split, split.train, tmp_path / "a")
    b = fit(cfg, ds, split, split.train, tmp_path / "b")
    strip = lambda h: [{k: v for k, v in row.items() if k not in ("seconds", "train_beats_per_s")} for row in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    wa = torch.load(tmp_path / "a" / run_dirs.CHECKPOINTS / run_dirs.LAST, weights_only=False)["model"]
    wb = torch.load(tmp_path / "b" / run_dirs.CHECKPOINTS / run_dirs.LAST, weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # another seed draws other beats and augmentations: the history differs
    c = fit(_config(epochs=1, normal_per_epoch=100, augment="all", seed=4), ds, split, split.train, tmp_path / "c")
    assert c.history[0]["train_loss"] != a.history[0]["train_loss"]


def test_epoch_draws_every_rare_beat_and_fresh_normal_beats(tiny):
    from ecgedge.train.sampling import epoch_beats, epoch_size

    ds, split = tiny
    idx = split.train
    rare = idx[ds.labels[idx] != 0]
    e1 = epoch_beats(ds.labels, idx, 50, np.random.default_rng([0, 1]))
    e2 = epoch_beats(ds.labels, idx, 50, np.random.default_rng([0, 2]))
    for e in (e1, e2):
        assert np.isin(rare, e).all() and np.sum(ds.labels[e] == 0) == 50 and len(e) == epoch_size(ds.labels, idx, 50)
    assert set(e1[ds.labels[e1] == 0]) != set(e2[ds.labels[e2] == 0])
    assert np.array_equal(epoch_beats(ds.labels, idx, None, np.random.default_rng(0)), idx)


def test_class_weights_and_subsampling(tiny):
    ds, split = tiny
    w = class_weights(ds.labels, 5, "inverse")
    counts = np.bincount(ds.labels, minlength=5)
    assert w[counts.argmax()] == w[counts > 0].min() and np.isclose(w[counts > 0].mean(), 1)
    assert (class_weights(ds.labels, 5, "none")[counts > 0] == 1).all()
    # A 10 % subsample keeps every (record, class) group.
    sub = patient_stratified_subsample(ds.records, ds.labels, np.arange(len(ds)), 0.1, seed=1)
    groups = {(r, l) for r, l in zip(ds.records, ds.labels)}
    assert {(r, l) for r, l in zip(ds.records[sub], ds.labels[sub])} == groups
    assert 0.09 < len(sub) / len(ds) < 0.12


def test_train_and_evaluate_cli(mitdb_dir, tmp_path):
    run = tmp_path / "run"
    res = run_cli("train", "--preset", "quick", "--train-fraction", "0.01", "--epochs", "1", "--data-dir", str(mitdb_dir), "-o", str(run))
    assert res.returncode == 0, res.stderr[-2000:]
    config = json.loads((run / "config.json").read_text())
    assert config["split"]["set_names"] == ["DS1", "DS2"]
    assert set(config["split"]["val_records"]) <= set(DS1) and not set(config["split"]["val_records"]) & set(DS2)
    for name in ("config.json", "versions.json", "history.json", "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (run / name).is_file(), name
    assert json.loads((run / "versions.json").read_text())["torch"] in torch.__version__

    res = run_cli("evaluate", str(run), "--split", "DS2", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads(res.stdout)
    assert metrics["n"] == 49673  # every DS2 beat whose window fits (edge preset)
    assert set(metrics["per_class"]) == {"N", "S", "V", "F", "Q"}
    for m in metrics["per_class"].values():
        assert set(m) == {"se", "ppv", "fpr", "f1", "support"}
    assert {"accuracy", "macro_f1", "j_index", "kappa", "jk", "confusion", "four_class", "ec57"} <= set(metrics)
    assert set(metrics["ec57"]) >= {"veb", "sveb"} and metrics["four_class"]["n"] == 49673 - 7
    assert np.array(metrics["confusion"]["matrix"]).sum() == metrics["n"]
    assert (run / "metrics.json").is_file()

    again = run_cli("train", "--preset", "quick", "--data-dir", str(mitdb_dir), "-o", str(run))
    assert again.returncode == 2 and "already holds a run" in again.stderr

    report = run_cli("report", str(run), "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    assert md.startswith("# run on DS2\n") and "![confusion matrix of float](run1-confusion.png)" in md
    assert not (tmp_path / "report" / "report.html").exists()  # Markdown + PNGs unless --html


def _free_port() -> int:
    """A port nothing listens on now (a fixed one fails when another test run or service holds it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_cpu_processes(mitdb_dir, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()), "-m", "ecgedge",
           "train", "--preset", "quick", "--train-fraction", "0.01", "--epochs", "1", "--device", "cpu",
           "--data-dir", str(mitdb_dir), "-o", str(run)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 1 and history[0]["train_loss"] > 0


def test_weight_decay_option_reaches_the_config_and_bad_values_are_refused():
    from ecgedge.cli.train import _config
    from ecgedge.errors import EcgEdgeError

    config = _config("quick", None, None, None, None, None, None, None, None, None, None, None, weight_decay=0.05)
    assert config.weight_decay == 0.05 and train_preset("quick").weight_decay == 1e-4
    for bad in (-0.1, 10.0):
        with pytest.raises(EcgEdgeError, match=r"--weight-decay must be in \[0, 10\)"):
            train_preset("quick", weight_decay=bad)
