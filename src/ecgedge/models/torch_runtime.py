"""A training checkpoint (``checkpoints/best.pt``) run like an exported file: numpy in, numpy out.

The float (or, for a QAT run, int8-simulated) reference the exported files are compared with.
Host side: needs torch. :func:`ecgedge.firmware_host.runtime.load_runtime` hands ``.pt`` files and
run directories to it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgedge.errors import EcgEdgeError
from ecgedge.model_runner import DEFAULT_CLASSES, Runtime, first_line as _first_line

__all__ = ["TorchRuntime"]


class TorchRuntime(Runtime):
    """A training checkpoint (``checkpoints/best.pt``) run by torch; the float reference."""

    format = "torch"
    backend = "torch"

    def __init__(self, path: Path, num_threads: int | None = None, batch_size: int = 512):
        try:
            import torch
        except ImportError:
            raise EcgEdgeError(f"{path}: running a .pt checkpoint needs torch: pip install 'ecgedge[train]'") from None
        from ecgedge.models.checkpoint import load_checkpoint_model

        if num_threads:
            torch.set_num_threads(int(num_threads))
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            spec = ckpt["model_spec"]
            model = load_checkpoint_model(ckpt, path)  # plain, pruned, or the QAT int8 simulation
        except EcgEdgeError:
            raise
        except Exception as exc:
            raise EcgEdgeError(f"{path} is not a loadable ecgedge checkpoint ({_first_line(exc)}).") from None
        self.torch = torch
        self.model = model.eval()
        self.rr_features = bool(spec["rr_features"])
        self.num_classes = int(spec["num_classes"])
        pre = ckpt.get("preprocess") or {}
        size = (pre.get("spectrogram") or {}).get("image_size") or [32, 32]
        self.input_size = (int(size[0]), int(size[1]))
        self.batch_size = int(batch_size)
        meta = {
            "format": "torch",
            "precision": "int8-simulated" if "qat_state" in ckpt else "fp32",
            "classes": list(DEFAULT_CLASSES[: self.num_classes]),
            "arch": spec["arch"],
            "rr_features": self.rr_features,
            "preprocess": pre,
            "source": {"checkpoint": str(Path(path).resolve()), "epoch": ckpt.get("epoch")},
        }
        super().__init__(path, meta)

    def _run(self, x, rr):
        torch = self.torch
        out = []
        with torch.no_grad():
            for start in range(0, len(x), self.batch_size):
                xb = torch.from_numpy(x[start : start + self.batch_size])
                rb = torch.from_numpy(rr[start : start + self.batch_size]) if rr is not None else None
                out.append(self.model(xb, rb).float().numpy())
        return np.concatenate(out)
