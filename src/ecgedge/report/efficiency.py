"""What each compared model costs on a gateway (file size, parameters, MACs, per-beat latency), and
the rows of a comparison (``report.json``): accuracy and its deltas against the first model, next to
those costs.

Facts come from what the model carries (an exported file's ``ecgedge`` metadata; a run's
``config.json`` compress record), else are computed from the checkpoint (torch + torch-pruning's
counter). Latency is optional (``ecgedge report --latency``): every model is loaded in its own
runtime (torch, onnxruntime, LiteRT) and timed in one interleaved session
(:func:`ecgedge.firmware_host.latency.measure_latency`), batch 1, ``threads`` threads, so ratios between
rows are meaningful. Dense CNN kernels do not look at the values they multiply, so a fixed
pseudo-random uint8 image set stands in for beats here (benchmarks/bench_runtimes.py times real
DS1 beats and gives the same ratios).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ecgedge import run_dirs
from ecgedge.errors import EcgEdgeError


@dataclass
class ModelFacts:
    model: str | None  # the file a gateway would load (or the run's checkpoint); None: not found
    runtime: str | None  # torch | onnxruntime | litert
    precision: str | None  # fp32 | int8 | int8-simulated
    quantization: str | None  # ptq | qat | None
    size_bytes: int | None
    params: int | None
    macs: int | None
    latency: dict | None = None  # Latency.as_dict()

    def as_dict(self) -> dict:
        return asdict(self)


def model_path(run_path: Path, config: dict | None) -> Path:
    """The model behind a report entry: a model file, a scored export's ``model``, or ``checkpoints/best.pt``."""
    run_path = Path(run_path)
    if run_path.is_file():
        return run_path
    if config and isinstance(config.get("model"), str):
        return Path(config["model"])
    return run_dirs.best_checkpoint(run_path)


def model_facts(run_path: Path, config: dict | None, metrics: dict) -> ModelFacts:
    path = model_path(run_path, config)
    if not path.is_file():  # metrics kept without their model (e.g. copied results): accuracy only
        return ModelFacts(None, None, metrics.get("precision"), metrics.get("quantization"), metrics.get("size_bytes"), None, None)
    if run_dirs.is_model_file(path):
        cx = metrics.get("complexity") or {}
        if not cx:
            from ecgedge.firmware_host.runtime import load_runtime

            cx = load_runtime(path).metadata.get("complexity") or {}
        return ModelFacts(
            str(path),
            "onnxruntime" if path.suffix.lower() == ".onnx" else "litert",
            str(metrics.get("precision") or "int8"),
            metrics.get("quantization"),
            path.stat().st_size,
            cx.get("params"),
            cx.get("macs"),
        )
    compress = (config or {}).get("compress") or {}
    cx = compress.get("complexity") or _checkpoint_complexity(path)
    qat = bool(compress.get("qat"))
    return ModelFacts(str(path), "torch", "int8-simulated" if qat else "fp32", "qat" if qat else None, path.stat().st_size, cx.get("params"), cx.get("macs"))


def _checkpoint_complexity(checkpoint: Path) -> dict:
    try:
        import torch

        from ecgedge.compress.prune import complexity, example_inputs
        from ecgedge.models.checkpoint import model_from_checkpoint

        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model = model_from_checkpoint(ckpt, str(checkpoint))
        size = ((ckpt.get("preprocess") or {}).get("spectrogram") or {}).get("image_size") or (32, 32)
        return complexity(model, example_inputs(model, tuple(size)))
    except (ImportError, EcgEdgeError, KeyError):
        return {}


def agreement_with_first(predictions: list[Path]) -> list[float | None]:
    """Share of beats on which each model predicts what the first one does (None: no predictions
    file on either side, or not the same beats)."""
    import numpy as np

    def load(p: Path):
        if not p.is_file():
            return None
        with np.load(p) as d:
            return d["index"], d["preds"]

    first = load(predictions[0])
    out: list[float | None] = []
    for other in [first] + [load(p) for p in predictions[1:]]:
        same_beats = first is not None and other is not None and np.array_equal(first[0], other[0])
        out.append(float(np.mean(first[1] == other[1])) if same_beats else None)
    return out


def headline(m: dict) -> dict:
    """The figures a report leads with: 4-class (N, S, V, F) and EC57 gross VEB / SVEB, then 5-class.

    Computed from the confusion matrix when a metrics file predates them.
    """
    import numpy as np

    from ecgedge.evaluate.metrics import ec57_gross, four_class_metrics

    cm = np.asarray(m["confusion"]["matrix"], dtype=np.int64)
    four = m.get("four_class") or four_class_metrics(cm)
    ec57 = m.get("ec57") or ec57_gross(cm)
    return {
        "macro_f1_4": four["macro_f1"], "kappa_4": four["kappa"], "jk_4": four["jk"],
        "sveb_se": ec57["sveb"]["se"], "sveb_ppv": ec57["sveb"]["ppv"], "veb_se": ec57["veb"]["se"], "veb_ppv": ec57["veb"]["ppv"],
        "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "jk": m["jk"],
    }  # fmt: skip


def comparison_rows(entries: list[tuple[str, dict]], facts: list[ModelFacts], same_as_first: list[float | None] | None = None) -> list[dict]:
    """One record per (label, metrics) entry: accuracy, deltas against the first, agreement, and its costs.

    ``same_as_first``: per entry, the share of beats predicted as the first entry predicts them
    (:func:`agreement_with_first`).
    """
    base, base_f = entries[0][1], facts[0]
    base_ms = (base_f.latency or {}).get("median_ms")
    same_as_first = same_as_first or [None] * len(entries)
    base_head = headline(base)
    rows = []
    for (label, m), f, same in zip(entries, facts, same_as_first):
        ms = (f.latency or {}).get("median_ms")
        head = headline(m)
        rows.append(
            {
                "label": label,
                **f.as_dict(),
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
                "jk": m["jk"],
                "macro_f1_4": head["macro_f1_4"],
                "kappa_4": head["kappa_4"],
                "delta_macro_f1_4": head["macro_f1_4"] - base_head["macro_f1_4"],
                "delta_macro_f1": m["macro_f1"] - base["macro_f1"],
                "delta_jk": m["jk"] - base["jk"],
                "f1": {c: v["f1"] for c, v in m["per_class"].items()},
                "agreement": m.get("agreement"),
                "agreement_reference": (m.get("agreement_reference") or {}).get("source"),
                "agreement_with_baseline": same,
                "size_ratio": base_f.size_bytes / f.size_bytes if (f.size_bytes and base_f.size_bytes) else None,
                "speedup": base_ms / ms if (base_ms and ms) else None,
            }
        )
    return rows


def measure(facts: list[ModelFacts], threads: int = 1, calls: int = 300, seed: int = 0) -> None:
    """Time every model in one interleaved session; fills ``facts[i].latency``."""
    import numpy as np

    from ecgedge.preprocess.rhythm import rhythm_features
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.firmware_host.latency import measure_latency

    if missing := [i for i, f in enumerate(facts) if f.model is None]:
        raise EcgEdgeError(f"cannot time entry {missing[0] + 1}: its model file was not found.")
    runtimes = {str(i): load_runtime(f.model, num_threads=threads) for i, f in enumerate(facts)}
    sizes = {tuple(rt.input_size) for rt in runtimes.values()}
    if len(sizes) != 1:
        raise EcgEdgeError(f"the compared models take different image sizes {sorted(sizes)}; time them separately.")
    h, w = sizes.pop()
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(64, h, w), dtype=np.uint8)
    rr = rhythm_features(np.cumsum(rng.integers(200, 400, size=64)), 360.0)
    for key, lat in measure_latency(runtimes, images, rr, calls=calls).items():
        facts[int(key)].latency = {**lat.as_dict(), "threads": threads, "batch": 1}
