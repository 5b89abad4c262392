"""Batch-1, single-thread latency of one run's exports: torch fp32, onnxruntime fp32/int8, LiteRT fp32/int8.

    python benchmarks/bench_runtimes.py --run-dir runs/pipeline/quick-resnet18-inter-patient \\
        [--exports DIR] [--data-dir ../shared/data/mitdb] [--calls 300]

Exports the run into --exports first when the files are not there (``ecgedge export --int8``).
Every runtime is timed through :func:`ecgedge.runtime.load_runtime` ``.predict`` on one real
uint8 beat at a time (DS1 training beats, never DS2), so each number includes what a gateway
pays per beat: uint8 -> float (-> int8 for full-integer TFLite), inference, dequantisation.
Runtimes are timed in interleaved rounds (each round: every runtime in turn), so a background
load drifts over all of them alike; reported: median and 90th percentile per call, beats/s =
1 / median. Also the top-1 agreement of each with torch on the beats used. JSON goes to
benchmarks/results/runtimes.json.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from machine import machine_info  # noqa: E402

from ecgedge.export import FORMATS, export_model  # noqa: E402
from ecgedge.export.calibration import calibration_data  # noqa: E402
from ecgedge.export.metadata import package_versions  # noqa: E402
from ecgedge.runtime import load_runtime  # noqa: E402
from ecgedge.train import runs  # noqa: E402


def exported_files(run_dir: Path, exports: Path, data_dir: Path | None) -> dict[str, Path]:
    want = {f"{fmt}-{p}": exports / f"{run_dir.name}-{p}{FORMATS[fmt].suffix}" for fmt in FORMATS for p in ("fp32", "int8")}
    if not all(p.is_file() for p in want.values()):
        export_model(run_dir, exports, formats=tuple(FORMATS), int8=True, data_dir=data_dir)
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
    ap.add_argument("--note", default="", help="Free text stored with the result (e.g. machine load).")
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results" / "runtimes.json")
    args = ap.parse_args()

    run_dir = args.run_dir.resolve()
    exports = (args.exports or run_dir / "exports").resolve()
    files = exported_files(run_dir, exports, args.data_dir)
    meta = runs.read_json(run_dir / runs.CONFIG)
    sample = calibration_data(meta, args.data_dir, n_calib=args.beats, n_check=args.beats).check
    images, rr = sample.images, sample.rr

    runtimes = {"torch-fp32": load_runtime(run_dir, num_threads=args.threads)}
    for name, path in files.items():
        runtimes[name] = load_runtime(path, num_threads=args.threads)
    use_rr = runtimes["torch-fp32"].rr_features

    reference = runtimes["torch-fp32"].predict(images, rr if use_rr else None).argmax(1)
    times: dict[str, list[float]] = {k: [] for k in runtimes}
    per_round = max(1, args.calls // args.rounds)
    for rt in runtimes.values():  # warm-up: allocator, kernel selection, XNNPACK packing
        for i in range(20):
            rt.predict(images[i % len(images)][None], rr[i % len(rr)][None] if use_rr else None)
    for r in range(args.rounds):
        for name, rt in runtimes.items():
            for j in range(per_round):
                i = (r * per_round + j) % len(images)
                x, q = images[i][None], (rr[i][None] if use_rr else None)
                t = time.perf_counter()
                rt.predict(x, q)
                times[name].append(time.perf_counter() - t)

    results = {}
    for name, rt in runtimes.items():
        ts = sorted(times[name])
        med = statistics.median(ts)
        preds = rt.predict(images, rr if use_rr else None).argmax(1)
        path = Path(rt.path)
        results[name] = {
            "backend": rt.backend,
            "file": str(path),
            "size_bytes": path.stat().st_size,
            "median_ms": round(med * 1e3, 4),
            "p90_ms": round(ts[int(0.9 * (len(ts) - 1))] * 1e3, 4),
            "beats_per_s": round(1.0 / med, 1),
            "top1_agreement_with_torch": float(np.mean(preds == reference)),
        }
        print(f"{name:12s} {results[name]['median_ms']:8.3f} ms  {results[name]['beats_per_s']:9.1f} beats/s  "
              f"{path.stat().st_size / 1e6:7.2f} MB  agree {results[name]['top1_agreement_with_torch']:.2%}")

    out = {
        "benchmark": "runtimes",
        "command": "python " + " ".join(sys.argv),
        "run_dir": str(run_dir),
        "arch": runtimes["torch-fp32"].metadata.get("arch"),
        "input": f"uint8 [1, {images.shape[1]}, {images.shape[2]}]" + (" + rr [1, 3]" if use_rr else ""),
        "batch": 1,
        "threads": args.threads,
        "timed_calls_per_runtime": per_round * args.rounds,
        "beats": f"{len(images)} DS1 training beats (held out from calibration), cycled",
        "note": args.note,
        "machine": machine_info(),
        "versions": package_versions("torch", "onnxruntime", "ai-edge-litert", "litert-torch", "onnx", "numpy"),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
