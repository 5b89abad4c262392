"""Baseline-wander removal for a whole record (before beats are cut out)."""

import numpy as np
from scipy.signal import butter, sosfiltfilt  # imported eagerly: forked workers then share it


def highpass(signal: np.ndarray, fs: float, cutoff_hz: float, order: int) -> np.ndarray:
    """Zero-phase Butterworth high-pass: zero phase keeps R peaks where the annotations are."""
    if cutoff_hz <= 0:
        return signal.astype(np.float32, copy=False)
    sos = butter(order, cutoff_hz, btype="highpass", fs=fs, output="sos")
    return sosfiltfilt(sos, signal).astype(np.float32)
