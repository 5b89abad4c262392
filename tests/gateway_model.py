"""A tiny exported beat classifier (ONNX fp32, rhythm features on) for the gateway tests.

The tiny residual CNN of :mod:`tiny_models`, trained for a few steps on real beats of records 106
and 119 (DS1) so its classes are not constant, written as a run directory in the layout of
`ecgedge train` and exported with the real exporter (metadata included). About 10 s on one core.
"""

from pathlib import Path

import numpy as np


def build_tiny_onnx(mitdb_dir: Path, out: Path, arch: str, records=("106", "119"), steps: int = 30) -> Path:
    import torch

    from ecgedge.data.dataset import prepare_dataset
    from ecgedge.data.splits import make_split
    from ecgedge.export import export_model
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.preprocess import get_preset
    from ecgedge.train.config import train_preset
    from ecgedge.models.architectures import create_model
    from tiny_models import train_briefly, write_run_dir

    config = train_preset("quick", arch=arch)
    ds = prepare_dataset(mitdb_dir, get_preset(config.data_preset), records, workers=1)
    split = make_split(config.split, ds.records, ds.labels, config.seed)
    torch.manual_seed(0)
    model = create_model(config.arch, "none", rr_features=True)
    train_briefly(model, ds, np.arange(len(ds)), steps, rr_features=True)
    rd = Path(out) / "tiny-run"
    write_run_dir(rd, mitdb_dir, config, ds, split, model)
    files = export_model(rd, Path(out) / "exports", formats=("onnx",), int8=False, check_beats=64, log=None, load_runtime=load_runtime)
    return files[0].path
