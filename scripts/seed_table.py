#!/usr/bin/env python3
"""Mean ± sd over seeds of the runs in a directory (made by scripts/run_grid.py).

    python scripts/seed_table.py RUNS_DIR [-o table.json] [--markdown]

Runs named ``CONFIG-sSEED`` are grouped by CONFIG. For each: the validation figures (what a
configuration is chosen on: macro-F1 over the classes present in the DS1 validation records) and
the DS2 figures (what is reported): 4-class (N, S, V, F) macro-F1, kappa and jκ, F1 of S and V,
EC57 gross VEB / SVEB Se and +P, and the 5-class macro-F1, labelled as such.
"""

import argparse
import json
import re
import statistics
from pathlib import Path

FIELDS = {
    "val_macro_f1": lambda v, t: v["macro_f1"],
    "ds2_macro_f1_4": lambda v, t: t["four_class"]["macro_f1"],
    "ds2_kappa_4": lambda v, t: t["four_class"]["kappa"],
    "ds2_jk_4": lambda v, t: t["four_class"]["jk"],
    "ds2_f1_S": lambda v, t: t["per_class"]["S"]["f1"],
    "ds2_f1_V": lambda v, t: t["per_class"]["V"]["f1"],
    "ds2_f1_F": lambda v, t: t["per_class"]["F"]["f1"],
    "ds2_sveb_se": lambda v, t: t["ec57"]["sveb"]["se"],
    "ds2_sveb_ppv": lambda v, t: t["ec57"]["sveb"]["ppv"],
    "ds2_veb_se": lambda v, t: t["ec57"]["veb"]["se"],
    "ds2_veb_ppv": lambda v, t: t["ec57"]["veb"]["ppv"],
    "ds2_macro_f1_5": lambda v, t: t["macro_f1"],
    "ds2_jk_5": lambda v, t: t["jk"],
}


def load(run: Path) -> dict | None:
    val, test = run / "metrics_val.json", run / "metrics_DS2.json"
    if not (val.is_file() and test.is_file()):
        return None
    v, t = json.loads(val.read_text()), json.loads(test.read_text())
    row = {k: f(v, t) for k, f in FIELDS.items()}
    history = json.loads((run / "history.json").read_text()) if (run / "history.json").is_file() else []
    row["epochs_run"] = len(history)
    row["train_seconds"] = round(sum(h.get("seconds", 0) for h in history), 1)
    row["best_epoch"] = t.get("best_epoch")
    return row


def summarise(runs_dir: Path) -> dict:
    groups: dict[str, dict[int, dict]] = {}
    for run in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        m = re.fullmatch(r"(.+)-s(\d+)", run.name)
        row = load(run) if m else None
        if row is not None:
            groups.setdefault(m.group(1), {})[int(m.group(2))] = row
    table = {}
    for name, seeds in groups.items():
        entry = {"seeds": sorted(seeds), "per_seed": {str(s): seeds[s] for s in sorted(seeds)}}
        for k in [*FIELDS, "train_seconds", "epochs_run"]:
            vals = [seeds[s][k] for s in sorted(seeds)]
            entry[k] = {"mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0}
        table[name] = entry
    return table


def markdown(table: dict) -> str:
    cols = ["val_macro_f1", "ds2_macro_f1_4", "ds2_kappa_4", "ds2_jk_4", "ds2_f1_S", "ds2_f1_V", "ds2_f1_F", "ds2_sveb_se", "ds2_sveb_ppv", "ds2_veb_se", "ds2_veb_ppv", "ds2_macro_f1_5"]
    head = "| configuration | seeds | " + " | ".join(cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for name, e in table.items():
        cells = [f"{e[c]['mean']:.3f} ± {e[c]['sd']:.3f}" for c in cols]
        lines.append(f"| {name} | {len(e['seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("-o", "--output", type=Path)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    table = summarise(a.runs)
    if a.output:
        a.output.write_text(json.dumps(table, indent=1))
    print(markdown(table) if a.markdown else json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
