"""Beat windows -> STFT power spectrogram images, vectorised over beats (numpy only).

The STFT equals ``scipy.signal.ShortTimeFFT(hamming(win_length, sym=False), hop, fs, mfft=n_fft)``
over the frames that lie fully inside the window (the tests check this against scipy). It is
computed as one matrix product with a DFT matrix restricted to the kept bins (0..fmax), which
is several times faster than an FFT of every frame when only a band is kept, and it needs
nothing but numpy, so the gateway runs this very function.
"""

from functools import lru_cache

import numpy as np

from ecgedge.preprocess.config import PreprocessConfig, SpectrogramConfig

# Beats per chunk: keeps the temporaries in cache (measured: 32-64 fastest for both presets).
_CHUNK = 64


@lru_cache(maxsize=16)
def _hamming(n: int) -> np.ndarray:
    # Periodic Hamming (scipy's get_window default for spectral analysis).
    return (0.54 - 0.46 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


@lru_cache(maxsize=16)
def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Linear-interpolation matrix [n_out, n_in] with half-pixel centres (PIL/torch align_corners=False)."""
    centres = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    centres = np.clip(centres, 0, n_in - 1)
    lo = np.floor(centres).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (centres - lo).astype(np.float32)
    m = np.zeros((n_out, n_in), dtype=np.float32)
    m[np.arange(n_out), lo] += 1 - frac
    m[np.arange(n_out), hi] += frac
    return m


def n_bins(spec: SpectrogramConfig, fs: float) -> int:
    freqs = np.fft.rfftfreq(spec.n_fft, d=1 / fs)
    return len(freqs) if spec.fmax_hz is None else int(np.searchsorted(freqs, spec.fmax_hz, side="right"))


def n_frames(spec: SpectrogramConfig, window_length: int) -> int:
    return (window_length - spec.win_length) // spec.hop + 1


@lru_cache(maxsize=16)
def _dft_matrix(win_length: int, n_fft: int, bins: int) -> np.ndarray:
    """Windowed real DFT as a [win_length, 2*bins] matrix: real parts, then imaginary parts."""
    angle = 2 * np.pi * np.outer(np.arange(win_length), np.arange(bins)) / n_fft
    basis = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)
    return (basis * _hamming(win_length)[:, None]).astype(np.float32)


def _power(windows: np.ndarray, spec: SpectrogramConfig, fs: float) -> np.ndarray:
    """|STFT|^2, float32 ``[n_beats, n_frames, n_bins]``."""
    bins = n_bins(spec, fs)
    frames = np.lib.stride_tricks.sliding_window_view(windows, spec.win_length, axis=-1)[:, :: spec.hop]
    n, t = frames.shape[:2]
    coeffs = frames.reshape(-1, spec.win_length) @ _dft_matrix(spec.win_length, spec.n_fft, bins)
    power = np.square(coeffs[:, :bins])
    power += np.square(coeffs[:, bins:])
    return power.reshape(n, t, bins)


def stft_power_db(windows: np.ndarray, spec: SpectrogramConfig, fs: float) -> np.ndarray:
    """Power spectrogram in dB, float32 ``[n_beats, n_freq, n_frames]`` (low frequency first)."""
    power = _power(np.atleast_2d(np.asarray(windows, dtype=np.float32)), spec, fs)
    return (10 * np.log10(power + 1e-12)).transpose(0, 2, 1)


def _images(windows: np.ndarray, spec: SpectrogramConfig, fs: float) -> np.ndarray:
    """One chunk of beats -> uint8 images: each beat's top ``dynamic_range_db`` mapped to 0..255."""
    power = _power(windows, spec, fs)
    n, t, bins = power.shape
    # dB relative to the beat's peak, in place: the temporaries dominate the cost.
    power /= power.max(axis=(1, 2), keepdims=True) + 1e-30
    power += 1e-30
    np.log2(power, out=power)  # numpy's float32 log2 is vectorised, log10 is 2x slower here
    power *= 10 * np.log10(2) / spec.dynamic_range_db
    power += 1
    np.clip(power, 0, 1, out=power)
    height, width = spec.image_size
    # Low frequencies at the bottom of the picture, as spectrograms are drawn.
    image = power.reshape(-1, bins) @ _resize_matrix(bins, height)[::-1].T if bins != height else power[..., ::-1]
    image = np.ascontiguousarray(image.reshape(n, t, height).transpose(0, 2, 1)).reshape(-1, t)
    if t != width:
        image = image @ _resize_matrix(t, width).T
    image *= 255
    image += 0.5  # round half up on the uint8 cast (values are >= 0)
    return image.reshape(n, height, width).astype(np.uint8)


def beats_to_images(windows: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Beat windows float ``[n, window.length]`` -> uint8 images ``[n, H, W]``."""
    windows = np.atleast_2d(np.asarray(windows, dtype=np.float32))
    if windows.shape[-1] != config.window.length:
        raise ValueError(f"expected windows of {config.window.length} samples, got {windows.shape[-1]}")
    height, width = config.spectrogram.image_size
    out = np.empty((len(windows), height, width), dtype=np.uint8)
    for start in range(0, len(windows), _CHUNK):
        chunk = windows[start : start + _CHUNK]
        out[start : start + len(chunk)] = _images(chunk, config.spectrogram, config.fs)
    return out
