"""Training and evaluation throughput (beats/s) on this machine's CPU (or CUDA); writes JSON.

    python benchmarks/bench_train.py --data-dir ../shared/data/mitdb [--archs resnet18,efficientnet_lite0]

Times optimizer steps and no-grad forward passes on real prepared beats (edge preset, and the
paper preset's 224x224 size with --paper), median over repeats after a warm-up.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ecgedge.machine import machine_info  # noqa: E402

from ecgedge.data.dataset import prepare_dataset  # noqa: E402
from ecgedge.preprocess import get_preset  # noqa: E402
from ecgedge.train.batches import BeatTensors  # noqa: E402
from ecgedge.train.fit import resolve_device  # noqa: E402
from ecgedge.models.architectures import create_model  # noqa: E402


def _median_rate(fn, batch: int, repeats: int) -> float:
    fn()  # warm-up (allocator, oneDNN kernel selection)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def bench(arch: str, data: BeatTensors, device: torch.device, batch: int, eval_batch: int, repeats: int) -> dict:
    model = create_model(arch, "none").to(device, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x, rr, y = data.get(rng.choice(len(data.labels), batch, replace=False), device)

    def step():
        model.train()
        loss = F.cross_entropy(model(x, rr), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    xe, rre, _ = data.get(rng.choice(len(data.labels), eval_batch, replace=False), device)

    @torch.no_grad()
    def infer():
        model.eval()
        model(xe, rre)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return {
        "train_beats_per_s": round(_median_rate(step, batch, repeats), 1),
        "eval_beats_per_s": round(_median_rate(infer, eval_batch, repeats), 1),
        "train_batch": batch,
        "eval_batch": eval_batch,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--archs", default="resnet18,efficientnet_lite0")
    ap.add_argument("--presets", default="edge", help="edge and/or paper (paper: 224x224, slow on a CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).parent / "results" / "train.json")
    args = ap.parse_args()

    device = resolve_device(args.device)
    out = {"benchmark": "train", "machine": machine_info(), "device": str(device), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "results": {}}  # fmt: skip
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    for preset in args.presets.split(","):
        data = BeatTensors(prepare_dataset(args.data_dir, get_preset(preset)))
        batch, eval_batch = (128, 512) if preset == "edge" else (32, 64)
        for arch in args.archs.split(","):
            res = bench(arch, data, device, batch, eval_batch, args.repeats)
            out["results"][f"{preset}/{arch}"] = res
            print(preset, arch, res, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
