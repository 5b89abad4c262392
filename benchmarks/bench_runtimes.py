"""Batch-1 latency of one run's exports in every runtime, measured in one session.

    python benchmarks/bench_runtimes.py --run-dir runs/pipeline/quick-resnet18-inter-patient \\
        [--exports DIR] [--extra NAME=MODEL ...] [--data-dir ../shared/data/mitdb] [--calls 300]

Exports the run into --exports first when the files are not there (``ecgedge export --int8``):
torch fp32 (the checkpoint), onnxruntime fp32 / int8, LiteRT fp32 / int8. ``--extra`` adds more
models to the same session (e.g. a pruned or QAT run directory, or its exported files).
Every model is timed through :func:`ecgedge.firmware_host.runtime.load_runtime` ``.predict`` on one real uint8
beat at a time (DS1 training beats, never DS2) by :func:`ecgedge.firmware_host.latency.measure_latency`
(interleaved rounds, so a background load drifts over all runtimes alike): each number includes
what a gateway pays per beat (uint8 -> float or int8, inference, dequantisation). Reported:
median and 90th percentile per call, beats/s = 1 / median, speed-up against torch fp32, and the
top-1 agreement of each with the run's torch fp32 model on the beats used (for ``--extra`` models,
which are other models, that says how far compression moved their predictions). JSON: benchmarks/results/runtimes.json.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ecgedge.machine import machine_info  # noqa: E402

from ecgedge.export import FORMATS, export_model  # noqa: E402
from ecgedge.export.calibration import calibration_data  # noqa: E402
from ecgedge.run_dirs import package_versions  # noqa: E402
from ecgedge.firmware_host.runtime import load_runtime  # noqa: E402
from ecgedge.firmware_host.latency import measure_latency  # noqa: E402
from ecgedge import run_dirs  # noqa: E402


def exported_files(run_dir: Path, exports: Path, data_dir: Path | None) -> dict[str, Path]:
    want = {f"{fmt}-{p}": exports / f"{run_dir.name}-{p}{FORMATS[fmt].suffix}" for fmt in FORMATS for p in ("fp32", "int8")}
    if not all(p.is_file() for p in want.values()):
        export_model(run_dir, exports, formats=tuple(FORMATS), int8=True, data_dir=data_dir, load_runtime=load_runtime)
    return want


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--exports", type=Path, default=None, help="Directory of the exports (default: RUN_DIR/exports).")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--beats", type=int, default=200, help="Distinct real beats cycled through.")
    ap.add_argument("--calls", type=int, default=300, help="Timed calls per runtime (after warm-up).")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=MODEL", help="Another model (file or run directory) to time in the same session.")
    ap.add_argument("--note", default="", help="Free text stored with the result (e.g. machine load).")
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results" / "runtimes.json")
    args = ap.parse_args()

    run_dir = args.run_dir.resolve()
    exports = (args.exports or run_dir / "exports").resolve()
    files = exported_files(run_dir, exports, args.data_dir)
    meta = run_dirs.read_config(run_dir)
    sample = calibration_data(meta, args.data_dir, n_calib=args.beats, n_check=args.beats).check
    images, rr = sample.images, sample.rr

    runtimes = {"torch-fp32": load_runtime(run_dir, num_threads=args.threads)}
    for name, path in files.items():
        runtimes[name] = load_runtime(path, num_threads=args.threads)
    for spec in args.extra:
        name, _, path = spec.partition("=")
        if not path:
            ap.error(f"--extra wants NAME=MODEL, got {spec!r}")
        runtimes[name] = load_runtime(Path(path), num_threads=args.threads)
    use_rr = runtimes["torch-fp32"].rr_features

    reference = runtimes["torch-fp32"].predict(images, rr if use_rr else None).argmax(1)
    timed = measure_latency(runtimes, images, rr if use_rr else None, calls=args.calls, rounds=args.rounds)
    base = timed["torch-fp32"].median_ms
    results = {}
    for name, rt in runtimes.items():
        lat = timed[name]
        preds = rt.predict(images, rr if use_rr else None).argmax(1)
        path = Path(rt.path)
        results[name] = {
            "backend": rt.backend,
            "precision": rt.precision,
            "file": str(path),
            "size_bytes": path.stat().st_size,
            **lat.as_dict(),
            "speedup_vs_torch_fp32": round(base / lat.median_ms, 3),
            "top1_agreement_with_run_torch_fp32": float(np.mean(preds == reference)),  # extras are other models: how far they moved
        }
        print(f"{name:16s} {lat.median_ms:8.3f} ms  {lat.beats_per_s:9.1f} beats/s  {base / lat.median_ms:6.2f}x  "
              f"{path.stat().st_size / 1e6:7.2f} MB  agree {results[name]['top1_agreement_with_run_torch_fp32']:.2%}")

    out = {
        "benchmark": "runtimes",
        "command": "python " + " ".join(sys.argv),
        "run_dir": str(run_dir),
        "arch": runtimes["torch-fp32"].metadata.get("arch"),
        "input": f"uint8 [1, {images.shape[1]}, {images.shape[2]}]" + (" + rr [1, 3]" if use_rr else ""),
        "batch": 1,
        "threads": args.threads,
        "timed_calls_per_runtime": timed["torch-fp32"].calls,
        "beats": f"{len(images)} DS1 training beats (held out from calibration), cycled",
        "note": args.note,
        "machine": machine_info(),
        "versions": package_versions("torch", "onnxruntime", "ai-edge-litert", "litert-torch", "onnx", "nncf", "numpy"),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
