"""The gateway service end to end on this host: start-up time, and beats/s through TCP + JSON.

Starts ``python -m ecgedge.firmware_host serve`` on an installed gateway directory (``--root``,
e.g. after ``ecgedge deploy --target local:DIR``), then per repeat:

* ``start_s``: from process start to the health file of this process (imports, SHA-256 of the
  model, loading it, golden vectors, listening): what a deploy's restart waits for;
* ``--streams`` connections at once, each sending one DS2 record's first ``--seconds`` s in 1-s
  messages (encoded before the clock starts) as fast as the service reads them, then ``end``
  and waiting for the answer: ``beats_per_s`` and ``signal_s_per_wall_s`` (real-time streams
  the service sustains on this host; compare with benchmarks/bench_gateway.py, the same Gateway
  in-process, for what the socket and JSON cost).

    PYTHONPATH=src python benchmarks/bench_service.py --root /tmp/gw --data-dir ../shared/data/mitdb \\
        [--model NAME] [--threads 1] [--streams 4] [--seconds 300] -o benchmarks/results/service.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ecgedge.data.aami import DS2
from ecgedge.data.records import read_record
from ecgedge.machine import machine_info


def start(root: Path, args: list[str]) -> tuple[subprocess.Popen, dict, float]:
    health = root / "run" / "health.json"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ecgedge.firmware_host", "serve", "--root", str(root), "--listen", "127.0.0.1:0", *args], stderr=subprocess.PIPE, text=True)
    while True:
        try:
            h = json.loads(health.read_text())
            if h["pid"] == proc.pid and h["status"] == "running":
                return proc, h, time.perf_counter() - t0
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        if proc.poll() is not None:
            sys.exit(f"serve exited: {proc.stderr.read()}")
        time.sleep(0.02)


def send_stream(address: tuple[str, int], name: str, messages: list[bytes], out: dict) -> None:
    with socket.create_connection(address) as sock:
        f = sock.makefile("rwb")
        for m in messages:
            f.write(m)
        f.write(json.dumps({"stream": name, "end": True}).encode() + b"\n")
        f.flush()
        out[name] = json.loads(f.readline())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True, help="gateway directory with a current version")
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--model", help="model file of the bundle (default: the service's choice)")
    ap.add_argument("--threads", type=int, default=1, help="inference threads of the service")
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("-o", "--output", type=Path)
    a = ap.parse_args()

    records = sorted(DS2)[: a.streams]
    streams = {}
    for rec in records:
        x = read_record(a.data_dir, rec).signal[: int(a.seconds * 360)].astype(np.float64)
        streams[f"r{rec}"] = [json.dumps({"stream": f"r{rec}", "samples": x[i : i + 360].tolist()}).encode() + b"\n" for i in range(0, len(x), 360)]
    extra = ["--threads", str(a.threads), "--events", os.devnull] + (["--model", a.model] if a.model else [])
    runs = []
    load0 = os.getloadavg()
    for _ in range(a.repeats):
        proc, h, start_s = start(a.root, extra)
        host, port = h["listen"].rsplit(":", 1)
        acks: dict = {}
        t = time.perf_counter()
        threads = [threading.Thread(target=send_stream, args=((host, int(port)), n, m, acks)) for n, m in streams.items()]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
        beats = sum(v["beats"] for v in acks.values())
        runs.append({"start_s": start_s, "wall_s": wall, "beats": beats, "beats_per_s": beats / wall, "signal_s_per_wall_s": len(streams) * a.seconds / wall})
        print(json.dumps(runs[-1]), flush=True)
    med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    out = {
        "host": {**machine_info(), "load_avg_at_start": load0, "load_avg_at_end": os.getloadavg()},
        "setup": {"version": h["version"], "model": h["model"], "threads": a.threads, "streams": records, "seconds": a.seconds, "repeats": a.repeats},
        "median": med,
        "runs": runs,
    }
    print(json.dumps(out["median"]))
    if a.output:
        a.output.parent.mkdir(parents=True, exist_ok=True)
        a.output.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
