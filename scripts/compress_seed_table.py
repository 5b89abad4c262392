#!/usr/bin/env python3
"""Float vs its compressed int8 copies over seeds: DS2 figures, their differences and agreement.

    python scripts/compress_seed_table.py --float RUNS/quick-base-s{seed} \\
        --compressed COMPRESS/quick-base-s{seed}-p50qat-agreement-e3 \\
        --int8 'EXPORTS/s{seed}/quick-base-s{seed}-p50qat-agreement-e3-int8' --seeds 0 1 2 -o table.json

``{seed}`` is filled in per seed. Each float run and compressed run holds ``metrics_DS2.json``,
``predictions_DS2.npz`` and ``predictions_val.npz`` (``ecgedge evaluate --split DS2|val``; without the latter, as in a
pipeline's runs, the validation agreement is left out); each
int8 stem has ``.onnx`` and ``.tflite`` files scored with ``ecgedge evaluate FILE --split DS2``.
"""

import argparse
import json
import os
import statistics as st

import numpy as np

KEYS = ("m4", "k4", "S", "V", "F", "sveb_se", "sveb_ppv", "veb_se", "veb_ppv")


def figures(path: str) -> dict:
    t = json.load(open(path))
    ec = t["ec57"]
    return {"m4": t["four_class"]["macro_f1"], "k4": t["four_class"]["kappa"], **{c: t["per_class"][c]["f1"] for c in "SVF"},
            "sveb_se": ec["sveb"]["se"], "sveb_ppv": ec["sveb"]["ppv"], "veb_se": ec["veb"]["se"], "veb_ppv": ec["veb"]["ppv"]}  # fmt: skip


def preds(path: str) -> np.ndarray:
    return np.load(path)["preds"]


def mean_sd(values) -> dict:
    values = list(values)
    return {"mean": st.fmean(values), "sd": st.stdev(values) if len(values) > 1 else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--float", dest="float_run", required=True)
    ap.add_argument("--compressed", required=True)
    ap.add_argument("--int8", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    per_seed = {}
    for s in a.seeds:
        run, comp, stem = (p.format(seed=s) for p in (a.float_run, a.compressed, a.int8))
        row = {"float": figures(f"{run}/metrics_DS2.json"), "compressed_torch": figures(f"{comp}/metrics_DS2.json")}
        reference = preds(f"{run}/predictions_DS2.npz")
        for fmt in ("onnx", "tflite"):
            row[f"int8_{fmt}"] = figures(f"{stem}.{fmt}.metrics.json")
            row[f"agreement_DS2_{fmt}_vs_float"] = float(np.mean(preds(f"{stem}.{fmt}.predictions_DS2.npz") == reference))
        if os.path.isfile(f"{comp}/predictions_val.npz"):  # a pipeline's runs are scored on DS2 only
            row["agreement_val_compressed_vs_float"] = float(np.mean(preds(f"{comp}/predictions_val.npz") == preds(f"{run}/predictions_val.npz")))
        per_seed[s] = row
    rows = list(per_seed.values())
    summary = {k: {m: mean_sd(r[k][m] for r in rows) for m in KEYS} for k in ("float", "compressed_torch", "int8_onnx", "int8_tflite")}
    for fmt in ("onnx", "tflite"):
        summary[f"delta_int8_{fmt}"] = {m: mean_sd(r[f"int8_{fmt}"][m] - r["float"][m] for r in rows) for m in KEYS}
    for k in ("agreement_DS2_onnx_vs_float", "agreement_DS2_tflite_vs_float", "agreement_val_compressed_vs_float"):
        if all(k in r for r in rows):
            summary[k] = mean_sd(r[k] for r in rows)
    json.dump({"per_seed": per_seed, "summary": summary}, open(a.output, "w"), indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
