"""Training vs gateway preprocessing at the reference R peaks: zero-phase vs causal high-pass.

Training cut beats from ``sosfiltfilt`` (zero phase, whole record) before preprocessing version 3;
the gateway can only run ``sosfilt`` (causal, state carried), which training now uses too. Same Butterworth filter, same windows (reference R peaks),
same rhythm features, same image function: the only difference is the filter. Per record and over
the set: the share of beats whose uint8 image differs at all, the max and mean absolute pixel
difference, and, with a model, the share of beats classified the same way from both images and
the AAMI metrics of each (``ecgedge.evaluate.aami_metrics``).

    PYTHONPATH=src python benchmarks/filter_gap.py MODEL --data-dir ../shared/data/mitdb --records DS2 -o docs/results/ec57/filter-gap.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ecgedge.data.beats import extract_beats
from ecgedge.data.records import read_record
from ecgedge.evaluate import aami_metrics
from ecgedge.evaluate.stream_ec57 import parse_record_set
from ecgedge.firmware_host.filters import highpass as causal_highpass
from ecgedge.firmware_host.stream import preprocess_of
from ecgedge.preprocess import beats_to_images
from ecgedge.firmware_host.runtime import load_runtime


def causal_windows(signal: np.ndarray, samples: np.ndarray, pre) -> np.ndarray:
    """Windows at ``samples`` of the causally high-passed record (what the gateway's filter gives)."""
    filt = causal_highpass(pre.fs, pre.highpass_hz, pre.highpass_order)(signal.astype(np.float64)).astype(np.float32)
    index = (samples - pre.window.before)[:, None] + np.arange(pre.window.length)
    return filt[index]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--records", default="DS2")
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    rt = load_runtime(args.model)
    pre = preprocess_of(rt)
    per_record, labels, pz, pc = {}, [], [], []
    diff_any = n_total = 0
    max_diff, sum_abs, n_px = 0, 0.0, 0
    t0 = time.perf_counter()
    for name in parse_record_set(args.records):
        rec = read_record(args.data_dir, name)
        beats = extract_beats(rec, replace(pre, highpass_causal=False))  # zero-phase windows (training before preprocess v3)
        img_z = beats_to_images(beats.windows, pre)
        img_c = beats_to_images(causal_windows(rec.signal, beats.samples, pre), pre)
        d = np.abs(img_z.astype(np.int16) - img_c.astype(np.int16))
        per_beat_max = d.reshape(len(d), -1).max(axis=1)
        yz = rt.predict(img_z, beats.rr).argmax(1)
        yc = rt.predict(img_c, beats.rr).argmax(1)
        per_record[name] = {
            "beats": int(len(d)),
            "images_differ": float(np.mean(per_beat_max > 0)),
            "max_pixel_diff": int(d.max()) if d.size else 0,
            "mean_abs_pixel_diff": float(d.mean()) if d.size else 0.0,
            "agreement": float(np.mean(yz == yc)),
        }
        diff_any += int(np.sum(per_beat_max > 0))
        n_total += len(d)
        max_diff = max(max_diff, int(d.max()) if d.size else 0)
        sum_abs += float(d.sum())
        n_px += d.size
        labels.append(beats.labels.astype(np.int64)), pz.append(yz), pc.append(yc)
        print(name, per_record[name], flush=True)
    y, yz, yc = np.concatenate(labels), np.concatenate(pz), np.concatenate(pc)
    mz, mc = aami_metrics(y, yz), aami_metrics(y, yc)
    out = {
        "model": str(args.model),
        "records": list(per_record),
        "what": "images at the reference R peaks from the zero-phase (training) vs causal (gateway) high-pass; same windows, rhythm features, image function",
        "beats": n_total,
        "images_differ": diff_any / n_total,
        "max_pixel_diff": max_diff,
        "mean_abs_pixel_diff": sum_abs / n_px,
        "agreement": float(np.mean(yz == yc)),
        "disagreements": int(np.sum(yz != yc)),
        "zero_phase": {"macro_f1_4": mz["four_class"]["macro_f1"], "ec57": mz["ec57"], "accuracy": mz["accuracy"]},
        "causal": {"macro_f1_4": mc["four_class"]["macro_f1"], "ec57": mc["ec57"], "accuracy": mc["accuracy"]},
        "seconds": time.perf_counter() - t0,
        "per_record": per_record,
    }
    text = json.dumps(out, indent=1)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    print(json.dumps({k: v for k, v in out.items() if k != "per_record"}, indent=1))


if __name__ == "__main__":
    main()
