"""Graph forms of a classifier that compression and export share.

* :class:`ExportGraph`: the exported graph's input convention (``image`` in [0, 1], normalisation
  as Mul + Add, see :mod:`ecgedge.export.source`), also what quantisation-aware training
  (:mod:`ecgedge.compress.qat`) captures, so QAT learns the scales of the graph that is exported;
* :func:`mark_quantizable_partitions`: a pass over a ``torch.export`` graph that lets the PT2E
  quantisers see the residual adds and their ReLUs (post-training int8 TFLite and QAT alike).
"""

from __future__ import annotations

import torch
from torch import nn

from ecgedge.models.architectures import SpectrogramClassifier

__all__ = ["ExportGraph", "mark_quantizable_partitions"]


class ExportGraph(nn.Module):
    """``image`` [B,1,H,W] in [0,1] (+ ``rr`` [B,3]) -> logits; normalisation as Mul + Add."""

    def __init__(self, model: SpectrogramClassifier):
        super().__init__()
        self.backbone = model.backbone
        self.head = model.head
        self.rr_features = model.rr_features
        std, mean = float(model.input_std), float(model.input_mean)
        self.scale = 1.0 / std
        self.shift = -mean / std

    def forward(self, image: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        x = image * self.scale + self.shift
        return self.head(self.backbone(x), rr if self.rr_features else None)


def mark_quantizable_partitions(gm) -> int:
    """Make the residual adds and their ReLUs visible to the quantiser; returns nodes marked.

    In the non-strict ``torch.export`` graph of torchvision's BasicBlock the residual
    ``out += identity`` is an in-place ``aten.add_`` whose source is the block itself (matched by
    no annotator), and one ``nn.ReLU`` module is called twice, so both calls form one source
    partition with two outputs, which the add+ReLU annotator skips ("Relu partition has more than
    one output node"). Left alone, every residual add ran in float between DEQUANTIZE / QUANTIZE.
    This pass (1) turns ``add_`` / ``relu_`` into their out-of-place forms where the mutated input
    has no other user (same values), and (2) gives each add / ReLU node its own ``source_fn_stack``
    entry, so every add+ReLU is annotated and quantised. The computation is unchanged.
    """
    import torch

    aten = torch.ops.aten
    out_of_place = {aten.add_.Tensor: aten.add.Tensor, aten.relu_.default: aten.relu.default}
    sources = {aten.add.Tensor: torch.add, aten.relu.default: torch.nn.ReLU}
    marked = 0
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        if node.target in out_of_place:
            first = node.args[0]
            if isinstance(first, torch.fx.Node) and len(first.users) == 1:
                node.target = out_of_place[node.target]
        src = sources.get(node.target)
        if src is None or node.meta.get("source_fn_stack"):
            continue
        if src is torch.add and not all(isinstance(a, torch.fx.Node) for a in node.args[:2]):
            continue  # tensor + scalar: left to the scalar annotators
        node.meta["source_fn_stack"] = [(node.name, src)]
        marked += 1
    gm.graph.lint()
    gm.recompile()
    return marked
