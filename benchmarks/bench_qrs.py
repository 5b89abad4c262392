"""Throughput of the streaming QRS detector (filters + quality tracking + decisions), one core.

    PYTHONPATH=src python benchmarks/bench_qrs.py --data-dir ../shared/data/mitdb \\
        [--records 100,105,119,203,208] [--chunk-s 0.1,1,10] [--repeats 5] [--note "..."]

Each record's lead MLII (30 min at 360 Hz) is streamed from its first sample through a fresh
:class:`ecgedge.firmware_host.QrsDetector` in chunks of ``--chunk-s`` seconds; the wall time of all
``process`` / ``flush`` calls is measured ``--repeats`` times (records interleaved, so a background
load drifts over all of them alike). Reported per chunk size: the median over repeats of samples/s
per core (all records together), the real-time factor (samples/s / 360: how many real-time
streams one core could detect QRS on, before the classifier), and the median cost of one
``process`` call. JSON: benchmarks/results/qrs.json.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from ecgedge.data.records import read_record  # noqa: E402
from ecgedge.firmware_host import QrsDetector  # noqa: E402
from ecgedge.machine import machine_info  # noqa: E402


def stream_once(signal: np.ndarray, chunk: int) -> tuple[float, int, list[float]]:
    det = QrsDetector()
    per_call = []
    n_beats = 0
    t_all = time.perf_counter()
    for start in range(0, len(signal), chunk):
        t = time.perf_counter()
        n_beats += len(det.process(signal[start : start + chunk]))
        per_call.append(time.perf_counter() - t)
    n_beats += len(det.flush())
    return time.perf_counter() - t_all, n_beats, per_call


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ECGEDGE_DATA_DIR", "../shared/data/mitdb")))
    ap.add_argument("--records", default="100,105,119,203,208")
    ap.add_argument("--chunk-s", default="0.1,1,10")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--note", default="")
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results" / "qrs.json")
    args = ap.parse_args()

    load_start = os.getloadavg()
    names = args.records.split(",")
    signals = {n: read_record(args.data_dir, n).signal for n in names}
    fs = 360
    stream_once(signals[names[0]][: 60 * fs], fs)  # warm-up: imports, caches
    results = []
    for chunk_s in [float(c) for c in args.chunk_s.split(",")]:
        chunk = max(1, int(round(chunk_s * fs)))
        rates, calls = [], []
        beats = 0
        for _ in range(args.repeats):
            total_t, total_n = 0.0, 0
            for n in names:
                t, b, per_call = stream_once(signals[n], chunk)
                total_t += t
                total_n += len(signals[n])
                calls += per_call
                beats = b if n == names[-1] else beats
            rates.append(total_n / total_t)
        med = float(np.median(rates))
        row = {
            "chunk_s": chunk_s,
            "samples_per_s_per_core": med,
            "samples_per_s_runs": rates,
            "realtime_factor": med / fs,
            "process_call_median_ms": 1e3 * float(np.median(calls)),
            "process_call_p99_ms": 1e3 * float(np.percentile(calls, 99)),
        }
        results.append(row)
        print(f"chunk {chunk_s:5.2f} s: {med / 1e6:.2f} M samples/s per core = {med / fs:,.0f}x real time; "
              f"process() median {row['process_call_median_ms']:.3f} ms, p99 {row['process_call_p99_ms']:.3f} ms", flush=True)
    out = {
        "what": "ecgedge.firmware_host.QrsDetector streaming throughput, one process, one thread",
        "records": names,
        "samples_per_record": {n: int(len(s)) for n, s in signals.items()},
        "fs": fs,
        "repeats": args.repeats,
        "results": results,
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "note": args.note,
        "machine": machine_info(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", args.output)


if __name__ == "__main__":
    sys.exit(main())
