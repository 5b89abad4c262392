"""What every model runner shares: numpy in, numpy out, the same input checks and error messages.

:class:`Runtime` is the interface; the runners are :class:`ecgedge.firmware_host.runtime.OnnxRuntime`
and :class:`~ecgedge.firmware_host.runtime.LiteRTRuntime` (the gateway's, numpy only) and
:class:`ecgedge.models.torch_runtime.TorchRuntime` (a training checkpoint, host side).
:func:`interpreter_class` finds the installed TFLite interpreter (ai-edge-litert, else
tflite-runtime) for the gateway runner and for export's tensor descriptions. No torch here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess.rhythm import N_RHYTHM

__all__ = ["Runtime", "DEFAULT_CLASSES", "interpreter_class", "first_line"]

DEFAULT_CLASSES = ("N", "S", "V", "F", "Q")


class Runtime:
    """A loaded model. Subclasses implement :meth:`_run` on prepared float inputs."""

    format: str = ""
    backend: str = ""

    def __init__(self, path: Path, metadata: dict):
        self.path = Path(path)
        self.metadata = metadata or {}

    # -- what the model expects
    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("classes") or DEFAULT_CLASSES[: self.num_classes])

    @property
    def precision(self) -> str:
        return str(self.metadata.get("precision", "fp32"))

    input_size: tuple[int, int]
    rr_features: bool
    num_classes: int

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, backend={self.backend!r}, precision={self.precision!r})"

    # -- inference
    def predict(self, images: np.ndarray, rr: np.ndarray | None = None) -> np.ndarray:
        """Logits float32 ``[B, num_classes]`` of uint8 spectrograms ``[B, H, W]`` (+ rhythm features ``[B, N_RHYTHM]``)."""
        x, rr = self._prepare(images, rr)
        if len(x) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        return np.asarray(self._run(x, rr), dtype=np.float32)

    def predict_classes(self, images: np.ndarray, rr: np.ndarray | None = None) -> np.ndarray:
        return self.predict(images, rr).argmax(axis=1)

    def _prepare(self, images, rr) -> tuple[np.ndarray, np.ndarray | None]:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise EcgEdgeError(f"{self.path.name}: images must be uint8 spectrograms, got dtype {images.dtype}")
        if images.ndim == 4 and images.shape[1] == 1:
            images = images[:, 0]
        h, w = self.input_size
        if images.ndim != 3 or images.shape[1:] != (h, w):
            raise EcgEdgeError(f"{self.path.name}: expected images of shape [B, {h}, {w}], got {list(images.shape)}")
        x = (images.astype(np.float32) / np.float32(255.0))[:, None]
        if self.rr_features:
            if rr is None:
                raise EcgEdgeError(f"{self.path.name} was trained with rhythm features: pass rr [B, {N_RHYTHM}] (ecgedge.preprocess.rhythm)")
            rr = np.asarray(rr, dtype=np.float32)
            if rr.shape != (len(x), N_RHYTHM):
                raise EcgEdgeError(f"{self.path.name}: expected rr of shape [{len(x)}, {N_RHYTHM}], got {list(rr.shape)}")
        else:
            rr = None
        return np.ascontiguousarray(x), rr

    def _run(self, x: np.ndarray, rr: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError


def interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime"
    except ImportError:
        raise EcgEdgeError(
            "running .tflite models needs ai-edge-litert (or tflite-runtime): pip install 'ecgedge[gateway]'"
        ) from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
