"""The gateway package: numpy + scipy + one inference runtime only (no torch, no wfdb).

Classifying beats with an exported model:

* :mod:`.runtime` -- :func:`load_runtime` runs an exported ``.onnx`` (onnxruntime) or ``.tflite``
  (LiteRT) model with numpy in and numpy out;
* :mod:`.metadata` -- the ``ecgedge`` metadata embedded in those files;
* :mod:`.latency` -- per-beat latency of loaded runtimes.

The streaming front end: a gateway receives each patient's ECG as a continuous stream of sample chunks. Everything here
keeps its state across chunks, so feeding a signal in any chunking gives exactly what one call on
the whole signal gives (tested):

* :mod:`.filters` -- causal Butterworth filters (``sosfilt`` with carried state); the baseline
  high-pass and its group delay in the QRS band.
* :mod:`.quality` -- flat-line, saturation and NaN stretches, found online.
* :mod:`.qrs` -- an online QRS detector (Pan & Tompkins 1985 features, Hamilton & Tompkins 1986
  decision rules) emitting R-peak sample indices with a bounded latency.
"""

from ecgedge.firmware_host.filters import SosFilter, bandpass, highpass
from ecgedge.firmware_host.qrs import QrsConfig, QrsDetector, detect_qrs
from ecgedge.firmware_host.quality import QualityEvent, QualityTracker
from ecgedge.firmware_host.runtime import LiteRTRuntime, OnnxRuntime, Runtime, load_runtime

__all__ = [
    "SosFilter",
    "bandpass",
    "highpass",
    "QrsConfig",
    "QrsDetector",
    "detect_qrs",
    "QualityEvent",
    "QualityTracker",
    "Runtime",
    "OnnxRuntime",
    "LiteRTRuntime",
    "load_runtime",
]
