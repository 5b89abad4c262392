#!/usr/bin/env python3
"""Run a grid of training configurations x seeds, a few at a time, each trained then scored.

    python scripts/run_grid.py GRID.json --runs RUNS_DIR [--parallel 6] [--deadline-s 420]

GRID.json: ``{"KEY": {"args": ["--preset", "edge", ...], "seeds": [0, 1, 2], "name": NAME, "sets": ["val"]}, ...}``,
run in file order (longest first is best); NAME (default KEY) names the runs; "sets" (default: --sets)
are the sets that entry's runs are scored on. Each run is ``ecgedge train ARGS --seed S -o RUNS/NAME-sS``, then
``ecgedge evaluate`` on the validation records (what configurations are chosen on) and on DS2 (what
is reported), both as JSON beside the run (``--sets val`` for cross-validation folds). A run already scored is skipped, an unfinished one is
resumed: the same command continues a grid. No job starts after the deadline; running ones are
stopped at ``--hard-deadline-s`` so whatever finished can still be collected.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def job_commands(name: str, args: list[str], seed: int, runs: Path, extra: list[str], sets: tuple[str, ...] = ("val", "DS2")) -> tuple[Path, list[list[str]]]:
    out = runs / f"{name}-s{seed}"
    py = [sys.executable, "-m", "ecgedge"]
    train = [*py, "train", *args, *extra, "--seed", str(seed), "-o", str(out)]
    if (out / "config.json").is_file():
        train.append("--resume")
    return out, [train] + [[*py, "evaluate", str(out), "--split", s, "--json"] for s in sets]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("grid", type=Path)
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--deadline-s", type=float, default=float("inf"), help="start no job after this many seconds")
    ap.add_argument("--hard-deadline-s", type=float, default=float("inf"), help="stop running jobs after this many seconds")
    ap.add_argument("--sets", default="val,DS2", help="sets each run is scored on (cross-validation folds need only val)")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="options added to every train command")
    a = ap.parse_args()
    grid = json.loads(a.grid.read_text())
    a.runs.mkdir(parents=True, exist_ok=True)
    queue = []
    for key, spec in grid.items():
        for seed in spec.get("seeds", [0]):
            # "name" lets one configuration's seeds sit at two places in the queue
            sets = tuple(spec.get("sets", a.sets.split(",")))
            out, cmds = job_commands(spec.get("name", key), spec["args"], seed, a.runs, a.extra, sets)
            if not all((out / f"metrics_{s}.json").is_file() for s in sets):
                queue.append((out, cmds))
    started = time.monotonic()
    running: list[tuple[Path, list[list[str]], subprocess.Popen, object]] = []
    done, failed = [], []

    def launch(out: Path, cmds: list[list[str]]) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        log = open(a.runs / f"{out.name}.log", "a")
        # one shell line per job: train, then each evaluation (its JSON beside the run)
        script = " && ".join([" ".join(map(_q, cmds[0]))] + [" ".join(map(_q, c)) + f" > {_q(str(out / f'evaluate_{c[-2]}.json'))}" for c in cmds[1:]])
        proc = subprocess.Popen(["bash", "-c", script], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        running.append((out, cmds, proc, log))
        print(f"[{time.monotonic() - started:6.0f}s] start {out.name}", flush=True)

    while queue or running:
        elapsed = time.monotonic() - started
        while queue and len(running) < a.parallel and elapsed < a.deadline_s:
            launch(*queue.pop(0))
        for item in list(running):
            out, _, proc, log = item
            if proc.poll() is not None:
                running.remove(item)
                log.close()
                (done if proc.returncode == 0 else failed).append(out.name)
                print(f"[{elapsed:6.0f}s] {'done' if proc.returncode == 0 else f'FAILED ({proc.returncode})'} {out.name}", flush=True)
        if elapsed > a.hard_deadline_s:
            for out, _, proc, log in running:
                os.killpg(proc.pid, 15)
                print(f"[{elapsed:6.0f}s] stopped {out.name} at the hard deadline", flush=True)
            break
        if elapsed >= a.deadline_s and not running:
            break
        time.sleep(1)
    left = [out.name for out, _ in queue]
    summary = {"done": done, "failed": failed, "not_started": left, "seconds": round(time.monotonic() - started, 1)}
    (a.runs / "grid_status.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return 0


def _q(s: str) -> str:
    import shlex

    return shlex.quote(s)


if __name__ == "__main__":
    raise SystemExit(main())
