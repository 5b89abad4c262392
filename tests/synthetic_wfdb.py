"""A small synthetic WFDB database that looks like MIT-BIH to the toolkit (no download needed).

Each record: two leads (MLII, V1) at 360 Hz, format 212 like MIT-BIH, a few hundred beats of a
Gaussian-shaped QRS on a slow baseline wander, with reference annotations (mostly N, some
premature S and wide V beats) written by ``wfdb.wrann``. Record names must be MIT-BIH's, since
the toolkit only accepts those; which names decides DS1 / DS2 membership.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

FS = 360


def synthetic_signal(n_beats: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(signal [n, 2] in mV, R-peak samples, beat symbols)."""
    rng = np.random.default_rng(seed)
    symbols = rng.choice(["N", "A", "V"], size=n_beats, p=[0.85, 0.08, 0.07]).tolist()
    rr = rng.normal(0.8, 0.03, n_beats) * FS
    rr[[i for i, s in enumerate(symbols) if s in "AV"]] *= 0.65  # premature beats come early
    peaks = (FS + np.cumsum(rr)).astype(np.int64)
    n = int(peaks[-1] + 2 * FS)
    t = np.arange(n)
    sig = 0.1 * np.sin(2 * np.pi * 0.3 * t / FS)[:, None].repeat(2, axis=1)
    for p, s in zip(peaks, symbols):
        width = 0.012 * FS if s != "V" else 0.035 * FS  # V beats are wide
        lo, hi = max(0, p - 60), min(n, p + 60)
        qrs = np.exp(-0.5 * ((t[lo:hi] - p) / width) ** 2)
        sig[lo:hi, 0] += 1.2 * qrs
        sig[lo:hi, 1] -= 0.6 * qrs
    sig += rng.normal(0, 0.01, sig.shape)
    return sig, peaks, symbols


def write_record(directory: Path, name: str, n_beats: int = 300, seed: int = 0, fs: int = FS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    sig, peaks, symbols = synthetic_signal(n_beats, seed)
    wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=["MLII", "V1"], p_signal=sig, fmt=["212", "212"], adc_gain=[200.0, 200.0], baseline=[1024, 1024], write_dir=str(directory))
    wfdb.wrann(name, "atr", peaks, symbols, write_dir=str(directory))
    return directory


def write_database(directory: Path, records: tuple[str, ...] = ("101", "106"), n_beats: int = 300) -> Path:
    for i, name in enumerate(records):
        write_record(directory, name, n_beats, seed=i)
    return directory
