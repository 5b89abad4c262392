"""Record lists as users type them (``--records 100,101``), normalised before anything is read.

A record listed twice would be prepared twice: every beat of it doubled in training and in the
scores, under the same cache key as the clean list (the key hashes the set of source files). So
duplicates are refused, not silently removed: the user sees which record was repeated and that
nothing was built. An explicitly empty list is refused too, rather than meaning "all records".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ecgedge.errors import DataError


def check_record_list(records: Iterable[str], option: str = "the record list") -> tuple[str, ...]:
    """``records`` as a tuple; DataError if it is empty or names a record more than once."""
    records = tuple(records)
    if not records:
        raise DataError(f"{option} names no record; give comma-separated MIT-BIH records such as 100,101, or leave it out for the default 44.")
    repeated = [name for name, n in Counter(records).items() if n > 1]
    if repeated:
        raise DataError(
            f"{option} names record(s) {', '.join(repeated)} more than once; list each record once "
            "(a repeated record would count its beats twice)."
        )
    return records


def parse_record_list(text: str | None, option: str = "--records") -> tuple[str, ...] | None:
    """``"100, 101"`` -> ``("100", "101")``; None (option not given) -> None, the default records."""
    if text is None:
        return None
    return check_record_list((r.strip() for r in text.split(",") if r.strip()), f"{option} {text!r}")
