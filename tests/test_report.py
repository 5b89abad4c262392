"""Markdown (and optional HTML) reports built from fake run directories and scored files."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from ecgedge.data.aami import AAMI_CLASSES  # noqa: E402
from ecgedge.errors import EcgEdgeError  # noqa: E402
from ecgedge.evaluate import aami_metrics  # noqa: E402
from ecgedge.report import write_report  # noqa: E402

Y_TRUE = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 4])


def make_run(root: Path, dirname: str, y_pred, config: dict | None, history: list | None = None, **extras) -> Path:
    run = root / dirname
    run.mkdir()
    metrics = aami_metrics(Y_TRUE, np.array(y_pred)) | extras
    (run / "metrics.json").write_text(json.dumps(metrics))
    if config is not None:
        (run / "config.json").write_text(json.dumps(config))
    if history is not None:
        (run / "history.json").write_text(json.dumps(history))
    return run


@pytest.fixture
def runs(tmp_path):
    history = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_macro_f1": 0.3 * e, "lr": 1e-3}
        for e in (1, 2, 3)
    ]
    base = make_run(tmp_path, "r1", [0, 0, 0, 0, 1, 1, 0, 2, 1, 3, 0], {"name": "baseline <cnn>", "lr": 1e-3}, history)
    better = make_run(tmp_path, "r2", [0, 0, 0, 0, 0, 1, 1, 2, 1, 3, 4], None, split="inter", size_bytes=12345)
    return base, better


def test_two_runs(runs, tmp_path):
    base, better = runs
    m1 = json.loads((base / "metrics.json").read_text())
    m2 = json.loads((better / "metrics.json").read_text())
    md_path = write_report([base, better], tmp_path / "out", html=True)
    html_path = tmp_path / "out" / "report.html"
    assert md_path == tmp_path / "out" / "report.md" and html_path.is_file()
    html, md = html_path.read_text(), md_path.read_text()

    assert "baseline &lt;cnn&gt;" in html and "baseline <cnn>" not in html  # label from config, escaped
    assert "r2" in html  # no config.json: the directory name is the label
    for c in AAMI_CLASSES:
        assert f"<td>{c}</td>" in html
    # two confusion matrices + one set of curves + the size plot (only r2 records a model size)
    assert html.count("data:image/png;base64,") == 4
    assert 'src="http' not in html and "<link" not in html

    # the deltas are of the 4-class (N, S, V, F) figures, which lead; the 5-class ones stay, labelled
    d_f1 = m2["four_class"]["macro_f1"] - m1["four_class"]["macro_f1"]
    d_jk = m2["four_class"]["jk"] - m1["four_class"]["jk"]
    assert d_f1 > 0 and d_jk > 0
    for text in (html, md):
        assert f"{d_f1:+.4f}" in text and f"{d_jk:+.4f}" in text
        assert "macro-F1, 5 classes" in text and "SVEB Se" in text
    assert md.index("macro-F1 (N,S,V,F)") < md.index("macro-F1, 5 classes")
    assert html.index("Comparison") < html.index("Confusion matrix")

    # Extras table shows the unknown top-level keys of the second run.
    assert "<td>size_bytes</td><td>12345</td>" in html and "<td>split</td><td>inter</td>" in html
    assert "<details><summary>config.json</summary>" in html

    header = "| metric | baseline &lt;cnn&gt; | r2 |"
    assert header in md
    assert "| Δ macro-F1 (N,S,V,F) | — |" in md
    assert "![confusion matrix of r2](run2-confusion.png)" in md
    for name in ("run1-confusion.png", "run1-curves.png", "run2-confusion.png"):
        assert (tmp_path / "out" / name).read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "out" / "run2-curves.png").exists()

    # No model files behind these metrics: costs are unknown, not invented; timing them is an error.
    summary = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [r["label"] for r in summary["models"]] == ["baseline <cnn>", "r2"]
    assert summary["models"][0]["size_bytes"] is None and summary["models"][1]["size_bytes"] == 12345
    assert summary["models"][1]["params"] is None and summary["models"][1]["latency"] is None
    assert summary["models"][1]["agreement_with_baseline"] is None  # no predictions files: no agreement claimed
    with pytest.raises(EcgEdgeError, match="model file was not found"):
        write_report([base, better], tmp_path / "timed", latency=True)


def test_same_as_baseline_from_the_predictions(runs, tmp_path):
    base, better = runs
    p1, p2 = np.array([0, 0, 0, 0, 1, 1, 0, 2, 1, 3, 0]), np.array([0, 0, 0, 0, 0, 1, 1, 2, 1, 3, 4])
    for run, p in ((base, p1), (better, p2)):
        np.savez(run / "predictions_DS2.npz", index=np.arange(11), labels=Y_TRUE, preds=p, logits=np.eye(5)[p])
    write_report([base, better], tmp_path / "out")
    rows = json.loads((tmp_path / "out" / "report.json").read_text())["models"]
    assert [r["agreement_with_baseline"] for r in rows] == [1.0, pytest.approx(np.mean(p1 == p2))]
    assert f"{np.mean(p1 == p2):.2%}" in (tmp_path / "out" / "report.md").read_text()
    # other beats (or no predictions) on one side: no agreement claimed
    np.savez(better / "predictions_DS2.npz", index=np.arange(1, 12), labels=Y_TRUE, preds=p2, logits=np.eye(5)[p2])
    write_report([base, better], tmp_path / "out2")
    assert json.loads((tmp_path / "out2" / "report.json").read_text())["models"][1]["agreement_with_baseline"] is None


def test_single_run_has_no_comparison(runs, tmp_path):
    md_path = write_report([runs[1]], tmp_path / "one")
    md = md_path.read_text()
    assert "Comparison" not in md and "| class | Se | PPV | FPR | F1 | support |" in md
    # Markdown + PNGs unless asked for the HTML page
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["report.md", "run1-confusion.png"]


def _trained(name: str, **compress) -> dict:
    return {"name": name, "train": {"name": "quick", "arch": "resnet18"}, **({"compress": compress} if compress else {})}


def _scored_file(root: Path, name: str, y_pred, **facts) -> Path:
    """An exported file (stand-in bytes, no sidecar: a warning) with the scores `ecgedge evaluate FILE` keeps."""
    path = root / name
    path.write_bytes(b"not a real model")
    metrics = aami_metrics(Y_TRUE, np.array(y_pred)) | {"set": "DS2", "complexity": {"params": 10, "macs": 20}} | facts
    Path(f"{path}.metrics.json").write_text(json.dumps(metrics))
    return path


def test_models_are_labelled_by_what_they_are(tmp_path):
    """Labels come from the models' own records (compression, format, precision), not their long names."""
    from ecgedge.report.labels import report_labels

    y = [0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 4]
    long = "quick-resnet18-inter-patient"
    float_run = make_run(tmp_path, long, y, _trained(long), set="DS2")
    small_run = make_run(tmp_path, f"{long}-prune50-qat", y, _trained(f"{long}-prune50-qat", prune=0.5, qat=True), set="DS2")
    ptq = _scored_file(tmp_path, f"{long}-int8.onnx", y, format="onnx", precision="int8", quantization="ptq", compression=None)
    qat = _scored_file(tmp_path, f"{long}-prune50-qat-int8.tflite", y, format="tflite", precision="int8", quantization="qat", compression={"prune": 0.5, "qat": True})
    old = _scored_file(tmp_path, "older-int8.onnx", y, format="onnx", precision="int8", quantization="qat")  # scored before files recorded compression
    md = write_report([float_run, ptq, small_run, qat, old], tmp_path / "out").read_text()

    labels = ["float", "int8 PTQ (ONNX)", "pruned 50% + QAT", "pruned 50% + QAT int8 (TFLite)", "QAT int8 (ONNX)"]
    assert md.splitlines()[0] == f"# {long}: 5 models on DS2"
    assert "| metric | " + " | ".join(labels) + " |" in md
    assert [r["label"] for r in json.loads((tmp_path / "out" / "report.json").read_text())["models"]] == labels
    assert f"Model file: {qat}" in md and f"Run directory: {float_run}" in md  # the full names stay, once each

    # two runs that are both "float" (a leakage study): each is named by its run
    intra = make_run(tmp_path, "quick-intra", y, _trained("quick-intra"))
    entries = [(float_run, _trained(long), {}), (intra, _trained("quick-intra"), {}), (ptq, None, json.loads(Path(f"{ptq}.metrics.json").read_text()))]
    assert report_labels(entries) == [f"{long}: float", "quick-intra: float", "int8 PTQ (ONNX)"]
    assert report_labels([entries[0], entries[0]]) == [f"{long}: float [1]", f"{long}: float [2]"]


def test_missing_metrics(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EcgEdgeError, match=r"metrics\.json.*ecgedge evaluate"):
        write_report([tmp_path / "empty"], tmp_path / "out")


def test_bad_metrics_and_no_runs(tmp_path):
    run = tmp_path / "bad"
    run.mkdir()
    (run / "metrics.json").write_text('{"accuracy": 1.0}')
    with pytest.raises(EcgEdgeError, match="lacks"):
        write_report([run], tmp_path / "out")
    with pytest.raises(EcgEdgeError, match="no run directories"):
        write_report([], tmp_path / "out")
