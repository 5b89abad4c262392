"""Detected beats as a WFDB annotation file (host side: needs wfdb), readable by ``rdann`` / ``bxb``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

__all__ = ["write_beat_annotations", "read_beat_annotations"]


def write_beat_annotations(
    record: str,
    samples: np.ndarray,
    out_dir: str | Path,
    fs: float,
    symbols: np.ndarray | list[str] | None = None,
    extension: str = "qrs",
) -> Path:
    """Write beats at ``samples`` (labelled ``symbols``, default ``N``) as ``OUT_DIR/RECORD.EXT``.

    WFDB annotation files store sample numbers as increments, so the beats are written sorted; a
    record's header is not needed to read them back (``wfdb.rdann(path, ext)``), and PhysioNet's
    ``bxb -r RECORD -a atr EXT`` compares them with the reference once the file sits beside the record.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = np.asarray(samples, dtype=np.int64)
    if symbols is None:
        symbols = np.full(len(samples), "N")
    symbols = np.asarray(symbols, dtype=str)
    if len(symbols) != len(samples):
        raise ValueError(f"{len(samples)} samples but {len(symbols)} symbols")
    if len(samples) and samples.min() < 0:
        raise ValueError("annotation samples must be >= 0")
    order = np.argsort(samples, kind="stable")
    wfdb.wrann(
        record,
        extension,
        sample=samples[order],
        symbol=symbols[order].tolist(),
        fs=fs,
        write_dir=str(out_dir),
    )
    return out_dir / f"{record}.{extension}"


def read_beat_annotations(path_without_ext: str | Path, extension: str = "qrs") -> tuple[np.ndarray, np.ndarray]:
    """Sample indices and symbols of an annotation file (``wfdb.rdann``)."""
    ann = wfdb.rdann(str(path_without_ext), extension)
    return np.asarray(ann.sample, dtype=np.int64), np.asarray(ann.symbol, dtype=str)
