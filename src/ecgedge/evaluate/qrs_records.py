"""Score the streaming QRS detector on MIT-BIH records with EC57 matching (host side)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgedge.data.records import read_record
from ecgedge.evaluate.ec57 import BeatMatch, QrsCounts, average, gross, qrs_counts, reference_beats
from ecgedge.firmware_host.qrs import QrsConfig, QrsDetector

__all__ = ["RecordResult", "stream_record", "score_record", "summarize"]


@dataclass(frozen=True)
class RecordResult:
    counts: QrsCounts
    match: BeatMatch
    detections: np.ndarray  # R-peak samples
    decided_at: np.ndarray  # sample time each beat was emitted at
    searchback: np.ndarray  # bool, found by the search back
    reference: np.ndarray  # reference beat samples
    quality_events: list
    seconds: float  # wall time of the streaming
    n_samples: int


def stream_record(signal: np.ndarray, config: QrsConfig, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list, float]:
    """Stream ``signal`` from its first sample through a fresh detector in ``chunk``-sample chunks."""
    det = QrsDetector(config)
    beats = []
    t0 = time.perf_counter()
    for start in range(0, len(signal), chunk):
        beats += det.process(signal[start : start + chunk])
    beats += det.flush()
    seconds = time.perf_counter() - t0
    arr = np.array([(b.sample, b.decided_at, b.searchback) for b in beats], dtype=np.int64).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2].astype(bool), det.quality_events, seconds


def score_record(data_dir: Path, name: str, config: QrsConfig | None = None, chunk_s: float = 1.0) -> RecordResult:
    """Stream lead MLII of record ``name`` through the detector and compare with its ``atr`` beats."""
    config = config or QrsConfig()
    rec = read_record(Path(data_dir), name)
    if rec.fs != config.fs:
        raise ValueError(f"record {name} is at {rec.fs} Hz, the detector at {config.fs} Hz")
    chunk = max(1, int(round(chunk_s * rec.fs)))
    det, decided, sb, events, seconds = stream_record(rec.signal, config, chunk)
    ref, _, episodes = reference_beats(rec.annotations.sample, rec.annotations.symbol)
    counts, match = qrs_counts(name, ref, det, rec.fs, episodes=episodes)
    return RecordResult(counts, match, det, decided, sb, ref, events, seconds, len(rec.signal))


def summarize(results: list[RecordResult], sets: dict[str, list[str]]) -> dict:
    """Per-record counts plus gross and average Se / +P over each named set of records."""
    by_name = {r.counts.record: r.counts for r in results}
    out = {"records": {n: c.to_dict() for n, c in by_name.items()}, "sets": {}}
    for set_name, names in sets.items():
        counts = [by_name[n] for n in names if n in by_name]
        if not counts:
            continue
        out["sets"][set_name] = {
            "records": [c.record for c in counts],
            "gross": gross(counts, set_name).to_dict(),
            "average": average(counts),
        }
    return out
