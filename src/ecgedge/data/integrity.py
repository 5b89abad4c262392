"""Content hashes of a prepared dataset's arrays, recorded when built and checked when loaded.

The cache key says *which* dataset a folder should hold; these hashes say that its bytes are
still the ones written. A changed byte with the file size unchanged (bit rot, a stray write, a
copy cut and padded) would otherwise be used as it is: a different training or validation set,
different scores, exit 0. A mismatch is an error that names the file and how to rebuild, never an
automatic rebuild: a cache that changed under a run is worth a look, and a silent rebuild would
also replace a folder that another process (a torchrun rank) may be reading.

SHA-256 over each ``.npy`` file's bytes (header included, so shape and dtype are covered too),
read in 4 MiB blocks: hashlib releases the GIL and uses the CPU's SHA extensions, which on the
machines measured made it faster than BLAKE2b (see docs/results.md, "cache verification").
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ecgedge.errors import DataError

ALGORITHM = "sha256"
_BLOCK = 4 << 20


def file_digest(path: Path, algorithm: str = ALGORITHM) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def array_hashes(folder: Path, names: tuple[str, ...]) -> dict:
    """``{"algorithm": "sha256", "files": {"images.npy": hex, ...}}`` for ``folder/NAME.npy``."""
    return {"algorithm": ALGORITHM, "files": {f"{n}.npy": file_digest(folder / f"{n}.npy") for n in names}}


def has_hashes(meta: dict) -> bool:
    """Whether ``dataset.json`` records content hashes (caches built before they existed do not)."""
    entry = meta.get("integrity")
    return isinstance(entry, dict) and bool(entry.get("files")) and entry.get("algorithm") in hashlib.algorithms_available


def verify_arrays(folder: Path, meta: dict, rebuild_hint: str) -> None:
    """DataError naming the first array whose bytes differ from ``dataset.json``'s hash."""
    entry = meta["integrity"]
    for name, expected in entry["files"].items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"prepared dataset {folder} is incomplete ({name} is missing); {rebuild_hint}")
        if file_digest(path, entry["algorithm"]) != expected:
            raise DataError(
                f"prepared dataset {folder} is corrupt: {name} does not match its {entry['algorithm']} in dataset.json; {rebuild_hint}"
            )
