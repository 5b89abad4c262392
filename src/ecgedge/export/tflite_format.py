"""TFLite via litert-torch (no TensorFlow): fp32, and full-integer int8 by PT2E static quantisation.

int8 recipe (litert-torch's PT2E route): ``torch.export`` (dynamic batch, so calibration runs in
batches) -> ``prepare_pt2e`` with litert-torch's ``PT2EQuantizer`` (symmetric per-channel int8
weights, int8 affine activations, histogram observers) -> calibration on DS1 training beats ->
``convert_pt2e`` -> ``litert_torch.convert(..., quant_config=QuantConfig(pt2e_quantizer=...))``.
The observer of the ``image`` input is replaced by a MinMax observer pinned to [0, 1], so the int8
input has scale 1/255 and zero point -128: ``q = u8 - 128``, lossless for the uint8 spectrogram.
litert-torch writes int8 input and int8 output tensors for this model (float logits =
``(q - zero_point) * scale``, parameters in the output tensor's details and in the metadata).

The TFLite graph has a fixed batch of 1 (a gateway classifies beat by beat; litert-torch 0.10 could
not convert this model with a dynamic batch dimension).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np

from ecgedge.errors import EcgEdgeError


@contextlib.contextmanager
def _quiet_litert():
    """litert-torch prints a progress tree on stdout; keep stdout for our own output."""
    old = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = old


def _import_litert_torch():
    try:
        import litert_torch
    except ImportError:
        raise EcgEdgeError("TFLite export needs litert-torch: pip install 'ecgedge[export]'") from None
    return litert_torch


def export_tflite_fp32(source, path: Path) -> Path:
    litert_torch = _import_litert_torch()
    graph = source.graph()
    try:
        with _quiet_litert():
            edge = litert_torch.convert(graph, source.sample_args(batch=1))
            edge.export(os.fspath(path))
    except Exception as exc:
        raise EcgEdgeError(f"TFLite export of {source.run_dir} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    return path


def _pin_input_observers(prepared, names=("image",)) -> int:
    """Replace the observers on the given graph inputs by MinMax observers that have seen [0, 1]."""
    import torch
    from torchao.quantization.pt2e.observer import MinMaxObserver

    pinned = 0
    for node in prepared.graph.nodes:
        if node.op != "placeholder" or node.name not in names:
            continue
        for user in node.users:
            if user.op != "call_module" or "activation_post_process" not in str(user.target):
                continue
            old = getattr(prepared, user.target)
            new = MinMaxObserver(
                dtype=old.dtype, quant_min=old.quant_min, quant_max=old.quant_max, qscheme=old.qscheme, eps=float(old.eps)
            )
            new(torch.tensor([0.0, 1.0]))
            setattr(prepared, user.target, new)
            pinned += 1
    return pinned


def pt2e_quantizer():
    """litert-torch's PT2E quantiser: per-channel symmetric int8 weights, static int8 activations."""
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config

    return PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))


def prepare_int8(graph, sample_args, quantizer, dynamic_shapes=None):
    """``torch.export`` -> quantisable-partition pass -> ``prepare_pt2e`` -> input observer pinned to [0, 1]."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from ecgedge.models.graph import mark_quantizable_partitions

    exported = torch.export.export(graph, sample_args, dynamic_shapes=dynamic_shapes).module()
    mark_quantizable_partitions(exported)
    with contextlib.redirect_stdout(io.StringIO()):  # the quantiser prints notes on stdout
        prepared = prepare_pt2e(exported, quantizer)
    if not _pin_input_observers(prepared):
        raise EcgEdgeError("int8 TFLite: found no observer on the image input to pin to [0, 1]")
    return prepared


def export_tflite_int8(source, path: Path, calib, batch: int = 64) -> Path:
    """Full-integer int8 TFLite of ``source`` calibrated on ``calib`` (a :class:`BeatSample`)."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    litert_torch = _import_litert_torch()
    from litert_torch.quantize.quant_config import QuantConfig

    graph = source.graph()
    quantizer = pt2e_quantizer()
    x = torch.from_numpy(calib.float_images())
    rr = torch.from_numpy(calib.rr.astype(np.float32)) if source.rr_features else None
    try:
        with _quiet_litert():
            dim = torch.export.Dim("batch", min=1, max=65536)
            dynamic = {"image": {0: dim}, **({"rr": {0: dim}} if source.rr_features else {})}
            try:  # a dynamic batch lets calibration run in batches
                prepared, step = prepare_int8(graph, source.sample_args(batch=2), quantizer, dynamic), batch
            except EcgEdgeError:
                raise
            except Exception:  # no dynamic batch: calibrate beat by beat
                prepared, step = prepare_int8(graph, source.sample_args(batch=1), quantizer), 1
            with torch.no_grad():
                for s in range(0, len(x), step):
                    prepared(x[s : s + step], *([rr[s : s + step]] if rr is not None else []))
            converted = convert_pt2e(prepared, fold_quantize=False)
            move_exported_model_to_eval(converted)
            converted.training = False  # graph already in eval form; silences litert-torch's training-mode warning
            edge = litert_torch.convert(converted, source.sample_args(batch=1), quant_config=QuantConfig(pt2e_quantizer=quantizer))
            edge.export(os.fspath(path))
    except EcgEdgeError:
        raise
    except Exception as exc:
        raise EcgEdgeError(f"int8 TFLite export of {source.run_dir} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    return path


def tensor_io(path: Path) -> tuple[list[dict], list[dict]]:
    """Input and output descriptions (name, dtype, shape, quantisation) as the interpreter sees them."""
    from ecgedge.model_runner import interpreter_class

    Interpreter, _ = interpreter_class()
    it = Interpreter(model_path=os.fspath(path))

    def describe(d: dict) -> dict:
        scale, zero = d["quantization"]
        out = {"tensor": d["name"], "dtype": np.dtype(d["dtype"]).name, "shape": [int(v) for v in d["shape"]]}
        if np.dtype(d["dtype"]) != np.float32:
            out["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
        return out

    return [describe(d) for d in it.get_input_details()], [describe(d) for d in it.get_output_details()]


def int8_tensor_count(path: Path) -> dict[str, int]:
    """How many tensors of each dtype the model holds (``get_tensor_details``)."""
    from ecgedge.model_runner import interpreter_class

    Interpreter, _ = interpreter_class()
    it = Interpreter(model_path=os.fspath(path))
    counts: dict[str, int] = {}
    for d in it.get_tensor_details():
        name = np.dtype(d["dtype"]).name
        counts[name] = counts.get(name, 0) + 1
    return counts
