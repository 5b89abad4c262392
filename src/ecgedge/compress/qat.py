"""Quantisation-aware fine-tuning with torchao PT2E, and the int8 files that keep its scales.

Recipe (see /work/shared/notes/edge-toolchain.md):

1. the export graph of the float model (:class:`ecgedge.models.graph.ExportGraph`: ``image`` in
   [0, 1], normalisation as Mul + Add) is captured with ``torch.export`` in train mode, dynamic
   batch; the residual adds / ReLUs are made visible to the quantiser
   (:func:`ecgedge.models.graph.mark_quantizable_partitions`, the same pass the PTQ route uses);
2. ``prepare_qat_pt2e`` with torchao's ``XNNPACKQuantizer`` (symmetric per-channel int8 weights,
   asymmetric int8 activations, ``is_qat=True``): Conv+BN pairs are simulated folded, every
   weight / activation passes a ``FusedMovingAvgObsFakeQuantize``;
3. the ``image`` input's fake-quantiser is pinned to [0, 1] (scale 1/255, zero point -128: the
   uint8 spectrogram is exact) with its observer off;
4. fine-tuning (:func:`ecgedge.compress.finetune.finetune`); observers are switched off while the
   validation beats are scored, so no range is ever fitted on them;
5. ``convert_pt2e`` -> a graph with quantize / dequantize ops holding the learned scales.

What a QAT run directory keeps (``checkpoints/``):

* ``best.pt``: ``model`` = the fine-tuned *float* weights (plain SpectrogramClassifier keys, so
  the float loaders and the fp32 exports keep working), ``model_spec`` (+ ``qat`` description)
  and ``qat_state`` = the full prepared-graph state dict (weights, BatchNorm statistics,
  fake-quant scales / zero points / observer ranges) from which :func:`prepared_from_checkpoint`
  rebuilds the QAT graph (same torch / torchao versions);
* ``qat_int8.pt2``: the converted graph (``fold_quantize=False``, dynamic batch) as a
  self-contained ``torch.export`` program: :func:`ecgedge.models.qat_program.load_qat_program`
  runs it without any of this code, and :class:`ecgedge.models.qat_program.QATModel` wraps it as
  ``model(x, rr)`` for ``ecgedge evaluate``.

The int8 files made from it (learned scales, no calibration) are written by
:mod:`ecgedge.export.qat_formats`.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ecgedge.errors import EcgEdgeError
from ecgedge.models.qat_program import QAT_PROGRAM
from ecgedge.preprocess.rhythm import REGULAR_RHYTHM

#: Weight grid of the QAT graph. 7 bits ([-63, 63] in int8 storage) by default: onnxruntime's x86
#: integer kernels on CPUs without VNNI (AVX2, AVX-512F) multiply uint8 activations by int8 weights
#: with VPMADDUBSW, whose int16 pair sums saturate when both weights are large (2 * 255 * 127 >
#: 32767). Measured on a pruned QAT ResNet-18: with 8-bit weights the fused int8 ONNX model agreed
#: with its own QDQ arithmetic on 97.5 % of beats (max logit error 1.44); with the same weights
#: halved to 7 bits, 100 % (0.07) (benchmarks/bench_onnx_kernels.py). QAT learns the 7-bit grid;
#: on the unpruned ResNet-18 it cost 0.003 DS2 macro-F1 against 8-bit post-training int8.
DEFAULT_WEIGHT_BITS = 7


def check_weight_bits(weight_bits: int) -> int:
    """The QAT weight grid asked for, if it is one this route supports (7 or 8 bits)."""
    if weight_bits not in (7, 8):
        raise EcgEdgeError(f"--qat-weight-bits must be 7 or 8, got {weight_bits}.")
    return int(weight_bits)


def quantizer_description(weight_bits: int) -> str:
    return f"torchao XNNPACKQuantizer: symmetric per-channel {weight_bits}-bit weights (int8 storage), int8 asymmetric per-tensor activations (QAT)"


__all__ = [
    "QAT_PROGRAM",
    "QATTrainable",
    "prepare_qat",
    "convert_qat",
    "float_state_from_prepared",
    "prepared_from_checkpoint",
    "save_qat_program",
    "is_qat_checkpoint",
]


def _quantizer(weight_bits: int = DEFAULT_WEIGHT_BITS):
    from torchao.testing.pt2e._xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

    q = 2 ** (check_weight_bits(weight_bits) - 1) - 1
    config = get_symmetric_quantization_config(is_per_channel=True, is_qat=True, weight_qmin=-q, weight_qmax=q)
    with warnings.catch_warnings():  # "XNNPACKQuantizer is deprecated": still the QAT route that exports (see module doc)
        warnings.simplefilter("ignore", UserWarning)
        return XNNPACKQuantizer().set_global(config)


def _sample_args(model, batch: int = 2, image_size=(32, 32)) -> tuple[torch.Tensor, ...]:
    x = torch.rand(batch, 1, *image_size, generator=torch.Generator().manual_seed(0))
    return (x, torch.tensor(REGULAR_RHYTHM).repeat(batch, 1)) if model.rr_features else (x,)


def _dynamic(rr_features: bool) -> dict:
    dim = torch.export.Dim("batch", min=1, max=65536)
    return {"image": {0: dim}, **({"rr": {0: dim}} if rr_features else {})}


def _pin_input_fake_quant(prepared, name: str = "image") -> dict:
    """Fix the fake-quantiser right after the ``image`` input to the range [0, 1]; returns its qparams."""
    for node in prepared.graph.nodes:
        if node.op != "placeholder" or node.name != name:
            continue
        for user in node.users:
            if user.op == "call_module" and "activation_post_process" in str(user.target):
                fq = getattr(prepared, user.target)
                obs = fq.activation_post_process
                obs.reset_min_max_vals()
                obs(torch.tensor([0.0, 1.0]))
                scale, zero = fq.calculate_qparams()
                fq.scale.resize_(scale.shape).copy_(scale)
                fq.zero_point.resize_(zero.shape).copy_(zero)
                fq.disable_observer()
                prepared._ecgedge_pinned = str(user.target)
                return {"scale": float(scale.reshape(-1)[0]), "zero_point": int(zero.reshape(-1)[0])}
    raise EcgEdgeError("QAT: found no fake-quantiser on the image input to pin to [0, 1]")


def prepare_qat(model, image_size=(32, 32), weight_bits: int = DEFAULT_WEIGHT_BITS) -> tuple[torch.fx.GraphModule, dict]:
    """The PT2E QAT graph of ``model`` (a SpectrogramClassifier, float); returns (prepared, input qparams)."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from ecgedge.models.graph import ExportGraph, mark_quantizable_partitions

    graph = ExportGraph(model).train()
    exported = torch.export.export(graph, _sample_args(model, 2, image_size), dynamic_shapes=_dynamic(model.rr_features)).module()
    mark_quantizable_partitions(exported)
    with contextlib.redirect_stdout(io.StringIO()):  # the quantiser prints notes on stdout
        prepared = prepare_qat_pt2e(exported, _quantizer(weight_bits))
    qparams = _pin_input_fake_quant(prepared)
    return prepared, qparams


def set_observers(prepared: nn.Module, enabled: bool) -> None:
    """Switch every observer of a prepared graph on or off (the pinned input observer stays off)."""
    from torchao.quantization.pt2e import FakeQuantizeBase, disable_observer, enable_observer

    pinned = getattr(prepared, "_ecgedge_pinned", None)
    for name, m in prepared.named_modules():
        if isinstance(m, FakeQuantizeBase) and name != pinned:
            (enable_observer if enabled else disable_observer)(m)


class QATTrainable(nn.Module):
    """A prepared QAT graph as ``model(x, rr)`` with working ``train()`` / ``eval()`` (BN / dropout ops switched)."""

    def __init__(self, prepared: torch.fx.GraphModule, num_classes: int, rr_features: bool):
        super().__init__()
        self.prepared = prepared
        self.num_classes = int(num_classes)
        self.rr_features = bool(rr_features)

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        return self.prepared(x, rr) if self.rr_features else self.prepared(x)

    def train(self, mode: bool = True):
        from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

        (move_exported_model_to_train if mode else move_exported_model_to_eval)(self.prepared)
        self.training = mode
        return self


def float_state_from_prepared(prepared: nn.Module, model) -> dict[str, torch.Tensor]:
    """The SpectrogramClassifier state dict held in a prepared graph (its float weights and BN statistics)."""
    sd = prepared.state_dict()
    want = model.state_dict()
    # the exported graph keeps no BatchNorm step counters: those stay the model's own
    missing = [k for k in want if k not in sd and not k.endswith("num_batches_tracked")]
    if missing:
        raise EcgEdgeError(f"QAT: the prepared graph lacks float weights {missing[:3]}")
    return {k: (sd[k] if k in sd else v).detach().clone() for k, v in want.items()}


def convert_qat(prepared: torch.fx.GraphModule, fold_quantize: bool = False) -> torch.fx.GraphModule:
    """``convert_pt2e`` on a copy (the prepared graph stays trainable), in eval form."""
    import copy

    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    prepared = copy.deepcopy(prepared)
    move_exported_model_to_eval(prepared)
    converted = convert_pt2e(prepared, fold_quantize=fold_quantize)
    move_exported_model_to_eval(converted)
    converted.training = False
    return converted


def save_qat_program(converted: torch.fx.GraphModule, path: Path, rr_features: bool, image_size=(32, 32)) -> Path:
    """``torch.export.save`` the converted graph with a dynamic batch."""
    x = torch.rand(2, 1, *image_size)
    args = (x, torch.tensor(REGULAR_RHYTHM).repeat(2, 1)) if rr_features else (x,)
    dim = torch.export.Dim("batch", min=1, max=65536)
    dyn = tuple({0: dim} for _ in args)
    ep = torch.export.export(converted, args, dynamic_shapes=dyn)
    torch.export.save(ep, os.fspath(path))
    return path


def is_qat_checkpoint(ckpt: dict) -> bool:
    return isinstance(ckpt, dict) and "qat_state" in ckpt


def prepared_from_checkpoint(ckpt: dict, image_size=(32, 32)) -> tuple[torch.fx.GraphModule, object]:
    """Rebuild the QAT graph of a QAT checkpoint with its learned scales; returns (prepared, float model)."""
    from ecgedge.models.checkpoint import model_from_checkpoint

    model = model_from_checkpoint(ckpt)
    prepared, _ = prepare_qat(model, image_size, int(ckpt["model_spec"].get("qat", {}).get("weight_bits", 8)))  # runs before 7-bit: 8
    try:
        prepared.load_state_dict(ckpt["qat_state"], strict=True)
    except RuntimeError as exc:
        raise EcgEdgeError(
            f"the QAT graph rebuilt here does not match the saved one ({str(exc).splitlines()[0][:160]}); "
            f"use the torch / torchao versions of the run or its {QAT_PROGRAM}."
        ) from None
    set_observers(prepared, False)
    return prepared, model
