#!/usr/bin/env python3
"""Cross-validated comparison of configurations over the patient folds of DS1 (no DS2 involved).

    python scripts/cv_table.py RUNS_DIR [-o table.json]

Runs named ``CONFIG-fFOLD-sSEED`` (``ecgedge train --val-fold FOLD``, scored on ``val`` by
scripts/run_grid.py --sets val) are grouped by CONFIG. Each fold's model classified only patients it
never saw, so pooling the five folds' validation predictions gives one out-of-fold prediction for
every DS1 beat: its 4-class (N, S, V, F) macro-F1 is the criterion; per-fold figures (mean ± sd)
and pooled S/V F1 and kappa are reported beside it.
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
    return {"beats": len(idx), "macro_f1_4": h["macro_f1_4"], "kappa_4": h["kappa_4"], "f1_S": m["per_class"]["S"]["f1"], "f1_V": m["per_class"]["V"]["f1"],
            "f1_F": m["per_class"]["F"]["f1"], "sveb_se": h["sveb_se"], "sveb_ppv": h["sveb_ppv"], "veb_se": h["veb_se"], "veb_ppv": h["veb_ppv"]}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("-o", "--output", type=Path)
    a = ap.parse_args()
    groups: dict[str, list[Path]] = defaultdict(list)
    for run in sorted(a.runs.iterdir()):
        m = NAME.match(run.name)
        if m and (run / "predictions_val.npz").is_file():
            groups[m["config"]].append(run)
    table = {}
    for config, runs in groups.items():
        per_fold = {}
        for run in runs:
            v = json.loads((run / "metrics_val.json").read_text())
            hist = json.loads((run / "history.json").read_text())
            per_fold[NAME.match(run.name)["fold"]] = {"val_macro_f1_4": headline(v)["macro_f1_4"], "last_epoch_val_macro_f1": hist[-1]["val_macro_f1"], "epochs": len(hist)}
        f1s = [f["val_macro_f1_4"] for f in per_fold.values()]
        table[config] = {
            "folds": sorted(per_fold),
            "pooled_out_of_fold": pooled(runs),
            "per_fold_macro_f1_4_mean": statistics.mean(f1s),
            "per_fold_macro_f1_4_sd": statistics.stdev(f1s) if len(f1s) > 1 else None,
            "per_fold": per_fold,
        }
    text = json.dumps(table, indent=1)
    if a.output:
        a.output.write_text(text + "\n")
    print(text)
    for config, t in table.items():
        p = t["pooled_out_of_fold"]
        print(f"{config}: folds {','.join(t['folds'])}: pooled macro-F1 (N,S,V,F) {p['macro_f1_4']:.4f}, kappa {p['kappa_4']:.4f}, F1 S {p['f1_S']:.3f} V {p['f1_V']:.3f}; "
              f"per fold {t['per_fold_macro_f1_4_mean']:.4f} ± {t['per_fold_macro_f1_4_sd'] or 0:.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
