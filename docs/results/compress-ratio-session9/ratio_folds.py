"""Pruned copies of the five DS1 fold models against their sources, out of fold, pooled over all DS1.

    python docs/results/compress-ratio-session9/ratio_folds.py CV_RUNS COPIES DATA_DIR --ratios 0.5 0.375 0.25 --seeds 0 1 -o ratio-folds.json
    # CV_RUNS/cv-n8k-f{fold}-s0 (the sources), COPIES/p{ratio}-f{fold}-k{seed} (their pruned copies)

Each model is scored on its own validation fold (patients its source never trained on), so the
five folds together classify every DS1 beat once. The primary figure (PROTOCOL.md): the copies'
pooled S F1 and V F1 (4-class headline, N S V F) minus the sources', in points, mean over the
fine-tuning seeds. Beside it: agreement and the share of the source's calls the copy keeps.
"""

import argparse
import json

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.evaluate.metrics import aami_metrics
from ecgedge.validate.scoring import predict

ap = argparse.ArgumentParser()
ap.add_argument("sources")
ap.add_argument("copies")
ap.add_argument("data_dir")
ap.add_argument("--ratios", nargs="+", required=True)
ap.add_argument("--seeds", nargs="+", type=int, required=True)
ap.add_argument("-o", "--output", required=True)
args = ap.parse_args()


def pooled(preds_per_fold: list) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([p.labels for p in preds_per_fold]), np.concatenate([p.preds for p in preds_per_fold])


def headline(y: np.ndarray, p: np.ndarray) -> dict:
    m = aami_metrics(y, p)
    four = m["four_class"]
    return {"macro_f1_nsvf": four["macro_f1"], "kappa4": four["kappa"], **{f"f1_{c}": four["f1"][c] for c in "NSVF"},
            "sveb_se": m["ec57"]["sveb"]["se"], "sveb_ppv": m["ec57"]["sveb"]["ppv"]}


source = [predict(f"{args.sources}/cv-n8k-f{f}-s0", "val", args.data_dir) for f in range(5)]
assert len(np.unique(np.concatenate([p.index for p in source]))) == sum(len(p.index) for p in source)  # folds are disjoint
y, pf = pooled(source)
src = headline(y, pf)
out: dict = {"beats": int(len(y)), "source": src, "copies": {}}
print("source", json.dumps(src), flush=True)
for r in args.ratios:
    per_seed = []
    for k in args.seeds:
        copies = [predict(f"{args.copies}/p{r}-f{f}-k{k}", "val", args.data_dir) for f in range(5)]
        assert all(np.array_equal(c.index, s.index) for c, s in zip(copies, source))
        _, pq = pooled(copies)
        row = headline(y, pq)
        row["seed"] = k
        row["d_f1_S_points"] = 100 * (row["f1_S"] - src["f1_S"])
        row["d_f1_V_points"] = 100 * (row["f1_V"] - src["f1_V"])
        row["agreement"] = float((pf == pq).mean())
        for i, c in enumerate(AAMI_CLASSES[:4]):
            row[f"kept_{c}"] = float(((pq == i) & (pf == i)).sum() / max((pf == i).sum(), 1))
        row["per_fold_d_f1_S_points"] = [
            100 * (headline(c.labels, c.preds)["f1_S"] - headline(s.labels, s.preds)["f1_S"]) for c, s in zip(copies, source)
        ]
        per_seed.append(row)
        print(f"p{r} k{k}", json.dumps(row), flush=True)
    keys = [k for k, v in per_seed[0].items() if isinstance(v, float)]
    mean = {k: float(np.mean([s[k] for s in per_seed])) for k in keys}
    sd = {k: float(np.std([s[k] for s in per_seed], ddof=1)) if len(per_seed) > 1 else 0.0 for k in keys}
    out["copies"][r] = {"per_seed": per_seed, "mean": mean, "sd": sd}
    print(f"p{r} mean dS {mean['d_f1_S_points']:+.2f} dV {mean['d_f1_V_points']:+.2f} agreement {mean['agreement']:.4f} kept S {mean['kept_S']:.3f}", flush=True)
json.dump(out, open(args.output, "w"), indent=1)
