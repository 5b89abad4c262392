"""The main job's compress + export steps on the five DS1 fold models: int8 against float, out of fold.

    python docs/results/compress-ratio-session9/int8_folds.py CV_RUNS QAT_EXPORTS DATA_DIR -o int8-folds.json
    # CV_RUNS/cv-n8k-f{fold}-s0 (the float sources), QAT_EXPORTS/f{fold}/f{fold}-int8.{onnx,tflite}

Each file is scored on its own fold's patients (its source never trained on them); pooled over the
five folds, every DS1 beat once. Item 6's figures (int8 minus float S F1 and V F1, points) on DS1
patients: PROTOCOL.md, addendum. A report: it decides nothing.
"""

import argparse
import json

import numpy as np

from ecgedge.evaluate.metrics import aami_metrics
from ecgedge.validate.scoring import predict

ap = argparse.ArgumentParser()
ap.add_argument("sources")
ap.add_argument("exports")
ap.add_argument("data_dir")
ap.add_argument("-o", "--output", required=True)
args = ap.parse_args()


def figures(y: np.ndarray, p: np.ndarray) -> dict:
    m = aami_metrics(y, p)
    four = m["four_class"]
    return {"macro_f1_nsvf": four["macro_f1"], "kappa4": four["kappa"], **{f"f1_{c}": four["f1"][c] for c in "NSVF"},
            **{f"{s}_{k}": m["ec57"][s][k] for s in ("sveb", "veb") for k in ("se", "ppv")}}


source = [predict(f"{args.sources}/cv-n8k-f{f}-s0", "val", args.data_dir) for f in range(5)]
y = np.concatenate([p.labels for p in source])
pf = np.concatenate([p.preds for p in source])
out: dict = {"beats": int(len(y)), "float": figures(y, pf), "per_fold_float": [figures(p.labels, p.preds) for p in source]}
for fmt in ("onnx", "tflite"):
    files = [predict(f"{args.exports}/f{f}/f{f}-int8.{fmt}", "val", args.data_dir) for f in range(5)]
    assert all(np.array_equal(c.index, s.index) for c, s in zip(files, source))
    pq = np.concatenate([c.preds for c in files])
    row = figures(y, pq)
    row["agreement"] = float((pf == pq).mean())
    row["minus_float_points"] = {k: 100 * (row[k] - out["float"][k]) for k in out["float"]}
    row["per_fold"] = [figures(c.labels, c.preds) for c in files]
    row["per_fold_minus_float_points"] = [
        {k: 100 * (c[k] - s[k]) for k in ("f1_S", "f1_V")} for c, s in zip(row["per_fold"], out["per_fold_float"])
    ]
    out[f"int8_{fmt}"] = row
    print(fmt, json.dumps(row["minus_float_points"]), f"agreement {row['agreement']:.4f}", flush=True)
json.dump(out, open(args.output, "w"), indent=1)
