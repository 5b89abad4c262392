"""Out-of-fold retention of the float models' calls by their pruned copies, pooled over the five DS1 folds.

    python docs/results/compress-classweighted-session8/retention_folds.py CV_RUNS COPIES DATA_DIR --variants base allN -o retention-folds.json
    # CV_RUNS/cv-n8k-f{fold}-s0 (the sources), COPIES/{variant}-f{fold} (their pruned copies)

Each copy is scored on its own validation fold (patients its source never trained on); pooling the
five folds covers every DS1 beat. Labels are not used. See PROTOCOL.md, third comparison.
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
ap.add_argument("-o", "--output", required=True)
args = ap.parse_args()
S = AAMI_CLASSES.index("S")
source = [predict(f"{args.sources}/cv-n8k-f{f}-s0", "val", args.data_dir) for f in range(5)]
assert len(np.unique(np.concatenate([p.index for p in source]))) == sum(len(p.index) for p in source)  # folds are disjoint
pf = np.concatenate([p.preds for p in source])
out: dict = {"beats": int(len(pf))}
for v in args.variants:
    copies = [predict(f"{args.copies}/{v}-f{f}", "val", args.data_dir) for f in range(5)]
    assert all(np.array_equal(c.index, s.index) for c, s in zip(copies, source))
    pq = np.concatenate([c.preds for c in copies])
    row = {"agreement": float((pf == pq).mean())}
    for i, c in enumerate(AAMI_CLASSES[:4]):
        row[f"source_{c}_calls"], row[f"copy_{c}_calls"] = int((pf == i).sum()), int((pq == i).sum())
        row[f"retention_{c}"] = float(((pq == i) & (pf == i)).sum() / max((pf == i).sum(), 1))
    row["per_fold_retention_S"] = [float(((c.preds == S) & (s.preds == S)).sum() / max((s.preds == S).sum(), 1)) for c, s in zip(copies, source)]
    out[v] = row
    print(v, json.dumps(row), flush=True)
json.dump(out, open(args.output, "w"), indent=1)
