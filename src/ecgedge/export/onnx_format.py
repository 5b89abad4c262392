"""ONNX: fp32 via ``torch.onnx.export(dynamo=True)`` (opset 18, dynamic batch); int8 via
onnxruntime post-training static quantisation (QDQ).

int8 recipe: ``quant_pre_process`` (shape inference + graph optimisation) then ``quantize_static``
with QDQ format, per-channel symmetric QInt8 weights and asymmetric QUInt8 activations (signed
int8 activations ran 3-4x slower on x86 in onnxruntime), MinMax calibration on DS1 training beats.
The input stays float32 ``image`` in [0, 1]; the first QuantizeLinear's scale / zero point (1/255
and 0 when the calibration images span 0..255) are recorded in the metadata.
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


def export_onnx_int8(source, path: Path, fp32_path: Path, calib) -> Path:
    """Quantise the fp32 ONNX file ``fp32_path`` (static QDQ) into ``path`` using ``calib`` beats."""
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
