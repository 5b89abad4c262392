"""ONNX: fp32 via ``torch.onnx.export(dynamo=True)`` (opset 18, dynamic batch); int8 by
post-training static quantisation (QDQ) of that fp32 file.

Two int8 routes, both calibrated on DS1 training beats (:data:`PTQ_ROUTES`):

* ``nncf`` (default): ``nncf.quantize`` on the ONNX model (its MinMax statistics: activation
  ranges averaged over calibration beats; int8 symmetric per-channel weights), bias correction off;
* ``onnxruntime``: ``quant_pre_process`` + ``quantize_static`` (MinMax, per-channel QInt8 weights,
  QUInt8 activations).

Measured on the quick ResNet-18 (docs/results.md, same 256 calibration beats, DS2 agreement with
the float model): nncf 99.82 % (macro-F1 0.4316 vs float 0.4315), nncf with its fast bias
correction 99.78 %, onnxruntime's route 99.52 % (0.428) and 3-6 % slower. On the tests' tiny
model, bias correction cost 3 points of agreement (96.9 % vs 99.6 %): so nncf, without it.

Every int8 file then passes :func:`activations_to_uint8`: onnxruntime's x86 integer kernels are
fast for uint8 activations and slow for int8 ones (QAT graphs from torchao carry int8
activations: 1.8x slower), and ``q_u8 = q_s8 + 128`` with ``zero_point + 128`` is the same
quantisation grid, so the rewrite changes no value.
The input stays float32 ``image`` in [0, 1].
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from ecgedge.errors import EcgEdgeError

OPSET = 18


def export_onnx_fp32(source, path: Path) -> Path:
    """Write the float model of ``source`` (:class:`ExportSource`) to ``path``; returns ``path``."""
    import torch

    graph = source.graph()
    args = source.sample_args(batch=2)
    batch = torch.export.Dim("batch", min=1, max=65536)
    dynamic = {"image": {0: batch}}
    if source.rr_features:
        dynamic["rr"] = {0: batch}
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            program = torch.onnx.export(
                graph,
                args,
                input_names=source.input_names(),
                output_names=["logits"],
                opset_version=OPSET,
                dynamo=True,
                dynamic_shapes=dynamic,
                verbose=False,
            )
            program.save(os.fspath(path), external_data=False)
    except Exception as exc:
        raise EcgEdgeError(f"ONNX export of {source.run_dir} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    return path


class _Reader:
    """onnxruntime CalibrationDataReader over float beats, in batches."""

    def __init__(self, sample, rr_features: bool, batch: int = 64):
        x = sample.float_images()
        self._feeds = []
        for s in range(0, len(x), batch):
            feed = {"image": x[s : s + batch]}
            if rr_features:
                feed["rr"] = sample.rr[s : s + batch].astype(np.float32)
            self._feeds.append(feed)
        self._it = iter(self._feeds)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):
        self._it = iter(self._feeds)


PTQ_ROUTES = {
    "nncf": "nncf.quantize (ONNX backend): MinMax statistics, no bias correction, s8 per-channel weights; activations as uint8",
    "onnxruntime": "onnxruntime quantize_static QDQ: MinMax, s8 per-channel weights, u8 activations",
}


def export_onnx_int8(source, path: Path, fp32_path: Path, calib, route: str = "nncf") -> Path:
    """Quantise the fp32 ONNX file ``fp32_path`` (static QDQ) into ``path`` using ``calib`` beats."""
    if route not in PTQ_ROUTES:
        raise EcgEdgeError(f"unknown ONNX int8 route {route!r}; choose from {', '.join(PTQ_ROUTES)}.")
    if route == "nncf":
        return _quantize_nncf(source, path, fp32_path, calib)
    return _quantize_onnxruntime(source, path, fp32_path, calib)


def _quantize_nncf(source, path: Path, fp32_path: Path, calib) -> Path:
    import onnx

    try:
        import nncf
    except ImportError:
        raise EcgEdgeError("ONNX int8 through nncf needs nncf: pip install 'ecgedge[export]' (or choose the onnxruntime route).") from None
    feeds = _Reader(calib, source.rr_features, batch=1)._feeds  # nncf collects statistics sample by sample
    try:
        with _quiet_nncf():
            quantized = nncf.quantize(
                onnx.load(os.fspath(fp32_path)),
                nncf.Dataset(feeds),
                subset_size=len(feeds),
                advanced_parameters=nncf.AdvancedQuantizationParameters(disable_bias_correction=True),
            )
        onnx.save(activations_to_uint8(quantized), os.fspath(path))
    except EcgEdgeError:
        raise
    except Exception as exc:
        raise EcgEdgeError(f"ONNX int8 quantisation (nncf) of {fp32_path} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    return path


@contextlib.contextmanager
def _quiet_nncf():
    """nncf logs INFO lines and draws its own progress bars; keep the terminal for ours."""
    import logging

    from nncf.common.logging import nncf_logger

    level = nncf_logger.level
    nncf_logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        nncf_logger.setLevel(level)


def activations_to_uint8(model):
    """Rewrite int8 activation Quantize/DequantizeLinear pairs to uint8 (zero point + 128); weights stay int8."""
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    rewritten = 0
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3:
            continue
        if node.input[0] in inits:  # a weight (or bias) held as an initializer
            continue
        zero = inits.get(node.input[2])
        if zero is None or zero.data_type != onnx.TensorProto.INT8:
            continue
        name = f"{node.input[2]}_as_uint8"
        if name not in inits:
            z = numpy_helper.to_array(zero).astype(np.int16) + 128
            inits[name] = numpy_helper.from_array(z.astype(np.uint8), name)
            graph.initializer.append(inits[name])
        node.input[2] = name
        rewritten += 1
    if rewritten:
        del graph.value_info[:]  # recorded int8 types of the rewritten tensors are stale
    return model


def _quantize_onnxruntime(source, path: Path, fp32_path: Path, calib) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Reader, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(prefix="ecgedge-onnx-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(os.fspath(fp32_path), os.fspath(pre))
            quantize_static(
                os.fspath(pre),
                os.fspath(path),
                Reader(calib, source.rr_features),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"CalibTensorRangeSymmetric": False},
            )
        except Exception as exc:
            raise EcgEdgeError(f"ONNX int8 quantisation of {fp32_path} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    return path


def input_quantization(path: Path, input_name: str = "image") -> dict | None:
    """Scale / zero point of the QuantizeLinear applied to ``input_name`` in a QDQ model."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(os.fspath(path))
    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] == input_name:
            scale = numpy_helper.to_array(inits[node.input[1]]) if node.input[1] in inits else None
            zero = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] in inits else None
            if scale is None:
                return None
            return {
                "scale": float(np.asarray(scale).reshape(-1)[0]),
                "zero_point": int(np.asarray(zero).reshape(-1)[0]) if zero is not None else 0,
                "dtype": str(np.asarray(zero).dtype) if zero is not None else "uint8",
            }
    return None


def check_onnx(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(os.fspath(path), full_check=True)
    except Exception as exc:
        raise EcgEdgeError(f"{path} fails onnx.checker: {str(exc).splitlines()[0][:300]}") from None
