"""Run an exported beat classifier with numpy in and numpy out: what the gateway imports.

No torch at import time (a Raspberry-Pi gateway has none); torch is imported only when a
``.pt`` checkpoint (or a run directory) is loaded.

    rt = load_runtime("model-int8.tflite")
    logits = rt.predict(images_uint8_BxHxW, rr_Bx3_seconds_or_None)   # float32 [B, 5]
    rt.metadata["classes"]                                             # ["N", "S", "V", "F", "Q"]

Backends, chosen by the file suffix:

* ``.onnx``  -> onnxruntime (CPU execution provider).
* ``.tflite`` -> LiteRT (``ai_edge_litert.interpreter``), else ``tflite_runtime.interpreter``
  (note: tflite-runtime 2.14 cannot load models under numpy 2).
* ``.pt`` checkpoint or a run directory (``checkpoints/best.pt``) -> torch, imported lazily
  (:class:`ecgedge.models.torch_runtime.TorchRuntime`; not part of a gateway install).

Input convention of every exported model (see ``metadata["inputs"]``): ``image`` float32
``[B, 1, H, W]`` = uint8 spectrogram / 255, optional ``rr`` float32 ``[B, N_RHYTHM]`` (the rhythm features of
``ecgedge.preprocess.rhythm``: RR intervals in seconds and their ratios). A full-integer TFLite model takes ``image`` as int8 with scale 1/255 and
zero point -128 (``q = u8 - 128``) and returns int8 logits; this module quantises and dequantises
with the parameters the interpreter reports, so callers always pass uint8 and get float logits.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ecgedge.errors import EcgEdgeError
from ecgedge.run_dirs import best_checkpoint
from ecgedge.firmware_host.metadata import read_onnx_metadata_props, read_tflite_metadata
from ecgedge.model_runner import DEFAULT_CLASSES, Runtime, first_line as _first_line, interpreter_class

__all__ = ["Runtime", "OnnxRuntime", "LiteRTRuntime", "load_runtime", "quantize", "dequantize", "SUFFIXES"]

SUFFIXES = {".onnx": "onnx", ".tflite": "tflite", ".pt": "torch"}


# --------------------------------------------------------------------------- onnxruntime


class OnnxRuntime(Runtime):
    format = "onnx"
    backend = "onnxruntime"

    def __init__(self, path: Path, num_threads: int | None = None, batch_size: int = 512):
        try:
            import onnxruntime as ort
        except ImportError:
            raise EcgEdgeError(f"{path}: running .onnx models needs onnxruntime: pip install 'ecgedge[gateway]'") from None
        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = int(num_threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(os.fspath(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for damaged files
            raise EcgEdgeError(f"{path} is not a loadable ONNX model ({_first_line(exc)}); export it again.") from None
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        super().__init__(path, read_onnx_metadata_props(props, Path(path)))
        inputs = self.session.get_inputs()
        image = next((i for i in inputs if len(i.shape) == 4), None)
        if image is None:
            raise EcgEdgeError(f"{path} has no [B, 1, H, W] image input; it is not an ecgedge model.")
        self._image_name = image.name
        self._rr_name = next((i.name for i in inputs if len(i.shape) == 2), None)
        self.rr_features = self._rr_name is not None
        self.input_size = (int(image.shape[2]), int(image.shape[3]))
        out = self.session.get_outputs()[0]
        self.num_classes = int(out.shape[-1]) if isinstance(out.shape[-1], int) else len(self.metadata.get("classes", DEFAULT_CLASSES))
        batch = image.shape[0]
        self._fixed_batch = int(batch) if isinstance(batch, int) else None
        self.batch_size = self._fixed_batch or int(batch_size)

    def _run(self, x, rr):
        out = []
        for start in range(0, len(x), self.batch_size):
            xb = x[start : start + self.batch_size]
            n = len(xb)
            feeds = {self._image_name: _pad(xb, self._fixed_batch)}
            if self._rr_name is not None:
                feeds[self._rr_name] = _pad(rr[start : start + self.batch_size], self._fixed_batch)
            out.append(self.session.run(None, feeds)[0][:n])
        return np.concatenate(out)


def _pad(a: np.ndarray, batch: int | None) -> np.ndarray:
    if batch is None or len(a) == batch:
        return a
    pad = np.zeros((batch - len(a), *a.shape[1:]), a.dtype)
    return np.concatenate([a, pad])


# --------------------------------------------------------------------------- LiteRT / TFLite


class LiteRTRuntime(Runtime):
    format = "tflite"

    def __init__(self, path: Path, num_threads: int | None = None):
        path = Path(path)
        buf = path.read_bytes()
        meta = read_tflite_metadata(path, buf)  # also rejects files that are not TFLite models
        Interpreter, self.backend = interpreter_class()
        try:
            self.interpreter = Interpreter(model_path=os.fspath(path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise EcgEdgeError(f"{path} is not a loadable TFLite model ({_first_line(exc)}); export it again.") from None
        super().__init__(path, meta)
        inputs = self.interpreter.get_input_details()
        image = next((d for d in inputs if len(d["shape"]) == 4), None)
        if image is None:
            raise EcgEdgeError(f"{path} has no [B, 1, H, W] image input; it is not an ecgedge model.")
        self._image = image
        self._rr = next((d for d in inputs if len(d["shape"]) == 2), None)
        self._out = self.interpreter.get_output_details()[0]
        self.rr_features = self._rr is not None
        self.input_size = (int(image["shape"][2]), int(image["shape"][3]))
        self.num_classes = int(self._out["shape"][-1])
        self.batch = int(image["shape"][0])

    @property
    def input_details(self) -> list[dict]:
        return self.interpreter.get_input_details()

    @property
    def output_details(self) -> list[dict]:
        return self.interpreter.get_output_details()

    def _run(self, x, rr):
        it, b = self.interpreter, self.batch
        out = np.empty((len(x), self.num_classes), np.float32)
        for start in range(0, len(x), b):
            n = min(b, len(x) - start)
            it.set_tensor(self._image["index"], quantize(_pad(x[start : start + n], b), self._image))
            if self._rr is not None:
                it.set_tensor(self._rr["index"], quantize(_pad(rr[start : start + n], b), self._rr))
            it.invoke()
            out[start : start + n] = dequantize(it.get_tensor(self._out["index"]), self._out)[:n]
        return out


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float array -> the tensor's dtype, with its (per-tensor) scale and zero point."""
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return x.astype(np.float32, copy=False)
    scale, zero = detail["quantization"]
    if not scale:
        raise EcgEdgeError(f"input {detail['name']} is {dtype} without quantization parameters")
    info = np.iinfo(dtype)
    return np.clip(np.round(x / np.float32(scale)) + zero, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return q
    scale, zero = detail["quantization"]
    return (q.astype(np.float32) - np.float32(zero)) * np.float32(scale)


# --------------------------------------------------------------------------- front door


def load_runtime(path: str | os.PathLike, num_threads: int | None = None) -> Runtime:
    """Load an exported model (``.onnx``, ``.tflite``), a ``.pt`` checkpoint or a run directory."""
    path = Path(path)
    if path.is_dir():
        best = best_checkpoint(path)
        if not best.is_file():
            raise EcgEdgeError(f"{path} is a directory without checkpoints/best.pt; pass a model file or a finished run.")
        path = best
    if not path.is_file():
        raise EcgEdgeError(f"{path} not found.")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise EcgEdgeError(f"{path}: unknown model format {path.suffix!r}; expected one of {', '.join(SUFFIXES)}.")
    if path.stat().st_size == 0:
        raise EcgEdgeError(f"{path} is empty; export it again.")
    if kind == "onnx":
        return OnnxRuntime(path, num_threads)
    if kind == "tflite":
        return LiteRTRuntime(path, num_threads)
    from ecgedge.models.torch_runtime import TorchRuntime  # host side: torch, imported only for checkpoints

    return TorchRuntime(path, num_threads)
