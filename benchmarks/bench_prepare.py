"""Time `prepare` of DS1+DS2 (all 44 non-paced records) for each preset; write JSON.

    python benchmarks/bench_prepare.py --data-dir ../shared/data/mitdb [--presets edge,paper]

Reports end-to-end beats/s (checksums, reading, filtering, STFT images, cache writes, with one
worker per core), the STFT-image step alone on one core, and peak resident memory.
"""

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from ecgedge.machine import machine_info  # noqa: E402

from ecgedge.data.beats import extract_beats  # noqa: E402
from ecgedge.data.dataset import prepare_dataset  # noqa: E402
from ecgedge.data.records import read_record  # noqa: E402
from ecgedge.preprocess import beats_to_images, get_preset  # noqa: E402


def peak_rss_mib() -> dict:
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"main_process": round(self_kib / 1024, 1), "largest_worker": round(child_kib / 1024, 1)}


def image_step_rate(data_dir: Path, preset: str, repeats: int = 5) -> float:
    """Beats/s of beats_to_images alone, one thread, median of ``repeats`` on record 208."""
    from threadpoolctl import threadpool_limits

    cfg = get_preset(preset)
    windows = extract_beats(read_record(data_dir, "208"), cfg).windows
    if preset == "paper":
        windows = windows[:500]
    times = []
    with threadpool_limits(1):
        for _ in range(repeats):
            t = time.perf_counter()
            beats_to_images(windows, cfg)
            times.append(time.perf_counter() - t)
    return len(windows) / float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--presets", default="edge,paper")
    ap.add_argument("--workers", type=int, default=0, help="0: one per core")
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results" / "prepare.json")
    args = ap.parse_args()

    results = {"benchmark": "prepare", "machine": machine_info(), "presets": {}}
    for preset in args.presets.split(","):
        cfg = get_preset(preset)
        with tempfile.TemporaryDirectory(prefix="ecgedge-bench-") as cache:
            t = time.perf_counter()
            ds = prepare_dataset(args.data_dir, cfg, cache_root=Path(cache), workers=args.workers or None)
            seconds = time.perf_counter() - t
            n = len(ds)
            disk = sum(p.stat().st_size for p in Path(ds.path).iterdir())
        results["presets"][preset] = {
            "beats": n,
            "image_shape": list(cfg.spectrogram.image_size),
            "seconds": round(seconds, 2),
            "beats_per_s": round(n / seconds),
            "image_step_beats_per_s_1_thread": round(image_step_rate(args.data_dir, preset)),
            "cache_mib": round(disk / 2**20, 1),
        }
        print(preset, results["presets"][preset], flush=True)
    results["peak_rss_mib"] = peak_rss_mib()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
