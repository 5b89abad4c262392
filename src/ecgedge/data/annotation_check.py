"""Plausibility of a record's reference annotations (``.atr``) and of its header's sampling rate.

Without PhysioNet's ``SHA256SUMS.txt`` nothing vouches for an annotation file's bytes, and wfdb
reads a damaged one without complaint: an empty file gives no beats (the record silently
vanishes), a file cut at an odd byte gives the annotations before the cut (beats silently
missing). So every ``.atr`` is checked for what any complete MIT-BIH annotation file has: the
WFDB end-of-file word (two zero bytes), at least one beat, every sample inside the record, and
samples in strictly increasing order (true of all 48 MIT-BIH records).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ecgedge.data.aami import SYMBOL_TO_AAMI
from ecgedge.errors import DataError

# WFDB annotation files are 16-bit little-endian words and end with the word 0 (type 0, interval 0).
_EOF_WORD = b"\0\0"


def check_annotation_bytes(path: Path, fix: str) -> None:
    """Refuse an ``.atr`` that is empty or ends before its end-of-file word (truncated)."""
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path} is empty (0 bytes); {fix}")
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 2))
        tail = fh.read()
    if size % 2 or tail != _EOF_WORD:
        raise DataError(f"{path} is truncated ({size} bytes, no WFDB end-of-file marker); {fix}")


def check_annotation_values(path: Path, sample: np.ndarray, symbol: np.ndarray, sig_len: int, fix: str) -> None:
    """Refuse annotations without beats, outside ``[0, sig_len)`` or not strictly increasing."""
    if not any(s in SYMBOL_TO_AAMI for s in symbol):
        raise DataError(f"{path} holds no beat annotation ({len(sample)} annotations in all); {fix}")
    outside = (sample < 0) | (sample >= sig_len)
    if outside.any():
        first = int(sample[np.argmax(outside)])
        raise DataError(f"{path}: {int(outside.sum())} annotation(s) outside the record's {sig_len} samples (first at sample {first}); {fix}")
    steps = np.diff(sample)
    if (steps <= 0).any():
        at = int(sample[1:][np.argmax(steps <= 0)])
        raise DataError(f"{path}: annotation samples are not strictly increasing (at sample {at}); {fix}")


def check_sampling_rate(header_path: Path, fs: float | None, fix: str) -> float:
    """The header's sampling rate; DataError unless it is a finite positive number."""
    if fs is None or not math.isfinite(float(fs)) or float(fs) <= 0:
        raise DataError(f"{header_path} gives a sampling rate of {fs} Hz; it must be positive (MIT-BIH: 360); {fix}")
    return float(fs)
