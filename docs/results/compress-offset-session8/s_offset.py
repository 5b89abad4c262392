"""A label-free S-logit offset for the main job's int8 copy: leave-one-patient-out on DS1 validation.

    python docs/results/compress-offset-session8/s_offset.py RUNS DATA_DIR -o s_offset.json   # RUNS/pipeline-s{0..4}

See PROTOCOL.md beside this file: the rule was written before this ran. DS2 is scored only in
the report part (--ds2), after the rule has decided.
"""

import argparse
import json

import numpy as np

from ecgedge import run_dirs
from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.data.run_data import run_dataset
from ecgedge.evaluate import aami_metrics
from ecgedge.report.efficiency import headline
from ecgedge.validate.scoring import predict

S = AAMI_CLASSES.index("S")
STEM = "quick-resnet18-inter-patient"
GRID = np.round(np.arange(0, 5.0001, 0.01), 2)


def fit_offset(float_logits: np.ndarray, int8_logits: np.ndarray) -> float:
    """Smallest delta added to the copy's S logit whose S-call count reaches the source's."""
    target = int((float_logits.argmax(1) == S).sum())
    shifted = int8_logits.copy()
    for d in GRID:
        shifted[:, S] = int8_logits[:, S] + d
        if int((shifted.argmax(1) == S).sum()) >= target:
            return float(d)
    return float(GRID[-1])


def with_offset(logits: np.ndarray, d: float) -> np.ndarray:
    out = logits.copy()
    out[:, S] += d
    return out


def compare(pf: np.ndarray, pq: np.ndarray) -> dict:
    return {
        "float_S_calls": int((pf == S).sum()), "int8_S_calls": int((pq == S).sum()),
        "retention_S": float(((pq == S) & (pf == S)).sum() / max((pf == S).sum(), 1)),
        "agreement": float((pf == pq).mean()),
    }  # fmt: skip


def scores(labels: np.ndarray, preds: np.ndarray) -> dict:
    m = aami_metrics(labels, preds)
    h = headline(m)
    return {"f1_S": m["per_class"]["S"]["f1"], "f1_V": m["per_class"]["V"]["f1"], "sveb_se": h["sveb_se"], "sveb_ppv": h["sveb_ppv"], "macro_f1_4": h["macro_f1_4"], "kappa_4": h["kappa_4"]}


ap = argparse.ArgumentParser()
ap.add_argument("runs")
ap.add_argument("data_dir")
ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
ap.add_argument("--ds2", action="store_true", help="the report part: delta fitted on all validation patients, applied on DS2")
ap.add_argument("-o", "--output", required=True)
args = ap.parse_args()
out = {}
for s in args.seeds:
    base = f"{args.runs}/pipeline-s{s}"
    int8 = f"{base}/exports/{STEM}-prune50-qat/{STEM}-prune50-qat-int8.onnx"
    f, q = predict(f"{base}/{STEM}", "val", args.data_dir), predict(int8, "val", args.data_dir)
    assert np.array_equal(f.index, q.index)
    patients = run_dataset(run_dirs.read_config(f"{base}/{STEM}"), args.data_dir).records[f.index]
    held_out = np.empty_like(q.logits)
    deltas = {}
    for p in np.unique(patients):
        fit = patients != p
        deltas[str(p)] = fit_offset(f.logits[fit], q.logits[fit])
        held_out[~fit] = with_offset(q.logits[~fit], deltas[str(p)])
    row = {"deltas_leave_one_patient_out": deltas, "before": compare(f.preds, q.preds), "after": compare(f.preds, held_out.argmax(1))}
    if args.ds2:
        d_all = fit_offset(f.logits, q.logits)
        f2, q2 = predict(f"{base}/{STEM}", "DS2", args.data_dir), predict(int8, "DS2", args.data_dir)
        row["ds2"] = {"delta_all_val_patients": d_all, "float": scores(f2.labels, f2.preds), "int8": scores(q2.labels, q2.preds),
                      "int8_with_offset": scores(q2.labels, with_offset(q2.logits, d_all).argmax(1))}  # fmt: skip
    out[s] = row
    print(s, json.dumps(row), flush=True)
seeds = list(out)
out["summary"] = {f"{when}_{k}_mean": float(np.mean([out[s][when][k] for s in seeds])) for when in ("before", "after") for k in ("retention_S", "agreement")}
json.dump(out, open(args.output, "w"), indent=1)
print(json.dumps(out["summary"]))
