"""Structured channel pruning with ``torch-pruning`` (DepGraph): the model really gets narrower.

``prune_model(model, ratio)`` removes ``ratio`` of the channels of every prunable group (all
convolutions coupled through residual adds / depthwise convolutions are pruned together, so the
graph stays consistent), ranked by the group's L2 weight magnitude. Kept fixed:

* the model's interface: the stem still takes 1 input channel, the classifier still emits
  ``num_classes`` logits (``head.fc`` is an ignored layer; its *input* width follows the pruned
  backbone), the RR-feature MLP is left alone (19 parameters per unit, nothing to gain);
* by default also the stem convolution's output channels (``keep_stem=True``; in ResNet-18 they
  are tied to the whole ``layer1`` residual stream, which then keeps its 64 channels).

Channel counts are rounded to multiples of ``round_to`` (8: SIMD-friendly for XNNPACK / int8
kernels). Note torch-pruning's convention: ``ratio=0.5`` halves the channels, so a conv between
two pruned layers keeps about a quarter of its weights.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess.rhythm import REGULAR_RHYTHM
from ecgedge.models.architectures import SpectrogramClassifier, get_arch

__all__ = ["complexity", "prune_model", "check_ratio"]


def _import_tp():
    try:
        import torch_pruning as tp
    except ImportError:
        raise EcgEdgeError("--prune needs torch-pruning: pip install 'ecgedge[export]' (torch-pruning==1.6.1)") from None
    return tp


def check_ratio(ratio) -> float:
    try:
        r = float(ratio)
    except (TypeError, ValueError):
        raise EcgEdgeError(f"--prune must be a number in (0, 1), got {ratio!r}.") from None
    if not 0.0 < r < 1.0:
        raise EcgEdgeError(f"--prune must be in (0, 1) (share of channels to remove), got {ratio}.")
    return r


def example_inputs(model: SpectrogramClassifier, image_size: tuple[int, int] = (32, 32), batch: int = 1) -> tuple[torch.Tensor, ...]:
    x = torch.rand(batch, 1, *image_size, generator=torch.Generator().manual_seed(0))
    return (x, torch.tensor(REGULAR_RHYTHM).repeat(batch, 1)) if model.rr_features else (x,)


@torch.no_grad()
def complexity(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, int]:
    """``{"params": N, "macs": M}`` for one forward pass on ``inputs`` (torch-pruning's counter).

    torch-pruning's ``count_ops_and_params``: its "ops" are multiply-accumulates of Conv / Linear
    (a Conv2d contributes out_h*out_w*k*k*in/groups*out, plus bias adds) and one op per element
    for BatchNorm / ReLU / pooling.
    """
    tp = _import_tp()
    from torch_pruning.utils import op_counter

    # The counter looks hooks up by exact type: map subclasses (e.g. efficientnet-lite-pytorch's
    # Conv2dStaticSamePadding) to their base class's hook, else they count as zero.
    custom = {}
    for m in model.modules():
        t = type(m)
        if t in op_counter.MODULES_MAPPING:
            continue
        for base in t.__mro__[1:]:
            if base in op_counter.MODULES_MAPPING:
                custom[t] = op_counter.MODULES_MAPPING[base]
                break
    op_counter.CUSTOM_MODULES_MAPPING = custom
    was = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, inputs)
    model.train(was)
    return {"params": int(params), "macs": int(macs)}


def prune_model(
    model: SpectrogramClassifier,
    ratio: float,
    image_size: tuple[int, int] = (32, 32),
    round_to: int | None = 8,
    keep_stem: bool = True,
) -> dict:
    """Prune ``model`` in place; returns ``{"before": complexity, "after": complexity, ...}``."""
    tp = _import_tp()
    ratio = check_ratio(ratio)
    model.eval()  # BatchNorm statistics untouched by the tracing forward passes
    inputs = example_inputs(model, image_size)
    before = complexity(model, inputs)
    arch = get_arch(model.arch)
    ignored: list[nn.Module] = [model.head.fc]
    if model.head.rr is not None:
        ignored += [m for m in model.head.rr.modules() if isinstance(m, nn.Linear)]
    if keep_stem:
        ignored.append(model.backbone.get_submodule(arch.stem_conv))
    pruner = tp.pruner.MetaPruner(
        model,
        inputs,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=ratio,
        ignored_layers=ignored,
        round_to=round_to,
        global_pruning=False,
    )
    pruner.step()
    from ecgedge.models.checkpoint import sync_feature_dim

    sync_feature_dim(model)
    after = complexity(model, inputs)
    with torch.no_grad():
        out = model(*example_inputs(model, image_size, batch=2))
    if tuple(out.shape) != (2, model.num_classes):
        raise EcgEdgeError(f"pruning broke the model: output shape {tuple(out.shape)}, expected (2, {model.num_classes}).")
    stem = model.backbone.get_submodule(arch.stem_conv)
    if stem.in_channels != 1:
        raise EcgEdgeError(f"pruning changed the stem's input channels to {stem.in_channels}.")
    return {
        "ratio": ratio,
        "method": "torch-pruning MetaPruner, GroupMagnitudeImportance(p=2), uniform per-group ratio",
        "round_to": round_to,
        "keep_stem": keep_stem,
        "before": before,
        "after": after,
        "params_kept": after["params"] / before["params"],
        "macs_kept": after["macs"] / before["macs"],
    }
