"""Reading one MIT-BIH record (a lead and its reference beat annotations) as a plain object.

wfdb does the parsing; this module turns its many failure modes (missing file, truncated
signal, unparsable header) into one-line :class:`DataError` messages that name the file.
"""

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import wfdb
from wfdb.io._signal import BYTES_PER_SAMPLE

from ecgedge.data.aami import MITDB_FS, MITDB_RECORDS
from ecgedge.data.annotation_check import check_annotation_bytes, check_annotation_values, check_sampling_rate
from ecgedge.data.record_list import check_record_list
from ecgedge.errors import DataError

_FIX_HINT = "run `ecgedge data download --data-dir {dir}` to restore it, or `ecgedge data verify` to check the directory"


@dataclass(frozen=True)
class Record:
    """One lead of one record, at :data:`MITDB_FS`, with its reference annotations."""

    name: str
    fs: int
    signal: np.ndarray  # float32 [n_samples], millivolts
    annotations: "Annotations"
    source_fs: float  # sampling rate in the file, before any resampling


def check_record_names(records: list[str], known: tuple[str, ...] = MITDB_RECORDS) -> None:
    check_record_list(records)
    unknown = [r for r in records if r not in known]
    if unknown:
        raise DataError(
            f"unknown record(s) {', '.join(unknown)}; MIT-BIH records are {known[0]}..{known[-1]} "
            f"({len(known)} records, see RECORDS in the data directory)."
        )


def require_data_dir(data_dir: Path) -> None:
    if not data_dir.is_dir():
        raise DataError(
            f"MIT-BIH directory {data_dir} does not exist; pass --data-dir, set ECGEDGE_DATA_DIR, "
            f"or run `ecgedge data download --data-dir {data_dir}`."
        )


def _read_header(data_dir: Path, name: str) -> wfdb.Record:
    hea = data_dir / f"{name}.hea"
    if not hea.is_file():
        raise DataError(f"record {name}: {hea} is missing; " + _FIX_HINT.format(dir=data_dir))
    try:
        return wfdb.rdheader(str(data_dir / name))
    except Exception as exc:  # wfdb raises many types for a malformed header
        raise DataError(
            f"record {name}: {hea} could not be parsed ({type(exc).__name__}: {exc}); "
            + _FIX_HINT.format(dir=data_dir)
        ) from None


def _check_signal_file(data_dir: Path, name: str, header: wfdb.Record) -> None:
    """Fail on a missing or truncated ``.dat`` before wfdb silently pads or crashes on it."""
    for file_name in dict.fromkeys(header.file_name):
        path = data_dir / file_name
        if not path.is_file():
            raise DataError(f"record {name}: {path} is missing; " + _FIX_HINT.format(dir=data_dir))
        in_file = [i for i, f in enumerate(header.file_name) if f == file_name]
        fmt = header.fmt[in_file[0]]
        offset = (header.byte_offset or [None])[in_file[0]] or 0
        if fmt not in BYTES_PER_SAMPLE or header.sig_len is None:
            continue  # unusual formats: let wfdb judge
        expected = offset + math.ceil(header.sig_len * len(in_file) * BYTES_PER_SAMPLE[fmt])
        size = path.stat().st_size
        if size < expected:
            raise DataError(
                f"record {name}: {path} is truncated ({size} of {expected} bytes); "
                + _FIX_HINT.format(dir=data_dir)
            )


@dataclass(frozen=True)
class Annotations:
    """Reference annotations of a record, in samples at ``fs``."""

    name: str
    fs: int
    n_samples: int  # record length at ``fs``
    sample: np.ndarray  # int64 [n_ann]
    symbol: np.ndarray  # str [n_ann]


def _checked_header(data_dir: Path, name: str, lead: str) -> wfdb.Record:
    header = _read_header(data_dir, name)
    if lead not in header.sig_name:
        raise DataError(
            f"record {name}: lead {lead} not in {data_dir / (name + '.hea')} "
            f"(it has {', '.join(header.sig_name)}); choose another lead or record."
        )
    check_sampling_rate(data_dir / f"{name}.hea", header.fs, _FIX_HINT.format(dir=data_dir))
    _check_signal_file(data_dir, name, header)
    return header


def _read_atr(data_dir: Path, name: str, source_fs: float, sig_len: int, target_fs: int) -> Annotations:
    atr = data_dir / f"{name}.atr"
    if not atr.is_file():
        raise DataError(f"record {name}: {atr} is missing; " + _FIX_HINT.format(dir=data_dir))
    fix = _FIX_HINT.format(dir=data_dir)
    check_annotation_bytes(atr, fix)
    try:
        ann = wfdb.rdann(str(data_dir / name), "atr")
    except Exception as exc:
        raise DataError(
            f"record {name}: {atr} could not be read ({type(exc).__name__}: {exc}); "
            + _FIX_HINT.format(dir=data_dir)
        ) from None
    check_annotation_values(atr, np.asarray(ann.sample, dtype=np.int64), np.asarray(ann.symbol, dtype=str), sig_len, fix)
    scale = target_fs / source_fs
    return Annotations(
        name=name,
        fs=target_fs,
        n_samples=int(round(sig_len * scale)),
        sample=np.round(np.asarray(ann.sample, dtype=np.int64) * scale).astype(np.int64),
        symbol=np.asarray(ann.symbol, dtype=str),
    )


def check_record(data_dir: Path, name: str, lead: str = "MLII") -> None:
    """Cheap checks (header parses, lead present, signal file complete) before a long job starts."""
    _checked_header(data_dir, name, lead)


def read_annotations(data_dir: Path, name: str, lead: str = "MLII", target_fs: int = MITDB_FS) -> Annotations:
    """The ``atr`` annotations of record ``name`` (the signal file is checked, not read)."""
    header = _checked_header(data_dir, name, lead)
    return _read_atr(data_dir, name, float(header.fs), int(header.sig_len), target_fs)


def read_record(data_dir: Path, name: str, lead: str = "MLII", target_fs: int = MITDB_FS) -> Record:
    """Read ``lead`` and the ``atr`` annotations of record ``name``, resampled to ``target_fs``."""
    header = _checked_header(data_dir, name, lead)
    try:
        rec = wfdb.rdrecord(str(data_dir / name), channel_names=[lead])
    except Exception as exc:
        raise DataError(
            f"record {name}: {data_dir / header.file_name[0]} could not be read "
            f"({type(exc).__name__}: {exc}); " + _FIX_HINT.format(dir=data_dir)
        ) from None
    source_fs = float(rec.fs)
    ann = _read_atr(data_dir, name, source_fs, rec.sig_len, target_fs)
    signal = rec.p_signal[:, 0].astype(np.float32)
    if not np.isfinite(signal).all():
        signal = np.nan_to_num(signal, nan=0.0)  # wfdb marks invalid samples as NaN
    if source_fs != target_fs:
        from scipy.signal import resample_poly  # only for databases not sampled at 360 Hz

        ratio = Fraction(target_fs) / Fraction(source_fs).limit_denominator(1000)
        signal = resample_poly(signal, ratio.numerator, ratio.denominator).astype(np.float32)
    return Record(name=name, fs=target_fs, signal=signal, annotations=ann, source_fs=source_fs)
