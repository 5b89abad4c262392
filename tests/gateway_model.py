"""A tiny exported beat classifier (ONNX fp32, rhythm features on) for the gateway tests.

The tiny residual CNN of :mod:`tiny_models`, trained for a few steps on real beats of records 106
and 119 (DS1) so its classes are not constant, written as a run directory in the layout of
`ecgedge train` and exported with the real exporter (metadata included). About 10 s on one core.
"""

from pathlib import Path

import numpy as np


def build_tiny_onnx(mitdb_dir: Path, out: Path, arch: str, records=("106", "119"), steps: int = 30) -> Path:
    import torch
    import torch.nn.functional as F

    from ecgedge.data.dataset import prepare_dataset
    from ecgedge.data.splits import make_split
    from ecgedge.export import export_model
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.preprocess import get_preset
    from ecgedge.train.config import train_preset
    from ecgedge.models.architectures import create_model
    from tiny_models import write_run_dir

    config = train_preset("quick", arch=arch)
    ds = prepare_dataset(mitdb_dir, get_preset(config.data_preset), records, workers=1)
    split = make_split(config.split, ds.records, ds.labels, config.seed)
    torch.manual_seed(0)
    model = create_model(config.arch, "none", rr_features=True)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    labels = ds.labels.astype(np.int64)
    pool = np.arange(len(ds))
    weights = np.where(labels[pool] == 0, 1.0, 8.0)
    model.train()
    for _ in range(steps):
        b = np.sort(rng.choice(pool, 64, replace=False, p=weights / weights.sum()))
        x = torch.from_numpy(np.asarray(ds.images[b], np.float32) / 255.0)[:, None]
        rr = torch.from_numpy(np.asarray(ds.rr[b], np.float32))
        loss = F.cross_entropy(model(x, rr), torch.from_numpy(labels[b]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    rd = Path(out) / "tiny-run"
    write_run_dir(rd, mitdb_dir, config, ds, split, model)
    files = export_model(rd, Path(out) / "exports", formats=("onnx",), int8=False, check_beats=64, log=None, load_runtime=load_runtime)
    return files[0].path
