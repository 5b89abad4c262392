"""Gateway throughput on this host: streams per core in real time, beats/s, latency, memory per stream.

Many streams (segments of DS2 records, round-robin in ``--chunk-s`` chunks, as a gateway's
network loop would deliver them) go through one :class:`~ecgedge.firmware_host.stream.Gateway`
in one thread (the runtime limited to one thread). Per model file:

* ``streams_per_core``: seconds of ECG processed per wall second, over all streams; the number
  of real-time streams one core sustains if it does nothing else;
* ``beats_per_s``; ``model_share``: the share of wall time inside ``runtime.predict`` (the rest is
  filtering, QRS detection, windows, rhythm features, spectrograms, batching, events);
* ``latency_s``: R peak to event in stream time (detector lookahead, next R peak, window end,
  batching wait; add the processing time per chunk for wall-clock latency), median and p99;
* ``memory_per_stream_bytes``: Python heap held per stream after the run has warmed up
  (``tracemalloc``: filter state, sample buffers, peak history), model excluded.

Medians of ``--repeats`` runs.

    PYTHONPATH=src python benchmarks/bench_gateway.py MODEL [MODEL...] --data-dir ../shared/data/mitdb -o benchmarks/results/gateway.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np

from ecgedge.data.aami import DS2
from ecgedge.data.records import read_record
from ecgedge.firmware_host.beats import BeatCutter
from ecgedge.firmware_host.sinks import ListSink
from ecgedge.firmware_host.stream import Gateway, preprocess_of
from ecgedge.firmware_host.runtime import load_runtime


class TimedRuntime:
    """Wraps a runtime and adds up the wall time spent in ``predict``."""

    def __init__(self, rt):
        self.rt, self.seconds = rt, 0.0

    def __getattr__(self, name):
        return getattr(self.rt, name)

    def predict(self, images, rr=None):
        t = time.perf_counter()
        out = self.rt.predict(images, rr)
        self.seconds += time.perf_counter() - t
        return out


def run_once(rt, signals: list[np.ndarray], fs: float, chunk_s: float, batch_size: int, max_wait_s: float) -> dict:
    timed = TimedRuntime(rt)
    sink = ListSink()
    gw = Gateway(timed, sink, batch_size=batch_size, max_wait_s=max_wait_s, model="bench")
    chunk = int(round(chunk_s * fs))
    n = min(len(s) for s in signals)
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        for k, s in enumerate(signals):
            gw.push(f"s{k}", s[start : start + chunk])
    gw.close()
    wall = time.perf_counter() - t0
    beats = sink.beats()
    lat = np.array([e["latency_s"] for e in beats])
    return {
        "wall_s": wall,
        "signal_s": len(signals) * n / fs,
        "beats": len(beats),
        "streams_per_core": len(signals) * n / fs / wall,
        "beats_per_s": len(beats) / wall,
        "model_share": timed.seconds / wall,
        "latency_median_s": float(np.median(lat)),
        "latency_p99_s": float(np.percentile(lat, 99)),
    }


def memory_per_stream(pre, signals: list[np.ndarray], fs: float, chunk_s: float, warm_s: float = 400.0) -> float:
    """Heap bytes per stream of the per-stream state (cutter + detector), after ``warm_s`` of signal."""
    chunk = int(round(chunk_s * fs))
    stop = int(warm_s * fs)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    cutters = [BeatCutter(f"s{k}", pre) for k in range(len(signals))]
    for start in range(0, stop, chunk):
        for c, s in zip(cutters, signals):
            c.feed(s[start : start + chunk])
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return held / len(cutters)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--streams", type=int, default=44, help="streams (DS2 record segments, reused in turn)")
    ap.add_argument("--seconds", type=float, default=120.0, help="seconds of signal per stream")
    ap.add_argument("--chunk-s", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-wait-s", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    fs = 360.0
    n = int(args.seconds * fs)
    records = [read_record(args.data_dir, r).signal.astype(np.float64) for r in DS2]
    # stream k: record k mod 22, starting at a different offset for each pass over the records
    signals = [records[k % len(records)][(k // len(records)) * n : (k // len(records) + 1) * n] for k in range(args.streams)]
    out = {
        "host": {"machine": platform.machine(), "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()},
        "setup": {k: getattr(args, k) for k in ("streams", "seconds", "chunk_s", "batch_size", "max_wait_s", "repeats")},
        "models": {},
    }
    for path in args.models:
        rt = load_runtime(path, num_threads=1)
        runs = [run_once(rt, signals, fs, args.chunk_s, args.batch_size, args.max_wait_s) for _ in range(args.repeats)]
        med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
        med["format"], med["precision"], med["runs"] = rt.format, rt.precision, runs
        out["models"][path.name] = med
        print(path.name, {k: round(v, 3) for k, v in med.items() if isinstance(v, float)}, flush=True)
    pre = preprocess_of(load_runtime(args.models[0]))
    out["memory_per_stream_bytes"] = memory_per_stream(pre, signals[: min(len(signals), 22)], fs, args.chunk_s)
    out["host"]["load_avg_at_end"] = os.getloadavg()
    print("memory per stream (bytes):", round(out["memory_per_stream_bytes"]))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
