"""Do onnxruntime's fused int8 kernels compute what an int8 ONNX file's QDQ arithmetic says?

    python benchmarks/bench_onnx_kernels.py MODEL.onnx [MODEL.onnx ...] --run-dir RUN [--data-dir DIR]

Runs each file twice on the same real DS1 beats (held out from calibration): with graph
optimisations at BASIC (QuantizeLinear / DequantizeLinear executed as written, float ops between)
and at ALL (the default: QDQ groups fused into integer kernels), and reports top-1 agreement and
logit differences between the two, plus the largest |int8 weight| of each file. On x86 CPUs without
VNNI, onnxruntime multiplies uint8 activations by int8 weights with VPMADDUBSW, whose int16 pair
sums saturate when weights use the full 8-bit range; this shows it on real models (the JSON's
``machine.cpu_int8_features`` says which instructions the CPU has).
JSON: benchmarks/results/onnx-kernels.json.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ecgedge.machine import machine_info  # noqa: E402

from ecgedge.export.calibration import calibration_data  # noqa: E402
from ecgedge import run_dirs  # noqa: E402
from ecgedge.run_dirs import package_versions  # noqa: E402


def max_int8_weight(path: Path) -> int:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    weight_inputs = {n.input[1] for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")}
    ws = [numpy_helper.to_array(inits[n.input[0]]) for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] in weight_inputs and n.input[0] in inits]
    return max(int(np.abs(w.astype(np.int32)).max()) for w in ws) if ws else 0


def main() -> None:
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--run-dir", type=Path, required=True, help="Run whose DS1 training beats feed the models.")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--beats", type=int, default=512)
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results" / "onnx-kernels.json")
    args = ap.parse_args()

    sample = calibration_data(run_dirs.read_config(args.run_dir), args.data_dir, n_calib=16, n_check=args.beats).check
    x = sample.images.astype(np.float32)[:, None] / 255.0
    results = {}
    for path in args.models:
        outs = {}
        for level in ("ORT_ENABLE_BASIC", "ORT_ENABLE_ALL"):
            so = ort.SessionOptions()
            so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
            so.log_severity_level = 3
            outs[level] = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
        plain, fused = outs["ORT_ENABLE_BASIC"], outs["ORT_ENABLE_ALL"]
        diff = np.abs(plain - fused)
        results[str(path)] = {
            "max_abs_int8_weight": max_int8_weight(path),
            "top1_agreement_fused_vs_qdq": float(np.mean(plain.argmax(1) == fused.argmax(1))),
            "max_abs_logit_diff": float(diff.max()),
            "mean_abs_logit_diff": float(diff.mean()),
        }
        r = results[str(path)]
        print(f"{path.name}: max|w| {r['max_abs_int8_weight']}, agreement {r['top1_agreement_fused_vs_qdq']:.2%}, max|dlogit| {r['max_abs_logit_diff']:.3g}")
    out = {
        "benchmark": "onnx-kernels",
        "command": "python " + " ".join(sys.argv),
        "beats": f"{len(x)} DS1 training beats (held out from calibration)",
        "machine": machine_info(),
        "versions": package_versions("onnxruntime", "onnx", "numpy"),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
