"""The end-to-end job as an API with a typed config: files round-trip, bad files are one-line errors,
and ``ecgedge pipeline --config`` runs the whole job on three records with a tiny network."""

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import run_cli
from ecgedge.errors import EcgEdgeError
from ecgedge.pipeline import BundleOptions, CompressOptions, ExportOptions, PipelineConfig, ReportOptions
from ecgedge.train.config import TRAIN_PRESETS

RECORDS = ("100", "106", "119")  # DS1: 106, 119 (one trains, one validates); DS2: 100


def test_a_config_round_trips_through_json(tmp_path):
    config = PipelineConfig(
        train=replace(TRAIN_PRESETS["edge"], epochs=3, lr=2e-3, normal_per_epoch=None, augment="jitter,noise"),
        records=RECORDS,
        compress=CompressOptions(prune=None, qat=True, epochs=2),
        export=None,
        bundle=BundleOptions(profile=None, targets=("host", "qemu-aarch64:cortex-a72"), subset=None, golden=50),
        report=ReportOptions(latency=False, threads=2, html=True),
    )
    path = config.save(tmp_path / "job.json")
    assert PipelineConfig.load(path) == config
    saved = json.loads(path.read_text())
    assert saved["train"]["preset"] == "edge" and saved["train"]["normal_per_epoch"] is None  # None kept: not the preset's 8000
    assert saved["export"] is None and saved["records"] == list(RECORDS)
    assert saved["bundle"] == {"key": None, "profile": None, "targets": ["host", "qemu-aarch64:cortex-a72"], "subset": None, "golden": 50}
    assert PipelineConfig.load(PipelineConfig().save(tmp_path / "default.json")) == PipelineConfig()
    with pytest.raises(EcgEdgeError, match=r"saved as JSON"):
        config.save(tmp_path / "job.toml")


def test_a_toml_file_names_only_what_differs(tmp_path):
    path = tmp_path / "job.toml"
    path.write_text('records = ["100", "106", "119"]\n[train]\npreset = "quick"\nepochs = 1\nlr = 1\n[compress]\nprune = 0.25\n[report]\nlatency = false\n')
    config = PipelineConfig.load(path)
    assert config.train == replace(TRAIN_PRESETS["quick"], epochs=1, lr=1.0)
    assert config.records == RECORDS and config.compress == CompressOptions(prune=0.25) and config.export == ExportOptions()
    assert config.report == ReportOptions(latency=False)
    assert config.dirs(tmp_path).compressed == tmp_path / "quick-resnet18-inter-patient-prune25-qat"
    off = tmp_path / "off.toml"
    off.write_text("compress = false\nexport = false\n")
    assert PipelineConfig.load(off).compress is None and PipelineConfig.load(off).export is None


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bad.json", '{"train": {"epochs": 1,}}', r"is not valid JSON"),
        ("bad.toml", "[train\nepochs = 1\n", r"is not valid TOML"),
        ("unknown.json", '{"train": {"epoch": 1}}', r"train: unknown setting 'epoch'; known: preset, data_preset"),
        ("type.json", '{"train": {"epochs": "3"}}', r"train\.epochs is '3'; it must be int"),
        ("preset.json", '{"train": {"preset": "huge"}}', r"unknown training preset 'huge'"),
        ("records.json", '{"records": ["100", "100"]}', r"more than once"),
        ("prune.toml", "[compress]\nprune = 1.5\n", r"compress\.prune must be in \(0, 1\)"),
        ("draw.toml", '[compress]\nprune_normal_per_epoch = "most"\n', r"compress\.prune_normal_per_epoch must be a positive whole number or 'all'"),
        ("formats.json", '{"export": {"formats": ["onnx", "coreml"]}}', r"unknown export format 'coreml'"),
        ("profile.toml", '[bundle]\nprofile = "pi9"\n', r"unknown device profile 'pi9'"),
        ("targets.toml", '[bundle]\ntargets = ["host", "qemu-aarch64:z80"]\n', r"unknown CPU|cortex-a53"),
        ("key.toml", '[bundle]\nkey = "/nonexistent/k.key"\n', r"bundle\.key /nonexistent/k\.key: no such file"),
        ("top.json", "[1, 2]", r"must be a table of settings"),
        ("job.yaml", "train: {}", r"give a \.json or \.toml file"),
    ],
)
def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    res = run_cli("pipeline", "--config", str(path), "-o", str(tmp_path / "out"))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], res.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()  # nothing written


def test_config_and_options_combine_as_documented(tmp_path):
    from ecgedge.cli.train import _pipeline_config

    path = PipelineConfig(records=RECORDS, compress=None).save(tmp_path / "job.json")
    none = dict(preset=None, split=None, arch=None, weights=None, rr=None, epochs=None, seed=None, augment=None, records=None, compress=None, prune=None, compress_epochs=None, export=None, bundle=None, html=None)
    assert _pipeline_config(path, **none) == PipelineConfig.load(path)
    # options given on the command line override the file
    both = _pipeline_config(path, **{**none, "seed": 7, "records": "101,106", "compress": True, "prune": 0.6, "html": True})
    assert both.train.seed == 7 and both.records == ("101", "106") and both.compress == CompressOptions(prune=0.6) and both.report.html
    # ... except the preset, which the file's train settings are relative to
    res = run_cli("pipeline", "--config", str(path), "--preset", "edge", "-o", str(tmp_path / "out"))
    assert res.returncode == 2 and "--preset and --config" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = run_cli("pipeline", "--config", str(tmp_path / "missing.toml"), "-o", str(tmp_path / "out"))
    assert res.returncode == 2 and "no such file" in res.stderr


TINY = "test_pipeline_tiny_resnet"


@pytest.mark.slow
def test_pipeline_with_a_config_file_runs_end_to_end(mitdb_dir, tmp_path):
    """Train -> evaluate -> export int8 -> compress (prune) -> export -> report, on three records, a tiny network."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch_pruning")
    from typer.testing import CliRunner

    from ecgedge.cli import app
    from tiny_models import registered_tiny_arch

    path = _write(
        tmp_path,
        "tiny.toml",
        f'records = {list(RECORDS)!r}\n\n[train]\npreset = "quick"\narch = "{TINY}"\nepochs = 3\nbatch_size = 32\nlr = 3e-3\n'
        'normal_per_epoch = 300\naugment = "none"\neval_batch_size = 256\n\n[compress]\nprune = 0.5\nqat = false\nepochs = 1\nprune_normal_per_epoch = "all"\n\n'
        '[export]\nformats = ["onnx"]\n\n[bundle]\ntargets = ["host"]\nsubset = 60\ngolden = 40\n',  # QAT (a minute of torchao graph work) and TFLite are test_compress's and test_export's
    )
    out = tmp_path / "job"
    with registered_tiny_arch(TINY, width=16):  # in process: the CLI sees the registered architecture
        res = CliRunner().invoke(app, ["pipeline", "--config", str(path), "--seed", "3", "--data-dir", str(mitdb_dir), "-o", str(out)])
    assert res.exit_code == 0, res.output

    run = out / f"quick-{TINY}-inter-patient"
    small = out / f"{run.name}-prune50"
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["seed"] == 3 and config["train"]["epochs"] == 3  # the file's settings, the option on top
    assert sorted(config["dataset"]["sources"]) == sorted(f"{r}.{s}" for r in RECORDS for s in ("atr", "dat", "hea"))
    for d in (run, small):
        for name in ("config.json", "versions.json", "history.json", "checkpoints/best.pt", "metrics.json", "metrics_DS2.json", "predictions_DS2.npz"):
            assert (d / name).is_file(), (d, name)
        exported = out / "exports" / d.name / f"{d.name}-int8.onnx"
        assert exported.is_file() and Path(f"{exported}.metrics.json").is_file()
        assert not list((out / "exports" / d.name).glob("*.tflite"))  # only the formats asked for
    compressed = json.loads((small / "config.json").read_text())["compress"]
    assert compressed["prune"] == 0.5 and not (small / "checkpoints" / "qat_int8.pt2").exists()
    # the pruning step saw every training beat each epoch (as the config asks), the run's own draw stays 300
    assert compressed["steps"][0]["normal_per_epoch"] is None and compressed["normal_per_epoch"] == 300

    rows = json.loads((out / "report" / "report.json").read_text())["models"]
    labels = ["float", "int8 PTQ (ONNX)", "pruned 50%", "pruned 50% + int8 PTQ (ONNX)"]
    assert [r["label"] for r in rows] == labels
    assert all(r["latency"]["median_ms"] > 0 for r in rows)
    md = (out / "report" / "report.md").read_text()
    assert md.splitlines()[0] == f"# {run.name}: 4 models on DS2"
    assert not (out / "report" / "report.html").exists()
    for label in labels:
        assert f"\n{label}: macro-F1 (N,S,V,F) " in res.output
    assert f"report: {out / 'report' / 'report.md'}" in res.output and ": validated on host: passed" in res.output
    # the last step: the compressed run's int8 file, signed with the job's own key, validated on the host
    validation = json.loads((out / "validation" / "validation.json").read_text())
    assert validation["passed"] and validation["skipped_targets"] == []
    (v,) = validation["validations"]
    assert v["model"] == f"model.bundle:models/{small.name}-int8.onnx" and v["beats"] == 60 and v["profile"]["name"] == "pi-zero-2w"
    assert (out / "bundle" / "model.bundle").is_file() and (out / "keys" / "job.key").is_file()
    assert "## On the gateway: signed bundle, validated on targets" in md and "declared for Raspberry Pi Zero 2 W" in md
