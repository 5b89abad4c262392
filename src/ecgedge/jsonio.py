"""Strict JSON for every file and ``--json`` line the toolkit writes.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which is not JSON: strict parsers
(JavaScript's ``JSON.parse``, ``jq``, Go, Rust serde) reject the whole document. The rule here:
a float that is not finite (NaN, +Infinity, -Infinity; e.g. a PPV of a class that was never
predicted, 0/0) is written as ``null``, and ``allow_nan=False`` makes any value that slipped past
the conversion fail loudly instead of producing invalid output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (numpy scalars and arrays included)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    if type(obj).__module__ == "numpy":  # numpy is optional here: no import needed to recognise it
        if hasattr(obj, "tolist"):
            return finite_or_null(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never emits NaN / Infinity (they become null)."""
    return json.dumps(finite_or_null(obj), allow_nan=False, **kwargs)


def write_json(path: Path, obj: Any, indent: int | None = 1) -> None:
    """Write strict JSON atomically: a temporary file in the same directory, renamed when complete."""
    from ecgedge.atomic import atomic_path

    text = dumps(obj, indent=indent)
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text, encoding="utf-8")
