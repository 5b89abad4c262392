"""Prepared spectrogram datasets: built once, cached on disk, loaded memory-mapped.

The cache key hashes every preprocessing parameter and the SHA-256 of every source file, so a
changed parameter or a changed record can never be served stale. A dataset is written into a
temporary directory and renamed into place only when complete: an interrupted run leaves no
half cache (at most a ``.tmp-*`` directory that the next run removes). ``dataset.json`` also
records the SHA-256 of every array, checked on every load (:mod:`ecgedge.data.integrity`).
"""

import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ecgedge import __version__, jsonio
from ecgedge.data.beats import WINDOW_MARGIN, extract_beats
from ecgedge.data.cache_errors import cache_is_verifiable, cache_write_errors, rebuild_hint
from ecgedge.data.checksums import SUMS_FILE, check_files, read_sums, record_files, sha256_file
from ecgedge.data.integrity import array_hashes, has_hashes, verify_arrays
from ecgedge.data.location import cache_dir
from ecgedge.data.records import check_record, check_record_names, read_annotations, read_record, require_data_dir
from ecgedge.data.summary import BeatIndex, default_records
from ecgedge.errors import DataError
from ecgedge.preprocess import PreprocessConfig, beats_to_images

META_FILE = "dataset.json"
_ARRAYS = ("labels", "records", "samples", "rr")


@dataclass(frozen=True)
class BeatDataset:
    """Spectrogram images of beats with their labels, records, R-peak samples and RR features."""

    config: PreprocessConfig
    images: np.ndarray  # uint8 [n, H, W], usually memory-mapped
    labels: np.ndarray  # int8 [n]
    records: np.ndarray  # <U3 [n]
    samples: np.ndarray  # int64 [n]
    rr: np.ndarray  # float32 [n, N_RHYTHM] rhythm features (ecgedge.preprocess.rhythm)
    dropped: dict[str, np.ndarray]  # record -> int64 [5]
    path: Path | None = None
    meta: dict | None = None
    # float16 [n, window.length + 2 * WINDOW_MARGIN] high-passed signal around each beat, for
    # augmentation on the fly; memory-mapped; None for caches made without it.
    windows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def index(self) -> BeatIndex:
        return BeatIndex(records=self.records, labels=self.labels, dropped=self.dropped)


def source_fingerprint(data_dir: Path, records: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of each source file; checked against ``SHA256SUMS.txt`` when the directory has one."""
    names = record_files(list(records))
    if (data_dir / SUMS_FILE).is_file():
        problems = check_files(data_dir, names, read_sums(data_dir))
        if problems:
            listed = "; ".join(str(p) for p in problems[:5]) + (" ..." if len(problems) > 5 else "")
            raise DataError(
                f"{data_dir}: {listed}; run `ecgedge data download --data-dir {data_dir}` to restore "
                "the files (`ecgedge data verify` lists every problem)."
            )
    missing = [n for n in names if not (data_dir / n).is_file()]
    if missing:
        raise DataError(
            f"{data_dir / missing[0]} is missing; run `ecgedge data download --data-dir {data_dir}`."
        )
    return {n: sha256_file(data_dir / n) for n in names}


def dataset_key(config: PreprocessConfig, sources: dict[str, str]) -> str:
    blob = json.dumps({"config": config.fingerprint(), "sources": sources}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def _limit_threads() -> None:
    # Workers already split the records between cores; BLAS threads on top would oversubscribe.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _prepare_record(data_dir: Path, name: str, config: PreprocessConfig, parts_dir: Path) -> dict:
    """Worker: one record -> ``parts_dir/NAME.npy`` images; returns the small per-beat arrays."""
    beats = extract_beats(read_record(data_dir, name, config.lead, config.fs), config, margin=WINDOW_MARGIN)
    centre = beats.windows[:, WINDOW_MARGIN : WINDOW_MARGIN + config.window.length]
    np.save(parts_dir / f"{name}.npy", beats_to_images(centre, config))
    # float16 keeps 3 significant digits of millivolts (step < 1 uV at 1 mV): below the ADC's 5 uV.
    np.save(parts_dir / f"{name}-windows.npy", beats.windows.astype(np.float16))
    return {
        "record": name,
        "labels": beats.labels,
        "samples": beats.samples,
        "rr": beats.rr,
        "dropped": beats.dropped,
    }


def _join_parts(out: Path, parts: list[Path], dtype, row_shape: tuple[int, ...]) -> None:
    """Concatenate per-record ``.npy`` parts into one file, a record at a time (bounded memory)."""
    sizes = [np.load(p, mmap_mode="r").shape[0] for p in parts]
    joined = np.lib.format.open_memmap(out, mode="w+", dtype=dtype, shape=(sum(sizes), *row_shape))
    offset = 0
    for part, size in zip(parts, sizes):
        joined[offset : offset + size] = np.load(part)
        offset += size
    joined.flush()
    del joined


def _write_dataset(
    data_dir: Path, config: PreprocessConfig, records: tuple[str, ...], tmp: Path, workers: int, progress
) -> dict:
    parts_dir = tmp / "parts"
    parts_dir.mkdir(parents=True)
    results: dict[str, dict] = {}
    started = time.perf_counter()
    task = progress.add_task(f"prepare {config.name}", total=len(records)) if progress else None
    if workers > 1:
        # fork starts workers in milliseconds; spawn re-imports scipy and wfdb (~2 s each) but is
        # the safe choice once torch (and its thread pools) lives in the parent.
        method = "spawn" if "torch" in sys.modules else "fork"
        with ProcessPoolExecutor(workers, mp_context=get_context(method), initializer=_limit_threads) as pool:
            futures = [pool.submit(_prepare_record, data_dir, r, config, parts_dir) for r in records]
            for fut in futures:
                res = fut.result()
                results[res["record"]] = res
                if progress:
                    progress.advance(task)
    else:
        for r in records:
            results[r] = _prepare_record(data_dir, r, config, parts_dir)
            if progress:
                progress.advance(task)

    per_record = [results[r] for r in records]
    sizes = [len(res["labels"]) for res in per_record]
    height, width = config.spectrogram.image_size
    _join_parts(tmp / "images.npy", [parts_dir / f"{r}.npy" for r in records], np.uint8, (height, width))
    margin_len = config.window.length + 2 * WINDOW_MARGIN
    _join_parts(tmp / "windows.npy", [parts_dir / f"{r}-windows.npy" for r in records], np.float16, (margin_len,))
    shutil.rmtree(parts_dir)
    np.save(tmp / "labels.npy", np.concatenate([res["labels"] for res in per_record]))
    np.save(tmp / "records.npy", np.concatenate([np.full(n, r) for r, n in zip(records, sizes)]).astype("<U8"))
    np.save(tmp / "samples.npy", np.concatenate([res["samples"] for res in per_record]))
    np.save(tmp / "rr.npy", np.concatenate([res["rr"] for res in per_record]))
    return {
        "dropped": {res["record"]: res["dropped"].tolist() for res in per_record},
        "n_beats": sum(sizes),
        "window_margin": WINDOW_MARGIN,
        "build_seconds": round(time.perf_counter() - started, 3),
    }


def load_dataset(path: Path, verify: bool = True) -> BeatDataset:
    meta = json.loads((path / META_FILE).read_text())
    if verify and has_hashes(meta):
        verify_arrays(path, meta, rebuild_hint(path, meta))
    arrays = {name: np.load(path / f"{name}.npy") for name in _ARRAYS}
    return BeatDataset(
        config=PreprocessConfig.from_dict(meta["config"]),
        images=np.load(path / "images.npy", mmap_mode="r"),
        windows=np.load(path / "windows.npy", mmap_mode="r") if (path / "windows.npy").is_file() else None,
        dropped={r: np.asarray(v, dtype=np.int64) for r, v in meta["dropped"].items()},
        path=path,
        meta=meta,
        **arrays,
    )


def _pid_alive(pid: str) -> bool:
    """Whether the process that owns a ``.tmp-PID`` directory still runs (e.g. another torchrun rank)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def prepare_dataset(
    data_dir: Path,
    config: PreprocessConfig,
    records: tuple[str, ...] | None = None,
    cache_root: Path | None = None,
    workers: int | None = None,
    progress=None,
    rebuild: bool = False,
) -> BeatDataset:
    """Build (or reuse from the cache) the spectrogram dataset of ``records`` under ``config``.

    ``progress`` is an optional ``rich.progress.Progress``; ``workers`` defaults to the CPU count.
    """
    require_data_dir(data_dir)
    records = default_records() if records is None else tuple(records)
    check_record_names(list(records))
    sources = source_fingerprint(data_dir, records)
    for rec in records:
        check_record(data_dir, rec, config.lead)
    root = (cache_root or cache_dir()) / "prepared"
    final = root / f"{config.name}-{dataset_key(config, sources)}"
    if (final / META_FILE).is_file() and not rebuild:
        if cache_is_verifiable(final):
            return load_dataset(final)
        rebuild = True  # built before content hashes were recorded: nothing vouches for its bytes

    with cache_write_errors(root):
        return _build(data_dir, config, records, sources, root, final, workers, progress, rebuild)


def _build(data_dir, config, records, sources, root: Path, final: Path, workers, progress, rebuild: bool) -> BeatDataset:
    for rec in records:  # before any worker starts; a cache hit needs none (same bytes as when built)
        read_annotations(data_dir, rec, config.lead, config.fs)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"{final.name}.tmp-*"):
        if not _pid_alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted run, not a live one
    tmp = root / f"{final.name}.tmp-{os.getpid()}"
    try:
        workers = workers or min(len(records), os.cpu_count() or 1)
        built = _write_dataset(data_dir, config, records, tmp, workers, progress)
        meta = {
            "config": config.to_dict(),
            "config_fingerprint": config.fingerprint(),
            "records": list(records),
            "sources": sources,
            "data_dir": str(data_dir.resolve()),
            "ecgedge_version": __version__,
            "numpy_version": np.__version__,
            **built,
            "integrity": array_hashes(tmp, ("images", "windows", *_ARRAYS)),
        }
        (tmp / META_FILE).write_text(jsonio.dumps(meta, indent=1))
        if final.exists() and (rebuild or not (final / META_FILE).is_file()):
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:
            # Another process (e.g. a second torchrun rank) finished the same dataset first.
            if not (final / META_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_dataset(final, verify=False)  # hashed a moment ago, while written
