"""``ecgedge ec57``: replay MIT-BIH records through the gateway and score it as EC57 does (host side).

Each record's lead MLII is streamed from its first sample, in ``chunk_s`` chunks, through one
:class:`~ecgedge.firmware_host.stream.Gateway` (causal filter, online QRS detection, rhythm
features, spectrogram, the model), as fast as the machine allows. The gateway's beats are written
as a WFDB annotation file ``OUT/<record>.<ext>`` (AAMI class -> MIT symbol N, A, V, F, Q), which
``wfdb.rdann`` and PhysioNet's ``bxb -r REC -a atr ecg`` read once the file sits beside the record.

Scoring, beat by beat against the reference ``atr`` annotations:

* QRS Se / +P: :func:`ecgedge.evaluate.ec57.qrs_counts` (150 ms window, one-to-one matching,
  closest pairs first; first 5 minutes excluded from the counts, not from the matching; F and Q
  reference beats are beats; detections inside VF episodes not counted as false).
* VEB / SVEB Se / +P / FPR: :func:`ecgedge.evaluate.ec57_classes.class_counts` on the same
  matching (F labelled V is not a VEB false positive; reference Q beats not scored; missed beats
  are false negatives; unmatched detections labelled V / S are false positives).
* AAMI class metrics of the matched pairs (whole record, reference AAMI beats only, including Q),
  by :func:`ecgedge.evaluate.aami_metrics`: the schema of ``ecgedge evaluate`` (``four_class``,
  ``ec57``, ``per_class``...), so the two can be compared; a second block after the learning period.

Per record, then gross (counts summed) and average (mean of per-record figures) over the set.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES, DS1, DS2, MITDB_RECORDS, PACED_RECORDS
from ecgedge.errors import EcgEdgeError
from ecgedge.evaluate.ec57 import LEARNING_PERIOD_S, QrsCounts, average, gross, qrs_counts, reference_beats
from ecgedge.evaluate.ec57_classes import ClassCounts, average_class, class_counts, gross_class, matched_labels
from ecgedge.evaluate.metrics import aami_metrics

__all__ = ["SYMBOL_OF_CLASS", "RecordRun", "parse_record_set", "stream_record", "run_ec57", "write_report"]

#: AAMI class -> the MIT-BIH beat symbol written in the annotation file.
SYMBOL_OF_CLASS = {"N": "N", "S": "A", "V": "V", "F": "F", "Q": "Q"}

RECORD_SETS = {
    "DS1": DS1,
    "DS2": DS2,
    "all": tuple(r for r in MITDB_RECORDS if r not in PACED_RECORDS),
}


def parse_record_set(spec: str) -> tuple[str, ...]:
    """``DS1`` | ``DS2`` | ``all`` (44 non-paced) | a comma list of record names (checked)."""
    from ecgedge.data.records import check_record_names

    if spec in RECORD_SETS:
        return RECORD_SETS[spec]
    names = tuple(r.strip() for r in spec.split(",") if r.strip())
    if not names:
        raise EcgEdgeError("--records is empty; pass DS1, DS2, all or a comma list such as 100,101.")
    check_record_names(list(names))
    return names


@dataclass(frozen=True)
class RecordRun:
    record: str
    fs: float
    n_samples: int
    samples: np.ndarray  # int64 detected R peaks
    labels: np.ndarray  # int64 AAMI class index of each
    latency_s: np.ndarray  # stream time from R peak to event
    padded: np.ndarray  # bool
    quality: list[dict]
    seconds: float  # wall time of the replay


def stream_record(runtime, name: str, signal: np.ndarray, fs: float, chunk_s: float = 1.0, batch_size: int = 64, max_wait_s: float = 0.5, model: str | None = None) -> RecordRun:
    """Replay ``signal`` through a fresh gateway as one stream; collect its events."""
    from ecgedge.firmware_host.sinks import ListSink
    from ecgedge.firmware_host.stream import Gateway

    sink = ListSink()
    gw = Gateway(runtime, sink, batch_size=batch_size, max_wait_s=max_wait_s, model=model)
    if float(gw.pre.fs) != float(fs):
        raise EcgEdgeError(f"record {name} is at {fs} Hz but the model expects {gw.pre.fs} Hz")
    chunk = max(1, int(round(chunk_s * fs)))
    t0 = time.perf_counter()
    for start in range(0, len(signal), chunk):
        gw.push(name, signal[start : start + chunk])
    gw.close()
    seconds = time.perf_counter() - t0
    beats = sorted(sink.beats(), key=lambda e: e["sample"])
    index = {c: i for i, c in enumerate(AAMI_CLASSES)}
    return RecordRun(
        record=name,
        fs=float(fs),
        n_samples=len(signal),
        samples=np.array([e["sample"] for e in beats], np.int64),
        labels=np.array([index[e["class"]] for e in beats], np.int64),
        latency_s=np.array([e["latency_s"] for e in beats], np.float64),
        padded=np.array([e["padded"] for e in beats], bool),
        quality=sink.quality(),
        seconds=seconds,
    )


def _metrics_or_none(y_true: np.ndarray, y_pred: np.ndarray) -> dict | None:
    return aami_metrics(y_true, y_pred) if len(y_true) else None


def run_ec57(
    model_path: Path,
    records: tuple[str, ...],
    data_dir: Path,
    out_dir: Path,
    chunk_s: float = 1.0,
    batch_size: int = 64,
    max_wait_s: float = 0.5,
    extension: str = "ecg",
    progress=None,
) -> dict:
    """Stream every record, write its annotation file, score it; returns (and writes) ``ec57.json``."""
    from ecgedge.data.records import check_record, read_record, require_data_dir
    from ecgedge.evaluate.annotations import write_beat_annotations
    from ecgedge.firmware_host.stream import model_id
    from ecgedge.firmware_host.runtime import load_runtime

    runtime = load_runtime(model_path)
    data_dir = Path(data_dir)
    require_data_dir(data_dir)
    for name in records:  # fail before a long replay, not in its middle
        check_record(data_dir, name)
    mid = model_id(runtime)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_record: dict[str, dict] = {}
    qrs_all: list[QrsCounts] = []
    veb_all: list[ClassCounts] = []
    sveb_all: list[ClassCounts] = []
    y_true, y_pred, y_true5, y_pred5 = [], [], [], []
    latencies, wall, audio = [], 0.0, 0.0
    task = progress.add_task("ec57", total=len(records)) if progress else None
    for name in records:
        rec = read_record(data_dir, name)
        run = stream_record(runtime, name, rec.signal, rec.fs, chunk_s, batch_size, max_wait_s, model=mid)
        symbols = [SYMBOL_OF_CLASS[AAMI_CLASSES[k]] for k in run.labels]
        write_beat_annotations(name, run.samples, out_dir, rec.fs, symbols, extension=extension)
        ref, ref_sym, episodes = reference_beats(rec.annotations.sample, rec.annotations.symbol)
        qc, match = qrs_counts(name, ref, run.samples, rec.fs, episodes=episodes)
        cc = class_counts(name, ref, ref_sym, run.samples, run.labels, match, rec.fs, episodes)
        t, p, k = matched_labels(ref_sym, run.labels, match)
        after = ref[match.pairs[k, 0]] >= LEARNING_PERIOD_S * rec.fs if len(k) else np.zeros(0, bool)
        y_true.append(t), y_pred.append(p), y_true5.append(t[after]), y_pred5.append(p[after])
        qrs_all.append(qc), veb_all.append(cc["veb"]), sveb_all.append(cc["sveb"])
        latencies.append(run.latency_s)
        wall += run.seconds
        audio += run.n_samples / rec.fs
        per_record[name] = {
            "qrs": qc.to_dict(),
            "veb": cc["veb"].to_dict(),
            "sveb": cc["sveb"].to_dict(),
            "detections": int(len(run.samples)),
            "padded_windows": int(run.padded.sum()),
            "quality_stretches": {kind: sum(1 for q in run.quality if q["kind"] == kind) for kind in ("nan", "saturated", "flat")},
            "seconds": run.seconds,
            "realtime_factor": (run.n_samples / rec.fs) / run.seconds if run.seconds else None,
            "annotations": f"{name}.{extension}",
        }
        if progress:
            progress.advance(task)
    if progress:
        progress.remove_task(task)
    lat = np.concatenate(latencies) if latencies else np.zeros(0)
    yt, yp = np.concatenate(y_true), np.concatenate(y_pred)
    yt5, yp5 = np.concatenate(y_true5), np.concatenate(y_pred5)
    result = {
        "model": mid,
        "model_path": str(model_path),
        "format": runtime.format,
        "precision": runtime.precision,
        "records": list(records),
        "annotation_extension": extension,
        "stream": {"chunk_s": chunk_s, "batch_size": batch_size, "max_wait_s": max_wait_s, "filter": "causal Butterworth high-pass (sosfilt), state carried"},
        "matching": "EC57: 150 ms window, one-to-one closest first; first 5 min excluded from counts; F and Q reference beats are QRS beats; F called V not a VEB FP; reference Q not scored for VEB/SVEB; detections in VF episodes not counted",
        "qrs": {"gross": gross(qrs_all).to_dict(), "average": average(qrs_all)},
        "veb": {"gross": gross_class(veb_all).to_dict(), "average": average_class(veb_all)},
        "sveb": {"gross": gross_class(sveb_all).to_dict(), "average": average_class(sveb_all)},
        "classes": _metrics_or_none(yt, yp),
        "classes_after_learning": _metrics_or_none(yt5, yp5),
        "latency_s": {"median": float(np.median(lat)) if len(lat) else None, "p99": float(np.percentile(lat, 99)) if len(lat) else None, "max": float(lat.max()) if len(lat) else None},
        "throughput": {"signal_s": audio, "wall_s": wall, "realtime_factor": audio / wall if wall else None},
        "per_record": per_record,
    }
    (out_dir / "ec57.json").write_text(json.dumps(result, indent=1, allow_nan=False))
    write_report(result, out_dir / "report.md")
    return result


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def write_report(result: dict, path: Path) -> Path:
    """A short Markdown page: the EC57 table, gross and average, and the class metrics."""
    q, v, s = result["qrs"], result["veb"], result["sveb"]
    cls = result.get("classes") or {}
    four = cls.get("four_class") or {}
    lines = [
        f"# EC57 beat-by-beat evaluation through the gateway: `{result['model']}`",
        "",
        f"Records: {', '.join(result['records'])} ({len(result['records'])}), streamed from the first sample in "
        f"{result['stream']['chunk_s']} s chunks (causal filter, online QRS detection, micro-batches of "
        f"{result['stream']['batch_size']}, max wait {result['stream']['max_wait_s']} s). Annotation files: "
        f"`<record>.{result['annotation_extension']}` (N, A, V, F, Q).",
        "",
        f"Matching: {result['matching']}.",
        "",
        "| statistic | gross Se % | gross +P % | gross FPR % | average Se % | average +P % |",
        "|---|---:|---:|---:|---:|---:|",
        f"| QRS | {_pct(q['gross']['se'])} | {_pct(q['gross']['ppv'])} | | {_pct(q['average']['se'])} | {_pct(q['average']['ppv'])} |",
        f"| VEB | {_pct(v['gross']['se'])} | {_pct(v['gross']['ppv'])} | {_pct(v['gross']['fpr'])} | {_pct(v['average']['se'])} | {_pct(v['average']['ppv'])} |",
        f"| SVEB | {_pct(s['gross']['se'])} | {_pct(s['gross']['ppv'])} | {_pct(s['gross']['fpr'])} | {_pct(s['average']['se'])} | {_pct(s['average']['ppv'])} |",
        "",
        f"QRS: TP {q['gross']['tp']}, FN {q['gross']['fn']}, FP {q['gross']['fp']}. "
        f"VEB: TP {v['gross']['tp']}, FN {v['gross']['fn']}, FP {v['gross']['fp']}. "
        f"SVEB: TP {s['gross']['tp']}, FN {s['gross']['fn']}, FP {s['gross']['fp']}.",
        "",
    ]
    if four:
        lines += [
            f"AAMI classes of the matched beats (whole records, {cls['n']} beats): 4-class (N, S, V, F) macro-F1 "
            f"{four['macro_f1']:.4f}, kappa {four['kappa']:.4f}, jκ {four['jk']:.4f}; per class F1 "
            + ", ".join(f"{c} {f:.3f}" for c, f in four["f1"].items())
            + ".",
            "",
        ]
    lat, thr = result["latency_s"], result["throughput"]
    if lat["median"] is not None:
        lines += [
            f"Latency (stream time, R peak to event): median {lat['median']:.2f} s, p99 {lat['p99']:.2f} s. "
            f"Replay: {thr['signal_s'] / 3600:.2f} h of ECG in {thr['wall_s']:.0f} s ({thr['realtime_factor']:.0f}x real time, one stream at a time).",
            "",
        ]
    lines += ["| record | QRS Se % | QRS +P % | VEB Se % | VEB +P % | SVEB Se % | SVEB +P % | quality stretches |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["per_record"].items():
        lines.append(
            f"| {name} | {_pct(r['qrs']['se'])} | {_pct(r['qrs']['ppv'])} | {_pct(r['veb']['se'])} | {_pct(r['veb']['ppv'])} | "
            f"{_pct(r['sveb']['se'])} | {_pct(r['sveb']['ppv'])} | {sum(r['quality_stretches'].values())} |"
        )
    path.write_text("\n".join(lines) + "\n")
    return path
