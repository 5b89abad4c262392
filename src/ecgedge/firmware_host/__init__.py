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

The deploy side (``python -m ecgedge.firmware_host``, see :mod:`.__main__`): :mod:`.bundle_verify`
(signature, checksums, safe extraction), :mod:`.selftest` (golden vectors), :mod:`.install`
(versioned directories, atomic ``current`` switch, rollback).

The service that runs on the gateway (``python -m ecgedge.firmware_host serve``): :mod:`.service`
(loads ``current`` once, checks and self-tests its model, runs the Gateway over TCP/stdin),
:mod:`.protocol` (its newline-delimited JSON input), :mod:`.health` (its health file and the
check ``ecgedge deploy`` runs), :mod:`.systemd` (its unit file).
"""

import importlib

#: public name -> submodule; imported on first use, so ``python -m ecgedge.firmware_host status``
#: (the deploy commands) does not pay for scipy.signal, ~1.7 s here and several on a Pi
_EXPORTS = {
    "SosFilter": "filters",
    "bandpass": "filters",
    "highpass": "filters",
    "QrsConfig": "qrs",
    "QrsDetector": "qrs",
    "detect_qrs": "qrs",
    "QualityEvent": "quality",
    "QualityTracker": "quality",
    "Runtime": "runtime",
    "OnnxRuntime": "runtime",
    "LiteRTRuntime": "runtime",
    "load_runtime": "runtime",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
