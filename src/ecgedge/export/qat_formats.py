"""int8 files of a quantisation-aware checkpoint (``ecgedge compress --qat``), with its learned scales.

* :func:`export_qat_onnx`: ``torch.onnx.export(dynamo=True)``, opset 18 QDQ, int8 weights folded,
  activations rewritten to the equivalent uint8 grid for onnxruntime's x86 kernels;
* :func:`export_qat_tflite`: litert-torch with a non-QAT PT2EQuantizer as ``quant_config``, which
  is how the converted graph's q/dq ops become int8 TFLite kernels.

Both start from the QAT graph rebuilt from the checkpoint
(:func:`ecgedge.compress.qat.prepared_from_checkpoint`) and convert their own copy of it.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import torch

from ecgedge.compress.qat import convert_qat, is_qat_checkpoint, prepared_from_checkpoint
from ecgedge.errors import EcgEdgeError
from ecgedge.export.tflite_format import _import_litert_torch, _quiet_litert, pt2e_quantizer

__all__ = ["qat_source_checkpoint", "export_qat_onnx", "export_qat_tflite"]


def qat_source_checkpoint(source) -> dict:
    ckpt = torch.load(source.checkpoint, map_location="cpu", weights_only=False)
    if not is_qat_checkpoint(ckpt):
        raise EcgEdgeError(f"{source.checkpoint} is not a quantisation-aware checkpoint (made by `ecgedge compress --qat`).")
    return ckpt


def _prepared_of(source, prepared):
    return prepared if prepared is not None else prepared_from_checkpoint(qat_source_checkpoint(source), source.image_size)[0]


def export_qat_onnx(source, path: Path, prepared=None) -> Path:
    """int8 QDQ ONNX with the learned QAT scales (int8 weights folded), dynamic batch, float I/O.

    ``prepared``: the checkpoint's rebuilt QAT graph (:func:`prepared_from_checkpoint`) when the
    caller has it already; it is not modified."""
    converted = convert_qat(_prepared_of(source, prepared), fold_quantize=True)
    args = source.sample_args(batch=2)
    dim = torch.export.Dim("batch", min=1, max=65536)
    try:
        ep = torch.export.export(converted, args, dynamic_shapes=tuple({0: dim} for _ in args))
        with contextlib.redirect_stdout(io.StringIO()):
            program = torch.onnx.export(ep, args, input_names=source.input_names(), output_names=["logits"], opset_version=18, dynamo=True)
            program.save(os.fspath(path), external_data=False)
        import onnx

        from ecgedge.export.onnx_format import activations_to_uint8

        onnx.save(activations_to_uint8(onnx.load(os.fspath(path))), os.fspath(path))
    except Exception as exc:
        raise EcgEdgeError(f"QAT ONNX export of {source.run_dir} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    return path


def export_qat_tflite(source, path: Path, prepared=None) -> Path:
    """Full-integer int8 TFLite with the learned QAT scales (batch 1, int8 input and output); ``prepared`` as for ONNX."""
    litert_torch = _import_litert_torch()
    from litert_torch.quantize.quant_config import QuantConfig

    converted = convert_qat(_prepared_of(source, prepared), fold_quantize=False)
    try:
        with _quiet_litert():
            edge = litert_torch.convert(converted, source.sample_args(batch=1), quant_config=QuantConfig(pt2e_quantizer=pt2e_quantizer()))
            edge.export(os.fspath(path))
    except Exception as exc:
        raise EcgEdgeError(f"QAT int8 TFLite export of {source.run_dir} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    return path
