"""Where on DS2 the main job's int8 copy finds fewer S beats than its float model: per record, per seed.

    python docs/results/compress-ratio-session9/ds2_s_records.py DATA_DIR OUT_S0 OUT_S1 ... --without 232 -o ds2-s-records.json
    # OUT_Sk: `ecgedge pipeline --seed k -o OUT_Sk` (its float run and the int8 ONNX of its compressed run)

A report after the fact (DS2 labels); nothing is chosen on it. ``--without``: records left out of
a second S F1, to show how much of the float-int8 gap one patient carries.
"""

import argparse
import json

import numpy as np

from ecgedge import run_dirs
from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.data.run_data import run_dataset
from ecgedge.evaluate.metrics import aami_metrics
from ecgedge.validate.scoring import predict

S = AAMI_CLASSES.index("S")
STEM = "quick-resnet18-inter-patient"

ap = argparse.ArgumentParser()
ap.add_argument("data_dir")
ap.add_argument("pipeline_outs", nargs="+")
ap.add_argument("--without", nargs="*", default=[])
ap.add_argument("-o", "--output", required=True)
args = ap.parse_args()


def f1(y: np.ndarray, p: np.ndarray) -> dict:
    four = aami_metrics(y, p)["four_class"]["f1"]
    return {"S": four["S"], "V": four["V"]}


out = {"without": args.without, "seeds": {}}
for path in args.pipeline_outs:
    run = f"{path}/{STEM}"
    f = predict(run, "DS2", args.data_dir)
    q = predict(f"{path}/exports/{STEM}-prune50-qat/{STEM}-prune50-qat-int8.onnx", "DS2", args.data_dir)
    assert np.array_equal(f.index, q.index)
    config = run_dirs.read_config(run)
    records = run_dataset(config, args.data_dir).records[f.index]
    y, pf, pq = f.labels, f.preds, q.preds
    rows = {}
    for r in np.unique(records):
        m = records == r
        s = m & (y == S)
        row = {"S_beats": int(s.sum()), "float_S_found": int((pf[s] == S).sum()), "int8_S_found": int((pq[s] == S).sum()),
               "float_S_false": int((m & (y != S) & (pf == S)).sum()), "int8_S_false": int((m & (y != S) & (pq == S)).sum())}
        if any(row.values()):
            rows[str(r)] = row
    keep = ~np.isin(records, args.without)
    seed = {
        "records": rows,
        "total": {k: sum(v[k] for v in rows.values()) for k in next(iter(rows.values()))},
        "f1_float": f1(y, pf), "f1_int8": f1(y, pq),
        "f1_float_without": f1(y[keep], pf[keep]), "f1_int8_without": f1(y[keep], pq[keep]),
    }
    out["seeds"][str(config["train"]["seed"])] = seed
    lost = {r: v["float_S_found"] - v["int8_S_found"] for r, v in rows.items()}
    print(f"seed {config['train']['seed']}: S found float {seed['total']['float_S_found']} int8 {seed['total']['int8_S_found']}; "
          f"fewer found by int8, by record: {dict(sorted(((r, d) for r, d in lost.items() if d), key=lambda kv: -abs(kv[1])))}; "
          f"S F1 float {seed['f1_float']['S']:.3f} int8 {seed['f1_int8']['S']:.3f}; without {args.without}: "
          f"{seed['f1_float_without']['S']:.3f} / {seed['f1_int8_without']['S']:.3f}", flush=True)
out["int8_minus_float_points"] = {
    f"{k}{w}": {"per_seed": [100 * (s[f'f1_int8{w}'][k] - s[f'f1_float{w}'][k]) for s in out["seeds"].values()]}
    for w in ("", "_without") for k in ("S", "V")
}
for v in out["int8_minus_float_points"].values():
    v["mean"], v["sd"] = float(np.mean(v["per_seed"])), float(np.std(v["per_seed"], ddof=1)) if len(v["per_seed"]) > 1 else 0.0
print(json.dumps(out["int8_minus_float_points"]))
json.dump(out, open(args.output, "w"), indent=1)
