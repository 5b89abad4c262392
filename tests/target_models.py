"""A tiny int8 beat classifier exported to ONNX and TFLite, for the on-target validation tests.

The tiny residual CNN of :mod:`tiny_models` (rhythm features on), trained for a few steps on DS1
records 106 and 119, exported with the real exporter (int8: post-training, calibrated on DS1) and
scored on DS2 records 100 and 213 (N, S, V and F beats). About a minute on one core.
"""

from pathlib import Path

import numpy as np
import pytest

RECORDS = ("100", "106", "119", "213")
ARCH = "test_target_tiny_resnet"


def export_tiny_int8(mitdb_dir: Path, out: Path) -> dict[str, Path]:
    """``{"onnx": int8 .onnx, "tflite": int8 .tflite}`` of a briefly trained tiny model."""
    import torch

    from ecgedge.data.dataset import prepare_dataset
    from ecgedge.data.splits import make_split
    from ecgedge.export import export_model
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.models.architectures import create_model
    from ecgedge.preprocess import get_preset
    from ecgedge.train.config import train_preset
    from tiny_models import registered_tiny_arch, train_briefly, write_run_dir

    with registered_tiny_arch(ARCH, width=8) as arch:
        config = train_preset("quick", arch=arch)
        ds = prepare_dataset(mitdb_dir, get_preset(config.data_preset), RECORDS)
        split = make_split(config.split, ds.records, ds.labels, config.seed)
        torch.manual_seed(0)
        model = create_model(config.arch, "none", rr_features=True)
        train_briefly(model, ds, split.train, 30, rr_features=True)
        rd = Path(out) / "tiny-run"
        write_run_dir(rd, mitdb_dir, config, ds, split, model)
        files = export_model(rd, Path(out) / "exports", formats=("onnx", "tflite"), int8=True, calibration_beats=128, check_beats=64, log=None, load_runtime=load_runtime)
    return {f.format: f.path for f in files if f.precision == "int8"}


def tiny_beats(mitdb_dir: Path, n: int = 200):
    """(images uint8, rr float32, labels) of ``n`` beats spread over the records."""
    from ecgedge.data.dataset import prepare_dataset
    from ecgedge.preprocess import get_preset
    from ecgedge.train.config import train_preset

    ds = prepare_dataset(mitdb_dir, get_preset(train_preset("quick").data_preset), RECORDS)
    idx = np.linspace(0, len(ds) - 1, n).astype(np.int64)
    return np.asarray(ds.images[idx]), np.asarray(ds.rr[idx], np.float32), ds.labels[idx].astype(np.int64)


@pytest.fixture(scope="module")
def tiny_int8(mitdb_dir, tmp_path_factory):
    """The tiny model's int8 files (a module fixture: import it into a test module to use it)."""
    pytest.importorskip("litert_torch")
    return export_tiny_int8(mitdb_dir, tmp_path_factory.mktemp("tiny-int8"))
