"""The prepared-dataset cache's failure modes, as one-line user errors with the fix in them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ecgedge.data.integrity import has_hashes
from ecgedge.disk_errors import describe, is_user_fixable
from ecgedge.errors import DataError

_META_FILE = "dataset.json"


def cache_is_verifiable(folder: Path) -> bool:
    """A readable ``dataset.json`` with content hashes (else the folder is rebuilt, not trusted)."""
    try:
        meta = json.loads((folder / _META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and has_hashes(meta)


def rebuild_hint(folder: Path, meta: dict) -> str:
    """The command that rebuilds ``folder`` (same preset, records and data directory)."""
    from ecgedge.data.summary import default_records

    parts = ["ecgedge data prepare"]
    name = (meta.get("config") or {}).get("name")
    if name:
        parts.append(f"--preset {name}")
    records = meta.get("records")
    if records and tuple(records) != default_records():
        parts.append(f"--records {','.join(records)}")
    if meta.get("data_dir"):
        parts.append(f"--data-dir {meta['data_dir']}")
    return f"rebuild it with `{' '.join(parts)} --rebuild`, or delete {folder} (the next run rebuilds it)."


@contextmanager
def cache_write_errors(root: Path) -> Iterator[None]:
    """A full disk or a read-only cache folder while building -> one DataError naming the folder."""
    try:
        yield
    except OSError as exc:
        if not is_user_fixable(exc):
            raise
        raise DataError(describe(exc, root, "set ECGEDGE_CACHE_DIR to a folder on another disk")) from None
