"""Compression: structured pruning really shrinks the model, QAT simulates int8, the stage writes a run."""

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import run_cli
from tiny_models import registered_tiny_arch
from ecgedge.compress import compress_run
from ecgedge.models.checkpoint import load_checkpoint_model, model_from_checkpoint
from ecgedge.compress.prune import complexity, example_inputs, prune_model
from ecgedge.models.checkpoint import channel_spec, model_from_spec
from ecgedge.data.dataset import prepare_dataset
from ecgedge.data.splits import make_split
from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess.rhythm import N_RHYTHM
from ecgedge.preprocess import get_preset
from ecgedge import run_dirs
from ecgedge.train.batches import BeatTensors
from ecgedge.train.config import train_preset
from ecgedge.train.fit import fit
from ecgedge.models.architectures import create_model
from ecgedge.train.predict import predict_logits
from ecgedge.train.stage import training_beats

RECORDS = ("119", "208")  # N, V and F beats side by side

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is fastest, and far faster than two on a busy machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _balanced_accuracy(preds: np.ndarray, y: np.ndarray) -> float:
    present = np.unique(y[np.isin(y, [0, 2, 3])])  # N, V, F (S: 2 beats in these records)
    return float(np.mean([(preds[y == c] == c).mean() for c in present]))


TINY = "test_compress_tiny_resnet"


@pytest.fixture(scope="module")
def tiny_arch():
    with registered_tiny_arch(TINY, width=16) as name:
        yield name


@pytest.fixture(scope="module")
def tiny_run(mitdb_dir, tmp_path_factory, tiny_arch):
    """A trained tiny-ResNet run directory on two records (intra-patient split, ~740 training beats)."""
    ds = prepare_dataset(mitdb_dir, get_preset("edge"), RECORDS, cache_root=tmp_path_factory.mktemp("c"))
    config = train_preset("quick", arch=tiny_arch, split="intra-patient", max_n_per_record=150, train_fraction=0.5, epochs=4, batch_size=32, lr=3e-3, seed=3, eval_batch_size=256)
    split = make_split(config.split, ds.records, ds.labels, config.seed)
    train_idx = training_beats(config, ds, split)
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    run_dir.mkdir()
    meta = {
        "name": "tiny",
        "train": config.to_dict(),
        "preprocess": ds.config.to_dict(),
        "data_dir": str(mitdb_dir),
        "dataset": {"path": str(ds.path), "n_beats": len(ds), "sources": ds.meta["sources"]},
        "split": split.to_dict(),
    }
    run_dirs.write_json(run_dir / run_dirs.CONFIG, meta)
    fit(config, ds, split, train_idx, run_dir)
    return run_dir, ds, split


def _held_out(ds, split, n=600):
    """Beats of the same records the run never trained or selected on (its test part)."""
    return np.sort(np.random.default_rng(0).permutation(split.test)[:n])


def test_pruning_really_removes_channels():
    model = create_model("resnet18", "none")
    info = prune_model(model, 0.5)
    assert info["after"]["params"] < 0.3 * info["before"]["params"]
    assert info["after"]["macs"] < 0.4 * info["before"]["macs"]
    assert info["after"] == complexity(model, example_inputs(model))
    assert model.backbone.conv1.in_channels == 1 and model.backbone.conv1.out_channels == 64  # stem kept
    assert model.backbone.layer4[1].conv1.out_channels == 256
    assert model.head.fc.out_features == 5 and model.head.fc.in_features == model.feature_dim == 256
    model.eval()
    assert model(torch.rand(3, 1, 32, 32)).shape == (3, 5)
    # rebuilt from the channel spec alone, it is the same network
    spec = {"arch": "resnet18", "num_classes": 5, "rr_features": False, "channels": channel_spec(model)}
    rebuilt = model_from_checkpoint({"model": model.state_dict(), "model_spec": spec})
    x = torch.rand(4, 1, 32, 32)
    assert torch.equal(rebuilt(x), model(x))


def test_pruning_with_rr_and_prune_stem():
    model = create_model("resnet18", "none", rr_features=True)
    info = prune_model(model, 0.25, keep_stem=False)
    assert model.backbone.conv1.out_channels == 48 and model.backbone.conv1.in_channels == 1
    assert info["after"]["macs"] < info["before"]["macs"]
    model.eval()
    assert model(torch.rand(2, 1, 32, 32), torch.ones((2, N_RHYTHM))).shape == (2, 5)
    rebuilt = model_from_spec({"arch": "resnet18", "num_classes": 5, "rr_features": True, "channels": channel_spec(model)})
    rebuilt.load_state_dict(model.state_dict())


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.2, 1.5])
def test_bad_ratio_is_a_one_line_error(ratio, tmp_path):
    with pytest.raises(EcgEdgeError, match=r"--prune must be in \(0, 1\)"):
        prune_model(create_model("resnet18", "none"), ratio)
    with pytest.raises(EcgEdgeError, match=r"--prune must be in \(0, 1\)"):
        compress_run(tmp_path / "nope", tmp_path / "out", prune=ratio)


def test_cli_bad_input(tmp_path):
    r = run_cli("compress", str(tmp_path), "--prune", "1.5", "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--prune must be in (0, 1)" in r.stderr, r.stderr
    r = run_cli("compress", str(tmp_path), "--prune", "0.5", "--distill", "1.5", "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--distill must be in [0, 1]" in r.stderr, r.stderr
    r = run_cli("compress", str(tmp_path), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "nothing to do" in r.stderr, r.stderr
    r = run_cli("compress", str(tmp_path), "--prune", "0.5", "--normal-per-epoch", "lots", "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "--normal-per-epoch must be a positive whole number or 'all'" in r.stderr, r.stderr
    r = run_cli("compress", str(tmp_path), "--prune", "0.5", "--prune-normal-per-epoch", "0", "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "--prune-normal-per-epoch must be a positive whole number or 'all'" in r.stderr, r.stderr
    r = run_cli("compress", str(tmp_path), "--prune", "0.5", "--distill", "0.5", "--distill-views", "mixup", "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "needs --distill 1" in r.stderr, r.stderr
    r = run_cli("compress", str(tmp_path), "--qat", "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "not a run directory" in r.stderr, r.stderr


def test_compress_prune_writes_a_run_that_still_predicts(tiny_run, tmp_path):
    run_dir, ds, split = tiny_run
    data = BeatTensors(ds)
    held = _held_out(ds, split)
    y = ds.labels[held]
    source = model_from_checkpoint(torch.load(run_dir / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False))
    before = _balanced_accuracy(predict_logits(source, data, held, 256, torch.device("cpu")).argmax(1), y)

    out = compress_run(run_dir, tmp_path / "pruned", prune=0.5, epochs=2, log=None)
    for name in (run_dirs.CONFIG, run_dirs.VERSIONS, run_dirs.HISTORY):
        assert (out / name).is_file()
    meta = json.loads((out / run_dirs.CONFIG).read_text())
    step = meta["compress"]["steps"][0]
    assert step["after"]["params"] < 0.6 * step["before"]["params"] and step["after"]["macs"] < step["before"]["macs"]
    assert meta["compress"]["distill"] == {"alpha": 1.0, "temperature": 4.0, "views": "beats", "class_weighted": False}  # taught by the source model by default
    assert meta["compress"]["select"] == "agreement"  # the epoch most like the source model is kept
    history = json.loads((out / run_dirs.HISTORY).read_text())
    assert [h["epoch"] for h in history] == [1, 2] and history[0]["phase"] == "prune"

    ckpt = torch.load(out / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False)
    assert ckpt["model_spec"]["channels"]
    # What selection guarantees (not that fine-tuning helped, which depends on the CPU's arithmetic):
    # the kept state is the first with the best validation macro-F1 among the pruned start (epoch 0)
    # and every fine-tuning epoch.
    scores = [step["val_after_pruning"]["macro_f1"]] + [h["val_macro_f1"] for h in history]
    assert ckpt["epoch"] == scores.index(max(scores)) == step["best_epoch"]
    assert ckpt["val_metrics"]["macro_f1"] == max(scores)
    pruned = load_checkpoint_model(ckpt, out / run_dirs.CHECKPOINTS / run_dirs.BEST)
    assert sum(p.numel() for p in pruned.parameters()) == step["after"]["params"]
    after = _balanced_accuracy(predict_logits(pruned, data, held, 256, torch.device("cpu")).argmax(1), y)
    assert after > 1 / 3 + 0.2 and after > before - 0.15, (before, after)


def test_qat_graph_has_fake_quant_and_matches_float(tiny_run):
    from torchao.quantization.pt2e import FakeQuantizeBase

    from ecgedge.compress.qat import QATTrainable, prepare_qat, set_observers

    run_dir, ds, split = tiny_run
    model = model_from_checkpoint(torch.load(run_dir / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False))
    prepared, input_q = prepare_qat(model)
    assert input_q == {"scale": pytest.approx(1 / 255), "zero_point": -128}
    n_fq = sum(isinstance(m, FakeQuantizeBase) for m in prepared.modules())
    assert n_fq >= 10  # weights of 6 conv/linear layers + activations
    assert model.rr_features  # the presets' default: the rhythm input goes through QAT too
    qat = QATTrainable(prepared, 5, model.rr_features)
    data = BeatTensors(ds)
    calib = np.sort(split.train[:256])
    with torch.no_grad():  # calibrate the activation ranges in eval form (BN statistics untouched)
        qat.eval()
        qat(*data.get(calib, torch.device("cpu"))[:2])
    set_observers(prepared, False)
    held = _held_out(ds, split, 300)
    ref = predict_logits(model, data, held, 256, torch.device("cpu"))
    fq = predict_logits(qat, data, held, 256, torch.device("cpu"))
    assert np.mean(ref.argmax(1) == fq.argmax(1)) >= 0.95
    assert np.abs(fq - ref).max() < 0.1 * np.abs(ref).max() + 0.05


def test_compress_qat_run_evaluates_the_int8_graph(tiny_run, tmp_path):
    run_dir, ds, split = tiny_run
    out = compress_run(run_dir, tmp_path / "qat", qat=True, epochs=1, train_fraction=0.5, log=None)
    best = out / run_dirs.CHECKPOINTS / run_dirs.BEST
    ckpt = torch.load(best, weights_only=False)
    assert "qat_state" in ckpt and ckpt["model_spec"]["qat"]["input_quantization"]["zero_point"] == -128
    program = out / run_dirs.CHECKPOINTS / "qat_int8.pt2"
    assert program.is_file()
    step = json.loads((out / run_dirs.CONFIG).read_text())["compress"]["steps"][0]
    assert step["step"] == "qat" and step["val_before_finetune"]["macro_f1"] > 0
    # a fresh process (no torchao imported yet) can load the saved int8 graph
    code = (
        f"from ecgedge.models.qat_program import load_qat_program; import torch; "
        f"print(load_qat_program({str(program)!r})(torch.rand(3, 1, 32, 32), torch.ones(3, {N_RHYTHM})).shape)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and "[3, 5]" in r.stdout, r.stderr[-2000:]
    q = load_checkpoint_model(ckpt, best)  # the converted graph: int8 simulated by quantize / dequantize ops
    ops = {str(n.target) for n in q.gm.graph.nodes if n.op == "call_function"}
    assert any("quantize_per_channel" in o for o in ops) and any("dequantize_per_tensor" in o for o in ops)
    f = model_from_checkpoint(ckpt)  # the fine-tuned float weights
    data = BeatTensors(ds)
    held = _held_out(ds, split, 300)
    pq = predict_logits(q, data, held, 128, torch.device("cpu")).argmax(1)
    pf = predict_logits(f, data, held, 128, torch.device("cpu")).argmax(1)
    assert np.mean(pq == pf) >= 0.9
    assert _balanced_accuracy(pq, ds.labels[held]) > 1 / 3 + 0.2
    with pytest.raises(EcgEdgeError, match="already quantisation-aware"):
        compress_run(out, tmp_path / "again", qat=True, log=None)
    _check_qat_export(out, q, ds, held, tmp_path / "exports")


def _check_qat_export(run_dir, simulation, ds, held, out_dir):
    """int8 exports of a QAT run keep its learned scales: no calibration, same outputs as its simulation."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from ecgedge.export import export_model
    from ecgedge.export.onnx_format import input_quantization
    from ecgedge.export.tflite_format import tensor_io
    from ecgedge.firmware_host.runtime import load_runtime

    files = {(f.format, f.precision): f for f in export_model(run_dir, out_dir, int8=True, check_beats=128, log=None, load_runtime=load_runtime)}
    for fmt in ("onnx", "tflite"):
        f = files[(fmt, "int8")]
        assert f.quantization == "qat" and f.check["passed"] and "simulation" in f.check["reference"]
        md = load_runtime(f.path).metadata
        assert md["export"]["quantization"] == "qat" and md["export"]["route"].startswith("QAT") and md["calibration"] is None
    assert files[("onnx", "fp32")].quantization is None
    images = np.asarray(ds.images[held])
    rr = np.asarray(ds.rr[held], np.float32)  # the run uses the rhythm input (the presets' default)
    sim = simulation(torch.from_numpy(images.astype(np.float32) / 255)[:, None], torch.from_numpy(rr)).detach().numpy()

    # ONNX: int8 weights, uint8 activations (the rewrite for x86 kernels), the pinned input grid.
    path = files[("onnx", "int8")].path
    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    act_zero_types = {inits[n.input[2]].data_type for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits}
    weight_types = {inits[n.input[0]].data_type for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits}
    assert act_zero_types == {onnx.TensorProto.UINT8} and onnx.TensorProto.INT8 in weight_types
    weight_inputs = {n.input[1] for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")}
    weights = [numpy_helper.to_array(inits[n.input[0]]) for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] in weight_inputs and n.input[0] in inits]
    assert len(weights) >= 6 and max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 63  # the 7-bit grid
    assert input_quantization(path) == {"scale": pytest.approx(1 / 255), "zero_point": 0, "dtype": "uint8"}
    # The learned scales survive: every per-tensor scale of the simulation appears in the file
    # (constants quantised at export time keep only their DequantizeLinear).
    sim_scales = [float(n.args[1]) for n in simulation.gm.graph.nodes if "quantize_per_tensor" in str(n.target) and isinstance(n.args[1], float)]
    file_scales = np.array([float(numpy_helper.to_array(inits[n.input[1]]).reshape(-1)[0]) for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.input[1] in inits])
    assert sim_scales and all(np.min(np.abs(file_scales - s)) <= 1e-6 * s for s in sim_scales)  # float32 storage
    # Run as plain QDQ arithmetic (no fused integer kernels), the file is the simulation: the
    # uint8 rewrite changed no value. Float summation order may move a value across a rounding
    # boundary now and then, hence a tolerance of a few quantisation steps, not exact equality.
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"image": images.astype(np.float32)[:, None] / 255, "rr": rr})[0]
    assert np.mean(plain.argmax(1) == sim.argmax(1)) >= 0.99
    assert np.median(np.abs(plain - sim)) < 1e-3
    # With its integer kernels (default optimisations), 7-bit weights keep x86 from saturating.
    fused = load_runtime(path).predict(images, rr)
    assert np.mean(fused.argmax(1) == sim.argmax(1)) >= 0.99

    # TFLite: full integer with int8 input on the same [0, 1] grid; outputs follow the simulation.
    path = files[("tflite", "int8")].path
    t_in, t_out = tensor_io(path)
    image_in = next(d for d in t_in if len(d["shape"]) == 4)
    assert image_in["dtype"] == "int8" and image_in["quantization"] == {"scale": pytest.approx(1 / 255), "zero_point": -128}
    tfl = load_runtime(path).predict(images, rr)
    assert np.mean(tfl.argmax(1) == sim.argmax(1)) >= 0.98


def test_finetune_keeps_the_start_when_validation_gets_worse(tiny_run):
    from ecgedge.compress.finetune import finetune
    from ecgedge.train.validate import evaluate_val

    run_dir, ds, split = tiny_run
    model = model_from_checkpoint(torch.load(run_dir / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False))
    data, cpu = BeatTensors(ds), torch.device("cpu")
    start, _ = evaluate_val(model, data, split.val, torch.ones(5), 256, cpu)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = finetune(model, data, np.sort(split.train[:256]), split.val, epochs=1, lr=5.0, class_weights=np.ones(5), initial_val=start, device=cpu)
    assert res.history[0]["val_macro_f1"] < start["macro_f1"]  # a learning rate of 5 wrecks the model
    assert res.best_epoch == 0 and res.best_val == start
    assert all(torch.equal(res.best_state[k], before[k]) for k in before)


def test_finetune_selected_for_agreement_keeps_the_epoch_most_like_the_source(tiny_run):
    from ecgedge.compress.finetune import finetune
    from ecgedge.train.predict import predict_logits
    from ecgedge.train.validate import evaluate_val

    run_dir, ds, split = tiny_run
    model = model_from_checkpoint(torch.load(run_dir / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False))
    data, cpu = BeatTensors(ds), torch.device("cpu")
    reference = predict_logits(model, data, split.val, 256, cpu).argmax(1)
    reference[: len(reference) // 3] = 4  # a reference the start does not fully agree with
    start, _ = evaluate_val(model, data, split.val, torch.ones(5), 256, cpu, reference)
    assert start["agreement"] == pytest.approx(np.mean(reference == predict_logits(model, data, split.val, 256, cpu).argmax(1)))
    res = finetune(model, data, np.sort(split.train[:256]), split.val, epochs=2, lr=3e-3, class_weights=np.ones(5), initial_val=start, device=cpu, reference=reference)
    scores = [start["agreement"]] + [row["val_agreement"] for row in res.history]
    assert res.best_epoch == int(np.argmax(scores)) and res.best_score == max(scores)
    assert res.best_val["agreement"] == max(scores)


def test_distillation_loss_is_the_teachers_disagreement(tiny_run):
    from ecgedge.compress.distill import DistillConfig, DistillationLoss

    run_dir, ds, split = tiny_run
    data, cpu = BeatTensors(ds), torch.device("cpu")
    teacher = model_from_checkpoint(torch.load(run_dir / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False)).eval()
    batch = np.sort(split.train[:6])
    same = torch.from_numpy(predict_logits(teacher, data, batch, 256, cpu))
    y = data.labels[torch.from_numpy(batch)]
    only_teacher = DistillationLoss.from_teacher(teacher, data, split.train, torch.ones(5), DistillConfig(alpha=1.0, temperature=3.0))
    assert float(only_teacher(same, y, batch)) == pytest.approx(0.0, abs=1e-5)
    assert float(only_teacher(same + torch.randn_like(same), y, batch)) > 0.01
    half = DistillationLoss(only_teacher.teacher_logits, torch.ones(5), DistillConfig(alpha=0.5))
    assert float(half(same, y, batch)) == pytest.approx(0.5 * float(torch.nn.functional.cross_entropy(same, y)), rel=1e-4)
    with pytest.raises(EcgEdgeError, match="not run on"):
        only_teacher(same, y, np.sort(split.test[:6]))
    with pytest.raises(EcgEdgeError, match=r"--distill must be in \[0, 1\]"):
        DistillConfig(alpha=1.5)
    # live: the teacher answers on the very inputs of the batch (augmented views too), any beat
    x, rr, y_test = data.get(np.sort(split.test[:6]), cpu, np.random.default_rng(0))
    live = DistillationLoss.live(copy.deepcopy(teacher), torch.ones(5), DistillConfig(alpha=1.0, views="augmented"))
    with torch.no_grad():
        on_inputs = teacher(x, rr)
    assert float(live(on_inputs, y_test, np.sort(split.test[:6]), (x, rr))) == pytest.approx(0.0, abs=1e-5)
    assert float(live(same, y_test, np.sort(split.test[:6]), (x, rr))) > 0.01  # other beats' answers
    with pytest.raises(EcgEdgeError, match="--distill-views"):
        DistillConfig(views="both")


def test_class_weighted_distillation_weighs_each_beat_by_the_teachers_call(tiny_run):
    from ecgedge.compress.distill import DistillConfig, DistillationLoss

    run_dir, ds, split = tiny_run
    data = BeatTensors(ds)
    teacher = model_from_checkpoint(torch.load(run_dir / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False)).eval()
    batch = np.sort(split.train[:32])
    plain = DistillationLoss.from_teacher(teacher, data, batch, torch.ones(5), DistillConfig(temperature=2.0))
    target = plain.teacher_logits[torch.from_numpy(batch)]
    student = target + torch.randn_like(target)  # a copy that disagrees a little on every beat
    y = data.labels[torch.from_numpy(batch)]
    flat = DistillationLoss(plain.teacher_logits, torch.ones(5), DistillConfig(temperature=2.0, class_weighted=True))
    assert float(flat(student, y, batch)) == pytest.approx(float(plain(student, y, batch)), rel=1e-5)  # equal weights: the plain loss
    weights = torch.tensor([1.0, 7.0, 3.0, 5.0, 2.0])
    weighted = DistillationLoss(plain.teacher_logits, weights, DistillConfig(temperature=2.0, class_weighted=True))
    per_beat = torch.nn.functional.kl_div(torch.log_softmax(student / 2, 1), torch.log_softmax(target / 2, 1), log_target=True, reduction="none").sum(1)
    w = weights[target.argmax(1)]
    assert len(set(target.argmax(1).tolist())) > 1  # the teacher calls more than one class here
    assert float(weighted(student, y, batch)) == pytest.approx(4.0 * float((w * per_beat).sum() / w.sum()), rel=1e-5)
    assert DistillConfig(class_weighted=True).to_dict()["class_weighted"] is True


def test_mixed_views_mix_beats_of_one_batch_and_only_for_training(tiny_run):
    from ecgedge.compress.distill import DistillConfig, MixedViews

    _, ds, split = tiny_run
    data, cpu = BeatTensors(ds), torch.device("cpu")
    mixed = MixedViews(data)
    batch = np.sort(split.train[:64])
    x, rr, y = data.get(batch, cpu)
    mx, mrr, my = mixed.get(batch, cpu, np.random.default_rng(3))
    assert torch.equal(my, y)  # labels are not mixed (and not used: alpha must be 1)
    assert not torch.equal(mx, x) and not torch.equal(mrr, rr)
    # every mixed beat lies between its own beat and one partner of the same batch, same weight for both inputs
    rng = np.random.default_rng(3)
    partner, lam = rng.permutation(len(batch)), rng.uniform(size=len(batch)).astype(np.float32)
    lam_t = torch.from_numpy(lam)
    assert torch.allclose(mx, lam_t.view(-1, 1, 1, 1) * x + (1 - lam_t.view(-1, 1, 1, 1)) * x[partner], atol=1e-6)
    assert torch.allclose(mrr, lam_t.view(-1, 1) * rr + (1 - lam_t.view(-1, 1)) * rr[partner], atol=1e-5)
    again, _, _ = mixed.get(batch, cpu, np.random.default_rng(3))
    assert torch.equal(again, mx)  # same seed, same mixes
    vx, vrr, _ = mixed.get(batch, cpu)  # validation / prediction: beats as they are
    assert torch.equal(vx, x) and torch.equal(vrr, rr)
    assert DistillConfig(views="mixup").live and DistillConfig(views="augmented").live and not DistillConfig().live
    with pytest.raises(EcgEdgeError, match="needs --distill 1"):
        DistillConfig(alpha=0.5, views="mixup")


def test_compress_with_mixed_views_and_its_own_n_draw_records_both(tiny_run, tmp_path):
    from ecgedge.compress.distill import DistillConfig

    run_dir, ds, split = tiny_run
    out = compress_run(run_dir, tmp_path / "mixup", prune=0.5, epochs=1, distill=DistillConfig(views="mixup"), normal_per_epoch="40", log=None)
    meta = json.loads((out / run_dirs.CONFIG).read_text())
    assert meta["compress"]["distill"]["views"] == "mixup" and meta["compress"]["normal_per_epoch"] == 40
    assert meta["train"]["normal_per_epoch"] == json.loads((run_dir / run_dirs.CONFIG).read_text())["train"]["normal_per_epoch"]  # the source's training, as it was
    pruned = load_checkpoint_model(torch.load(out / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False), out / run_dirs.CHECKPOINTS / run_dirs.BEST)
    assert predict_logits(pruned, BeatTensors(ds), _held_out(ds, split, 64), 64, torch.device("cpu")).shape == (64, 5)


def test_the_pruning_step_draws_its_own_n_beats(tiny_run, tmp_path):
    run_dir, ds, split = tiny_run
    sampled = compress_run(run_dir, tmp_path / "sampled", prune=0.5, epochs=1, normal_per_epoch="40", log=None)
    every = compress_run(run_dir, tmp_path / "every", prune=0.5, epochs=1, normal_per_epoch="40", prune_normal_per_epoch="all", log=None)
    steps = {d.name: json.loads((d / run_dirs.CONFIG).read_text())["compress"] for d in (sampled, every)}
    assert steps["sampled"]["steps"][0]["normal_per_epoch"] == 40 and steps["every"]["steps"][0]["normal_per_epoch"] is None
    assert steps["every"]["normal_per_epoch"] == 40  # what a QAT step would draw: unchanged
    # the run trained on more N beats than 40 (up to 150 per record): every one of them each epoch is another fine-tuning
    losses = [json.loads((d / run_dirs.HISTORY).read_text())[0]["train_loss"] for d in (sampled, every)]
    assert losses[0] != losses[1]


def test_distilled_finetuning_brings_a_pruned_model_back_to_its_teacher(tiny_run):
    """On beats it never trained on, a pruned model taught only by the source model agrees with it more."""
    import copy

    from ecgedge.compress.distill import DistillConfig, DistillationLoss
    from ecgedge.compress.finetune import finetune

    run_dir, ds, split = tiny_run
    data, cpu = BeatTensors(ds), torch.device("cpu")
    held = _held_out(ds, split)
    teacher = model_from_checkpoint(torch.load(run_dir / run_dirs.CHECKPOINTS / run_dirs.BEST, weights_only=False)).eval()
    target = predict_logits(teacher, data, held, 256, cpu).argmax(1)
    student = copy.deepcopy(teacher)
    prune_model(student, 0.75)
    before = (predict_logits(student, data, held, 256, cpu).argmax(1) == target).mean()
    loss = DistillationLoss.from_teacher(teacher, data, split.train, torch.ones(5), DistillConfig(alpha=1.0, temperature=4.0))
    finetune(student, data, np.sort(split.train), split.val, epochs=2, lr=3e-3, class_weights=np.ones(5), batch_size=32, criterion=loss, device=cpu)
    after = (predict_logits(student, data, held, 256, cpu).argmax(1) == target).mean()
    assert after > 0.9 and after > before, (before, after)
