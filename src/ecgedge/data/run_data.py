"""The prepared dataset a run (or an exported model) was made from: same records, same MIT-BIH files.

A run's ``config.json`` and an exported file's metadata record the dataset's per-file SHA-256
(``sources``, or their :func:`sources_digest`); :func:`load_beats` / :func:`run_dataset` rebuild
(or reuse) the prepared dataset from a data directory and refuse files other than those recorded.
Used by compression (fine-tuning data), export (calibration, self-check) and the scoring of
exported files; torch-free.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ecgedge.data.dataset import BeatDataset, prepare_dataset
from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess import PreprocessConfig

__all__ = ["sources_digest", "records_of", "load_beats", "run_dataset"]


def sources_digest(sources: dict[str, str]) -> str:
    """One SHA-256 over a dataset's per-file checksums (order-independent)."""
    return hashlib.sha256(json.dumps(sources, sort_keys=True).encode()).hexdigest()


def records_of(sources: dict[str, str]) -> list[str]:
    """Record names in the order the dataset was prepared (``sources`` keeps insertion order)."""
    out: list[str] = []
    for name in sources:
        rec = name.rsplit(".", 1)[0]
        if rec not in out:
            out.append(rec)
    return out


def load_beats(preprocess: dict, records: list[str] | None, sources_sha256: str | None, data_dir: Path) -> BeatDataset:
    """The prepared dataset of ``records`` under ``preprocess``; refuses other MIT-BIH files than recorded."""
    dataset = prepare_dataset(Path(data_dir), PreprocessConfig.from_dict(preprocess), records=tuple(records) if records else None)
    if sources_sha256 and sources_digest(dataset.meta["sources"]) != sources_sha256:
        raise EcgEdgeError(f"the MIT-BIH files in {data_dir} differ from those the model was trained on; use the same data.")
    return dataset


def run_dataset(meta: dict, data_dir: Path | None = None) -> BeatDataset:
    """The prepared dataset a run was trained on (same records, same files), from ``data_dir``."""
    if not (data_dir or meta.get("data_dir")):
        raise EcgEdgeError("the run records no data directory; pass --data-dir DIR (MIT-BIH).")
    sources = (meta.get("dataset") or {}).get("sources") or {}
    return load_beats(
        meta["preprocess"],
        records_of(sources) if sources else None,
        sources_digest(sources) if sources else None,
        Path(data_dir or meta["data_dir"]),
    )
