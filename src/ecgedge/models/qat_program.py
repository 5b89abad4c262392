"""The converted QAT graph a quantisation-aware run keeps (``checkpoints/qat_int8.pt2``), and how to run it.

``ecgedge compress --qat`` saves the torchao ``convert_pt2e`` graph as a self-contained
``torch.export`` program (:mod:`ecgedge.compress.qat`); :func:`load_qat_program` loads it without
any of the training code, and :class:`QATModel` wraps it as ``model(x, rr)`` (int8 simulated by
quantize / dequantize ops), which is what ``ecgedge evaluate`` scores for a QAT checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["QAT_PROGRAM", "QATModel", "load_qat_program"]

QAT_PROGRAM = "qat_int8.pt2"


def load_qat_program(path: Path) -> torch.fx.GraphModule:
    """The converted QAT graph (float in, float logits out; int8 simulated by q/dq ops)."""
    import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401  registers the quantized_decomposed ops

    return torch.export.load(os.fspath(path)).module()


class QATModel(nn.Module):
    """A converted QAT graph called as ``model(x, rr)`` (x in [0, 1]); ``train()`` / ``eval()`` are no-ops."""

    def __init__(self, gm: nn.Module, num_classes: int, rr_features: bool):
        super().__init__()
        self.gm = gm
        self.num_classes = int(num_classes)
        self.rr_features = bool(rr_features)
        self.training = False

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        return self.gm(x.contiguous(), rr) if self.rr_features else self.gm(x.contiguous())

    def train(self, mode: bool = True):  # the graph is fixed in its eval form
        self.training = False
        return self
