#!/usr/bin/env python3
"""Cross-validated comparison of configurations over the patient folds of DS1 (no DS2 involved).

    python scripts/cv_table.py RUNS_DIR [-o table.json]

Runs named ``CONFIG-fFOLD-sSEED`` (``ecgedge train --val-fold FOLD``, scored on ``val`` by
scripts/run_grid.py --sets val) are grouped by CONFIG and SEED. Each fold's model classified only
patients it never saw, so pooling the five folds' validation predictions gives one out-of-fold
prediction for every DS1 beat: its 4-class (N, S, V, F) macro-F1 is the criterion; per-fold figures
(mean ± sd), pooled S/V F1, kappa and the macro-F1 over N, S, V (DS1's F beats are nearly all one
patient, record 208) are reported beside it. A configuration run with several seeds gets one
pooled figure per seed and their mean ± sd (``over_seeds``).
"""

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from ecgedge.evaluate import aami_metrics
from ecgedge.report.efficiency import headline

NAME = re.compile(r"^(?P<config>.+)-f(?P<fold>\d+)-s(?P<seed>\d+)$")


def pooled(runs: list[Path]) -> dict:
    idx, labels, preds = [], [], []
    for run in runs:
        with np.load(run / "predictions_val.npz") as z:
            idx.append(z["index"]), labels.append(z["labels"]), preds.append(z["preds"])
    idx = np.concatenate(idx)
    if len(np.unique(idx)) != len(idx):
        raise SystemExit(f"folds overlap: {[r.name for r in runs]}")
    m = aami_metrics(np.concatenate(labels), np.concatenate(preds))
    h = headline(m)
    f1 = m["four_class"]["f1"]
    return {"beats": len(idx), "macro_f1_4": h["macro_f1_4"], "macro_f1_nsv": statistics.mean(f1[c] for c in "NSV"), "kappa_4": h["kappa_4"],
            "f1_S": m["per_class"]["S"]["f1"], "f1_V": m["per_class"]["V"]["f1"], "f1_F": m["per_class"]["F"]["f1"],
            "sveb_se": h["sveb_se"], "sveb_ppv": h["sveb_ppv"], "veb_se": h["veb_se"], "veb_ppv": h["veb_ppv"]}  # fmt: skip


def one_seed(runs: list[Path]) -> dict:
    per_fold = {}
    for run in runs:
        v = json.loads((run / "metrics_val.json").read_text())
        hist = json.loads((run / "history.json").read_text())
        per_fold[NAME.match(run.name)["fold"]] = {"val_macro_f1_4": headline(v)["macro_f1_4"], "last_epoch_val_macro_f1": hist[-1]["val_macro_f1"], "epochs": len(hist)}
    f1s = [f["val_macro_f1_4"] for f in per_fold.values()]
    return {
        "folds": sorted(per_fold),
        "pooled_out_of_fold": pooled(runs),
        "per_fold_macro_f1_4_mean": statistics.mean(f1s),
        "per_fold_macro_f1_4_sd": statistics.stdev(f1s) if len(f1s) > 1 else None,
        "per_fold": per_fold,
    }


def over_seeds(per_seed: dict[str, dict]) -> dict:
    """Mean and sd over seeds of each pooled figure (seeds whose five folds all finished)."""
    full = [t["pooled_out_of_fold"] for t in per_seed.values() if len(t["folds"]) == 5]
    if not full:
        return {}
    return {"seeds": len(full), **{k: {"mean": statistics.mean(p[k] for p in full), "sd": statistics.stdev(p[k] for p in full) if len(full) > 1 else None}
                                   for k in full[0] if k != "beats"}}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("-o", "--output", type=Path)
    a = ap.parse_args()
    groups: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for run in sorted(a.runs.iterdir()):
        m = NAME.match(run.name)
        if m and (run / "predictions_val.npz").is_file():
            groups[m["config"]][m["seed"]].append(run)
    per_config = {config: {seed: one_seed(runs) for seed, runs in sorted(seeds.items(), key=lambda kv: int(kv[0]))} for config, seeds in groups.items()}
    # one seed: the layout of the single-seed tables written before (docs/results/cv-2026-11-28)
    table = {config: next(iter(per_seed.values())) if len(per_seed) == 1 else {"per_seed": per_seed, "over_seeds": over_seeds(per_seed)}
             for config, per_seed in per_config.items()}  # fmt: skip
    text = json.dumps(table, indent=1)
    if a.output:
        a.output.write_text(text + "\n")
    print(text)
    for config, per_seed in per_config.items():
        for seed, t in per_seed.items():
            p = t["pooled_out_of_fold"]
            print(f"{config} seed {seed}: folds {','.join(t['folds'])}: pooled macro-F1 (N,S,V,F) {p['macro_f1_4']:.4f}, (N,S,V) {p['macro_f1_nsv']:.4f}, kappa {p['kappa_4']:.4f}, "
                  f"F1 S {p['f1_S']:.3f} V {p['f1_V']:.3f}; per fold {t['per_fold_macro_f1_4_mean']:.4f} ± {t['per_fold_macro_f1_4_sd'] or 0:.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
