"""Files that appear complete or not at all.

Everything the toolkit writes goes to a temporary name in the target's own directory (same file
system, so the final :func:`os.replace` is atomic) and is renamed when complete. A crash, a full
disk or Ctrl-C therefore never leaves a truncated file under the final name, and a previous
version stays in place until the new one is whole.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_path_for(path: Path) -> Path:
    """``DIR/.NAME.tmp-PID.SUFFIX``: hidden, unique per process, and keeping the suffix that
    writers such as onnx and litert look at."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` when the block ends normally.

    On any exception (KeyboardInterrupt included) the temporary file is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
