"""How often the main job's int8 copy calls S on the DS1 validation patients, against its float source.

    python docs/results/main-job-session7/s_calls.py RUNS DATA_DIR -o s_calls.json   # RUNS/pipeline-s{0..4}

Label-free apart from the counts of S beats found: only the DS1 validation beats are read.
"""

import argparse
import json

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.validate.scoring import predict

S = AAMI_CLASSES.index("S")
STEM = "quick-resnet18-inter-patient"

ap = argparse.ArgumentParser()
ap.add_argument("runs")
ap.add_argument("data_dir")
ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
ap.add_argument("-o", "--output", required=True)
args = ap.parse_args()
out = {}
for s in args.seeds:
    base = f"{args.runs}/pipeline-s{s}"
    f = predict(f"{base}/{STEM}", "val", args.data_dir)
    q = predict(f"{base}/exports/{STEM}-prune50-qat/{STEM}-prune50-qat-int8.onnx", "val", args.data_dir)
    y, pf, pq = np.asarray(f.labels), np.asarray(f.preds), np.asarray(q.preds)
    assert np.array_equal(y, np.asarray(q.labels))
    out[s] = {
        "beats": int(len(y)), "S_beats": int((y == S).sum()),
        "float_S_calls": int((pf == S).sum()), "int8_S_calls": int((pq == S).sum()),
        "float_S_found": int(((pf == S) & (y == S)).sum()), "int8_S_found": int(((pq == S) & (y == S)).sum()),
        "agreement": float((pf == pq).mean()),
        "int8_keeps_float_S_calls": float(((pq == S) & (pf == S)).sum() / max((pf == S).sum(), 1)),
    }  # fmt: skip
    print(s, out[s], flush=True)
json.dump(out, open(args.output, "w"), indent=1)
