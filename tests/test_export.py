"""Export to ONNX / TFLite (fp32 and int8), the numpy runtime, metadata, and evaluation of exported files.

A small residual CNN built from torchvision's ResNet ``BasicBlock`` (so the ResNet-18 patterns
that matter for export - shared ReLU modules, in-place residual adds - are all there, but it
converts in seconds) is registered as an architecture for this module only, trained for a few
steps on real beats of three records (DS1: 106, 119; DS2: 100), written as a run directory in the
layout of `ecgedge train`, and exported once to all four files (module fixture). One test runs
the int8 TFLite quantiser's graph preparation on the real ResNet-18.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("litert_torch")

import torch  # noqa: E402

from conftest import run_cli  # noqa: E402
from ecgedge.data.dataset import prepare_dataset  # noqa: E402
from ecgedge.data.splits import make_split  # noqa: E402
from ecgedge.errors import EcgEdgeError  # noqa: E402
from ecgedge.evaluate import aami_metrics  # noqa: E402
from ecgedge.export import FORMATS, export_model, parse_formats  # noqa: E402
from ecgedge.atomic import sha256_file  # noqa: E402
from ecgedge.validate.scoring import predict_model_file, score  # noqa: E402
from ecgedge.preprocess import get_preset  # noqa: E402
from ecgedge.firmware_host.runtime import load_runtime  # noqa: E402
from ecgedge.train.config import train_preset  # noqa: E402
from ecgedge.models.architectures import create_model  # noqa: E402
from tiny_models import registered_tiny_arch, train_briefly, write_run_dir  # noqa: E402

RECORDS = ("100", "106", "119")
TINY = "test_tiny_resnet"


@pytest.fixture(scope="module")
def tiny_arch():
    with registered_tiny_arch(TINY, width=8) as name:
        yield name


def _tiny_run(mitdb_dir, rd, arch: str, rr_features: bool):
    """A run directory with a briefly trained tiny ResNet (edge preset, inter-patient split)."""
    config = train_preset("quick", arch=arch, rr_features=rr_features)
    pre = get_preset(config.data_preset)
    ds = prepare_dataset(mitdb_dir, pre, RECORDS)  # $ECGEDGE_CACHE_DIR: the tests' cache
    split = make_split(config.split, ds.records, ds.labels, config.seed)
    torch.manual_seed(0)
    model = create_model(config.arch, "none", rr_features=rr_features)
    train_briefly(model, ds, split.train, 30, rr_features=rr_features)
    write_run_dir(rd, mitdb_dir, config, ds, split, model)
    return rd


@pytest.fixture(scope="module")
def run_dir(mitdb_dir, tmp_path_factory, tiny_arch):
    return _tiny_run(mitdb_dir, tmp_path_factory.mktemp("runs") / "tiny-run", tiny_arch, rr_features=False)


def test_a_model_with_rhythm_features_exports_and_runs_in_every_format(mitdb_dir, tmp_path, tiny_arch, beats):
    """The rhythm input ([B, N_RHYTHM]) travels through ONNX and TFLite, fp32 and int8, and is used."""
    from ecgedge.preprocess.rhythm import N_RHYTHM

    rd = _tiny_run(mitdb_dir, tmp_path / "tiny-rr", tiny_arch, rr_features=True)
    files = export_model(rd, tmp_path / "out", formats=("onnx", "tflite"), int8=True, calibration_beats=128, check_beats=128, log=None, load_runtime=load_runtime)
    assert len(files) == 4 and all(f.check["passed"] for f in files)
    images, rr, _ = beats
    assert rr.shape[1] == N_RHYTHM
    for f in files:
        rt = load_runtime(f.path)
        assert rt.rr_features
        logits = rt.predict(images[:16], rr[:16])
        assert logits.shape == (16, 5) and np.isfinite(logits).all()
        with pytest.raises(EcgEdgeError, match=str(N_RHYTHM)):
            rt.predict(images[:4], rr[:4, :3])


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    files = export_model(run_dir, out, formats=("onnx", "tflite"), int8=True, calibration_beats=128, check_beats=128, log=None, load_runtime=load_runtime)
    return {(f.format, f.precision): f for f in files}, out


@pytest.fixture(scope="module")
def beats(mitdb_dir):
    """Held-out beats of the run's DS1 validation record and its DS2 record (not used to calibrate)."""
    ds = prepare_dataset(mitdb_dir, get_preset("edge"), RECORDS)
    idx = np.sort(np.random.default_rng(1).choice(len(ds), 300, replace=False))
    return np.asarray(ds.images[idx]), np.asarray(ds.rr[idx], np.float32), ds.labels[idx].astype(np.int64)


def _torch_logits(run_dir, images):
    rt = load_runtime(run_dir)  # the run directory -> torch checkpoint backend
    assert rt.backend == "torch"
    return rt.predict(images)


def test_every_format_and_precision_is_written(exported, run_dir):
    files, out = exported
    assert set(files) == {(f, p) for f in FORMATS for p in ("fp32", "int8")}
    for (fmt, precision), f in files.items():
        assert f.path == out / f"{run_dir.name}-{precision}{FORMATS[fmt].suffix}"
        assert f.path.is_file() and f.size_bytes == f.path.stat().st_size
        assert f.check["passed"] and f.seconds > 0
    for fmt in FORMATS:
        assert files[(fmt, "int8")].size_bytes < files[(fmt, "fp32")].size_bytes
    manifest = json.loads((out / "export.json").read_text())
    assert {m["path"] for m in manifest["files"]} == {str(f.path) for f in files.values()}
    assert manifest["checkpoint_sha256"] == sha256_file(run_dir / "checkpoints" / "best.pt")
    assert set(manifest["calibration"]["records"]) <= {"106", "119"}  # DS1 only, never DS2's 100


def test_resnet18_residual_adds_are_quantised():
    """On the real ResNet-18: every residual add gets observed int8 inputs (else it runs in float)."""
    from ecgedge.models.graph import ExportGraph
    from ecgedge.export.tflite_format import prepare_int8, pt2e_quantizer

    graph = ExportGraph(create_model("resnet18", "none").eval()).eval()
    prepared = prepare_int8(graph, (torch.rand(1, 1, 32, 32),), pt2e_quantizer())
    residual = [
        n
        for n in prepared.graph.nodes
        if n.op == "call_function"
        and n.target in (torch.ops.aten.add.Tensor, torch.ops.aten.add_.Tensor)
        and all(isinstance(a, torch.fx.Node) and a.op != "get_attr" for a in n.args[:2])
    ]
    assert len(residual) == 8  # one per BasicBlock
    for node in residual:
        assert node.target == torch.ops.aten.add.Tensor  # out of place
        for arg in node.args[:2]:
            assert arg.op == "call_module" and "activation_post_process" in str(arg.target), (node, arg)
        (relu,) = node.users
        assert relu.target == torch.ops.aten.relu.default
        (obs,) = relu.users
        assert obs.op == "call_module" and "activation_post_process" in str(obs.target)


def test_tflite_int8_is_full_integer(exported):
    files, _ = exported
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(files[("tflite", "int8")].path))
    details = it.get_tensor_details()
    dtypes = [np.dtype(d["dtype"]) for d in details]
    assert sum(d == np.int8 for d in dtypes) > 20  # activations and weights
    assert not any(d == np.float32 for d in dtypes)  # no float tensor left, not even at the edges
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    assert np.dtype(inp["dtype"]) == np.int8 and np.dtype(out["dtype"]) == np.int8
    scale, zero = inp["quantization"]
    assert abs(scale - 1 / 255) < 1e-9 and zero == -128  # q = u8 - 128, lossless
    meta = load_runtime(files[("tflite", "int8")].path).metadata
    assert meta["inputs"][0]["from_uint8"] == "q = u8 - 128"
    assert meta["outputs"][0]["quantization"]["scale"] == pytest.approx(out["quantization"][0])


def test_outputs_agree_with_torch(exported, run_dir, beats):
    files, _ = exported
    images, rr, _ = beats
    ref = _torch_logits(run_dir, images)
    for (fmt, precision), f in files.items():
        rt = load_runtime(f.path)
        assert rt.format == fmt and rt.precision == precision and rt.input_size == (32, 32)
        logits = rt.predict(images, rr)
        assert logits.shape == (len(images), 5) and logits.dtype == np.float32
        if precision == "fp32":
            assert np.abs(logits - ref).max() < 1e-3, (fmt, np.abs(logits - ref).max())
        else:
            assert np.mean(logits.argmax(1) == ref.argmax(1)) >= 0.95, fmt
            assert np.abs(logits - ref).max() < 0.25 * (np.abs(ref).max() + 1)


def test_metadata_round_trips(exported, run_dir):
    files, _ = exported
    import onnx
    from ai_edge_litert.tools import flatbuffer_utils

    cfg = json.loads((run_dir / "config.json").read_text())
    sha = sha256_file(run_dir / "checkpoints" / "best.pt")
    for (fmt, precision), f in files.items():
        meta = load_runtime(f.path).metadata
        assert meta["classes"] == ["N", "S", "V", "F", "Q"]
        assert meta["preprocess"] == cfg["preprocess"]
        assert meta["source"]["checkpoint_sha256"] == sha and meta["source"]["run_dir"] == str(run_dir.resolve())
        assert meta["format"] == fmt and meta["precision"] == precision
        assert meta["ecgedge_version"]
        assert meta["inputs"][0]["name"] == "image" and meta["inputs"][0]["range"] == [0.0, 1.0]
        assert (meta["calibration"] is not None) == (precision == "int8")
        # read back with the formats' own tools, independently of ecgedge.firmware_host.runtime
        if fmt == "onnx":
            props = {p.key: p.value for p in onnx.load(str(f.path), load_external_data=False).metadata_props}
            assert json.loads(props["ecgedge"]) == meta and props["classes"] == "N,S,V,F,Q"
        else:
            model = flatbuffer_utils.read_model(str(f.path))
            entry = next(m for m in model.metadata if m.name in (b"ecgedge", "ecgedge"))
            assert json.loads(bytes(model.buffers[entry.buffer].data).decode()) == meta
            assert not os.path.exists(f"{f.path}.json")  # embedded, no sidecar


def test_onnx_int8_routes(exported, run_dir, tmp_path):
    import onnx

    files, _ = exported
    default = files[("onnx", "int8")]  # nncf: int8 weights, activations rewritten to uint8
    md = load_runtime(default.path).metadata
    assert default.quantization == "ptq" and "nncf" in md["export"]["route"].split("used:")[1]
    model = onnx.load(str(default.path))
    inits = {t.name: t for t in model.graph.initializer}
    zero_types = {inits[n.input[2]].data_type for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits}
    assert zero_types == {onnx.TensorProto.UINT8}
    assert any(inits[n.input[0]].data_type == onnx.TensorProto.INT8 for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits)

    # onnxruntime's own route quantises the image input itself; its grid is recorded in the metadata
    (ort_file,) = [f for f in export_model(run_dir, tmp_path, formats="onnx", int8=True, calibration_beats=64, check_beats=64, onnx_ptq="onnxruntime", log=None, load_runtime=load_runtime) if f.precision == "int8"]
    assert ort_file.check["passed"] and "quantize_static" in load_runtime(ort_file.path).metadata["export"]["route"].split("used:")[1]
    q = load_runtime(ort_file.path).metadata["inputs"][0]["internal_quantization"]
    assert q["dtype"] == "uint8" and q["zero_point"] == 0 and abs(q["scale"] - 1 / 255) < 1e-6
    with pytest.raises(EcgEdgeError, match="unknown ONNX int8 route"):
        export_model(run_dir, tmp_path / "x", formats="onnx", int8=True, onnx_ptq="tensorrt", log=None, load_runtime=load_runtime)


def test_report_compares_float_and_int8(exported, run_dir, mitdb_dir, tmp_path):
    """`ecgedge evaluate FILE` keeps its metrics beside the file; `ecgedge report --latency` puts every model side by side."""
    import shutil

    from ecgedge.compress.prune import complexity, example_inputs

    files, _ = exported
    run = tmp_path / "run"  # a copy: its metrics.json must not reach the other tests
    shutil.copytree(run_dir, run)
    pred = predict_model_file(files[("onnx", "fp32")].path, "DS2", mitdb_dir)  # DS2 beats of this run
    ds = prepare_dataset(mitdb_dir, get_preset("edge"), RECORDS)
    float_logits = load_runtime(run).predict(np.asarray(ds.images[pred.index]))
    float_metrics = aami_metrics(pred.labels, float_logits.argmax(1))
    (run / "metrics.json").write_text(json.dumps(float_metrics))
    np.savez(run / "predictions_DS2.npz", index=pred.index, labels=pred.labels, preds=float_logits.argmax(1), logits=float_logits)
    paths = [files[(fmt, "int8")].path for fmt in ("onnx", "tflite")]
    same_as_float = {}
    for path in paths:
        res = run_cli("evaluate", str(path), "--split", "DS2", "--data-dir", str(mitdb_dir))
        assert res.returncode == 0, res.stderr
        assert json.loads(Path(f"{path}.metrics.json").read_text())["model"] == str(path)
        file_preds = load_runtime(path).predict(np.asarray(ds.images[pred.index])).argmax(1)
        with np.load(f"{path}.predictions_DS2.npz") as kept:
            assert np.array_equal(kept["index"], pred.index) and np.array_equal(kept["preds"], file_preds)
        same_as_float[path] = float(np.mean(file_preds == float_logits.argmax(1)))
    from ecgedge.report import write_report

    write_report([run, *paths], tmp_path / "rep", latency=True, calls=40)  # in process: the tiny arch is registered here
    summary = json.loads((tmp_path / "rep" / "report.json").read_text())
    rows = summary["models"]
    assert [r["runtime"] for r in rows] == ["torch", "onnxruntime", "litert"]
    assert [r["size_bytes"] for r in rows] == [(run / "checkpoints" / "best.pt").stat().st_size] + [p.stat().st_size for p in paths]
    model = load_runtime(run).model
    cx = complexity(model, example_inputs(model))
    assert all((r["params"], r["macs"]) == (cx["params"], cx["macs"]) for r in rows)
    assert rows[0]["macro_f1"] == float_metrics["macro_f1"] and rows[0]["speedup"] == 1.0
    for r, path in zip(rows[1:], paths):
        m = json.loads(Path(f"{path}.metrics.json").read_text())
        assert r["precision"] == "int8" and r["quantization"] == "ptq" and r["agreement"] == m["agreement"]
        assert r["agreement_with_baseline"] == pytest.approx(same_as_float[path]) and r["agreement_with_baseline"] > 0.9
        assert r["delta_macro_f1"] == pytest.approx(m["macro_f1"] - float_metrics["macro_f1"])
        assert r["latency"]["median_ms"] > 0 and r["latency"]["batch"] == 1 and r["latency"]["threads"] == 1
        assert r["speedup"] == pytest.approx(rows[0]["latency"]["median_ms"] / r["latency"]["median_ms"])
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Size, cost and speed" in md and "![macro-F1 against size and latency](tradeoff.png)" in md
    assert (tmp_path / "rep" / "tradeoff.png").read_bytes().startswith(b"\x89PNG")
    res = run_cli("report", str(run), str(tmp_path / "nowhere.onnx"), "-o", str(tmp_path / "rep2"))
    assert res.returncode == 2 and "nowhere.onnx" in res.stderr


def test_evaluation_equals_aami_metrics_of_raw_predictions(exported, run_dir, mitdb_dir):
    files, _ = exported
    path = files[("tflite", "int8")].path
    metrics, _ = score(path, "DS2", mitdb_dir)
    pred = predict_model_file(path, "DS2", mitdb_dir)
    ds = prepare_dataset(mitdb_dir, get_preset("edge"), RECORDS)
    assert set(ds.records[pred.index]) == {"100"}  # DS2 of these records
    raw = load_runtime(path).predict(np.asarray(ds.images[pred.index]))
    expected = aami_metrics(ds.labels[pred.index].astype(np.int64), raw.argmax(1))
    assert {k: metrics[k] for k in expected} == expected
    assert metrics["format"] == "tflite" and metrics["precision"] == "int8" and metrics["model"] == str(path)
    assert metrics["size_bytes"] == path.stat().st_size
    # no predictions_DS2.npz in the run: the float reference was computed with torch
    ref = _torch_logits(run_dir, np.asarray(ds.images[pred.index]))
    assert metrics["agreement"] == pytest.approx(np.mean(raw.argmax(1) == ref.argmax(1)))
    assert "torch" in metrics["agreement_reference"]["source"]


def test_cli_evaluate_uses_the_runs_predictions(exported, run_dir, mitdb_dir, tmp_path):
    files, _ = exported
    path = files[("onnx", "fp32")].path
    pred = predict_model_file(path, "DS2", mitdb_dir)
    fake = pred.preds.copy()
    fake[:10] = (fake[:10] + 1) % 5  # a float reference that differs on exactly 10 beats
    np.savez_compressed(run_dir / "predictions_DS2.npz", index=pred.index, labels=pred.labels, preds=fake, logits=pred.logits)
    try:
        res = run_cli("evaluate", str(path), "--split", "DS2", "--json", "--data-dir", str(mitdb_dir))
    finally:
        (run_dir / "predictions_DS2.npz").unlink()
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["agreement"] == pytest.approx(1 - 10 / len(fake))
    assert out["agreement_reference"]["source"].endswith("predictions_DS2.npz")
    assert out["format"] == "onnx" and out["n"] == len(fake) and out["size_bytes"] == path.stat().st_size


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_files_raise_a_clear_error(exported, tmp_path, damage):
    files, _ = exported
    for fmt in FORMATS:
        src = files[(fmt, "int8")].path
        bad = tmp_path / f"bad-{damage}{src.suffix}"
        data = src.read_bytes()
        bad.write_bytes({"truncated": data[: len(data) // 2], "garbage": os.urandom(4096), "empty": b""}[damage])
        with pytest.raises(EcgEdgeError, match=str(bad.name)):
            load_runtime(bad).predict(np.zeros((1, 32, 32), np.uint8))


def test_cli_reports_a_damaged_file_in_one_line(exported, tmp_path):
    files, _ = exported
    bad = tmp_path / "cut.tflite"
    data = files[("tflite", "fp32")].path.read_bytes()
    bad.write_bytes(data[:-1000])
    res = run_cli("evaluate", str(bad), "--json")
    assert res.returncode == 2
    assert "cut.tflite" in res.stderr and "Traceback" not in res.stderr


def test_runtime_needs_no_torch(exported):
    """The gateway path: load, predict and read metadata with numpy + onnxruntime / LiteRT only."""
    files, _ = exported
    code = (
        "import sys, numpy as np\n"
        "class NoTorch:  # any torch import now fails (a sys.modules None entry breaks scipy's own torch probe)\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from ecgedge.firmware_host.runtime import load_runtime\n"
        f"for p in {[str(files[k].path) for k in sorted(files)]!r}:\n"
        "    rt = load_runtime(p)\n"
        "    assert rt.predict(np.zeros((3, 32, 32), np.uint8)).shape == (3, 5)\n"
        "    assert rt.metadata['classes'] == ['N', 'S', 'V', 'F', 'Q']\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


def test_predict_checks_its_inputs(exported):
    files, _ = exported
    rt = load_runtime(files[("onnx", "fp32")].path)
    with pytest.raises(EcgEdgeError, match="uint8"):
        rt.predict(np.zeros((2, 32, 32), np.float32))
    with pytest.raises(EcgEdgeError, match="shape"):
        rt.predict(np.zeros((2, 16, 16), np.uint8))
    assert rt.predict(np.zeros((0, 32, 32), np.uint8)).shape == (0, 5)


def test_self_check_rejects_a_bad_export(run_dir, tmp_path):
    with pytest.raises(EcgEdgeError, match="self-check"):
        export_model(run_dir, tmp_path, formats="onnx", fp32_atol=-1.0, calibration_beats=16, check_beats=16, log=None, load_runtime=load_runtime)
    assert (tmp_path / f"{run_dir.name}-fp32.onnx.rejected").is_file()
    assert not (tmp_path / f"{run_dir.name}-fp32.onnx").exists()


def test_cli_export(run_dir, tmp_path):
    from typer.testing import CliRunner

    from ecgedge.cli import app

    res = CliRunner().invoke(app, ["export", str(run_dir), "--format", "onnx", "-o", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    assert f"{run_dir.name}-fp32.onnx" in res.output
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["export.json", f"{run_dir.name}-fp32.onnx", f"{run_dir.name}-fp32.onnx.sha256"]
    res = CliRunner().invoke(app, ["export", str(tmp_path / "nope"), "-o", str(tmp_path / "y")])
    assert res.exit_code == 2 and "nope" in res.output


def test_bad_requests_are_user_errors(run_dir, tmp_path):
    with pytest.raises(EcgEdgeError, match="unknown export format"):
        parse_formats("onnx,coreml")
    with pytest.raises(EcgEdgeError, match="not found|not a run directory"):
        export_model(tmp_path / "missing", tmp_path / "out", load_runtime=load_runtime)
    with pytest.raises(EcgEdgeError, match="unknown model format"):
        (tmp_path / "m.bin").write_bytes(b"x")
        load_runtime(tmp_path / "m.bin")


def test_latency_times_every_runtime_alike(exported, beats):
    from ecgedge.firmware_host.latency import measure_latency

    files, _ = exported
    images = beats[0][:8]
    rts = {f"{fmt}-{p}": load_runtime(files[(fmt, p)].path, num_threads=1) for fmt in ("onnx", "tflite") for p in ("fp32", "int8")}
    timed = measure_latency(rts, images, calls=20, rounds=4, warmup=2)
    assert set(timed) == set(rts)
    for lat in timed.values():
        assert lat.calls == 20 and 0 < lat.median_ms <= lat.p90_ms
        # median_ms is rounded to 1e-4 ms and beats_per_s to 0.1: compare within those roundings
        # (a fixed relative tolerance fails for calls of a few tens of microseconds)
        lo, hi = 1e3 / (lat.median_ms + 5e-5) - 0.05, 1e3 / max(lat.median_ms - 5e-5, 1e-9) + 0.05
        assert lo <= lat.beats_per_s <= hi, (lat.median_ms, lat.beats_per_s)
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        measure_latency(rts, images[0])


def test_exported_files_carry_their_sha256(exported):
    files, out = exported
    manifest = {f["path"]: f for f in json.loads((out / "export.json").read_text())["files"]}
    for f in files.values():
        digest = sha256_file(f.path)
        assert f.sha256 == digest == manifest[str(f.path)]["sha256"]
        assert Path(f"{f.path}.sha256").read_text().split() == [digest, f.path.name]  # sha256sum -c format
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]


def test_evaluate_and_report_refuse_a_model_whose_bytes_changed(exported, mitdb_dir, tmp_path):
    import shutil

    files, _ = exported
    src = files[("onnx", "int8")].path
    copy = tmp_path / src.name
    shutil.copy(src, copy)
    shutil.copy(f"{src}.sha256", f"{copy}.sha256")
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit, size unchanged
    copy.write_bytes(raw)
    for args in (["evaluate", str(copy), "--json", "--data-dir", str(mitdb_dir)], ["report", str(copy), "-o", str(tmp_path / "rep")]):
        res = run_cli(*args)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "does not match the SHA-256" in lines[0] and "ecgedge export" in lines[0], res.stderr
        assert res.stdout == ""
    assert not (tmp_path / "rep").exists() and not Path(f"{copy}.metrics.json").exists()


def test_a_killed_export_leaves_no_file_under_the_final_name(run_dir, tmp_path, monkeypatch):
    import dataclasses

    import ecgedge.export as export_mod

    def killed(ctx, precision, path):
        path.write_bytes(b"the first half of an ONNX fi")
        raise KeyboardInterrupt

    monkeypatch.setitem(export_mod.FORMATS, "onnx", dataclasses.replace(FORMATS["onnx"], exporter=killed))
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        export_model(run_dir, out, formats="onnx", calibration_beats=16, check_beats=16, log=None, load_runtime=load_runtime)
    assert list(out.iterdir()) == []
