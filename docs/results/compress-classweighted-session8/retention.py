"""Per-class retention of a float source's calls by its compressed copies, on the DS1 validation patients.

    python docs/results/compress-classweighted-session8/retention.py SOURCES COPIES DATA_DIR --variants base cw -o retention.json
    # SOURCES/pipeline-s{seed}/quick-resnet18-inter-patient, COPIES/{variant}-s{seed}

Label-free: for each class, the share of the beats the source calls that class which the copy
calls the same (the copy "keeps" the call); agreement over all beats. See PROTOCOL.md beside this file.
"""

import argparse
import json

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.validate.scoring import predict

ap = argparse.ArgumentParser()
ap.add_argument("sources")
ap.add_argument("copies")
ap.add_argument("data_dir")
ap.add_argument("--variants", nargs="+", required=True)
ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
ap.add_argument("-o", "--output", required=True)
args = ap.parse_args()
out: dict = {v: {} for v in args.variants}
for s in args.seeds:
    pf = predict(f"{args.sources}/pipeline-s{s}/quick-resnet18-inter-patient", "val", args.data_dir).preds
    for v in args.variants:
        pq = predict(f"{args.copies}/{v}-s{s}", "val", args.data_dir).preds
        row = {"agreement": float((pf == pq).mean())}
        for i, c in enumerate(AAMI_CLASSES[:4]):
            row[f"source_{c}_calls"], row[f"copy_{c}_calls"] = int((pf == i).sum()), int((pq == i).sum())
            row[f"retention_{c}"] = float(((pq == i) & (pf == i)).sum() / max((pf == i).sum(), 1))
        out[v][s] = row
        print(v, s, json.dumps(row), flush=True)
for v in args.variants:
    rows = [out[v][s] for s in args.seeds]
    out[v]["mean"] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k == "agreement" or k.startswith("retention")}
    print(v, "mean", json.dumps(out[v]["mean"]))
json.dump(out, open(args.output, "w"), indent=1)
