"""ANSI/AAMI EC57 beat-by-beat comparison of detected beats with reference annotations (numpy only).

How the matching follows EC57 (and PhysioNet's ``bxb``, which implements it):

* **Match window**: a detection matches a reference beat when they are at most 150 ms apart
  (inclusive: exactly 150 ms matches). Each reference beat and each detection is used at most once;
  pairs are formed closest first (ties: the earlier reference beat, then the earlier detection),
  which for one detection per QRS is what ``bxb``'s sequential scan gives. A second detection of the
  same QRS (a double detection) is an unmatched detection: a false positive.
* **Learning period**: matching runs over the whole record, so a pair straddling the boundary is
  formed as it would be without one; only statistics exclude the first 5 minutes: a pair counts when
  its *reference* beat lies at or after 5 min, an unmatched reference beat or unmatched detection
  when it lies at or after 5 min.
* **Beats**: every reference annotation that WFDB counts as a QRS (``isqrs``: N L R B A a J S V r F
  e j n E / f Q ?), so F (fusion) and Q (unclassifiable, paced) beats are beats for the QRS
  statistics. ``!`` (ventricular flutter waves) and non-beat annotations are not. Detections inside
  a ventricular flutter / fibrillation episode (``[`` to ``]``) are not counted as false positives,
  as EC57 excludes VF from the QRS statistics.
* **Class statistics** (VEB / SVEB, AAMI classes) are computed later on :attr:`BeatMatch.pairs`:
  the matched (reference index, detection index) pairs, with the unmatched indices beside them.

Gross statistics sum the counts over records before dividing; average statistics are the mean of
the per-record figures (EC57 reports both).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "QRS_SYMBOLS",
    "BeatMatch",
    "QrsCounts",
    "reference_beats",
    "match_beats",
    "qrs_counts",
    "gross",
    "average",
]

#: Annotation symbols that WFDB's ``isqrs`` counts as beats (MIT-BIH uses a subset).
QRS_SYMBOLS: frozenset[str] = frozenset("NLRBAaJSVrFejnE/fQ?")

MATCH_WINDOW_S = 0.150
LEARNING_PERIOD_S = 300.0


@dataclass(frozen=True)
class BeatMatch:
    """One-to-one matching of reference beats with detections (indices into the two arrays)."""

    pairs: np.ndarray  # int64 [k, 2]: (reference index, detection index), sorted by reference
    unmatched_ref: np.ndarray  # int64 [m]: reference beats no detection matched (missed beats)
    unmatched_det: np.ndarray  # int64 [f]: detections no reference beat matched (false detections)


@dataclass(frozen=True)
class QrsCounts:
    """QRS detection counts of one record (or summed over records) after the learning period."""

    record: str
    tp: int
    fn: int
    fp: int

    @property
    def se(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def ppv(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "se": self.se, "ppv": self.ppv}


def reference_beats(sample: np.ndarray, symbol: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beat samples and symbols of an annotation list, and its VF episodes ``[start, end)``.

    An episode opened by ``[`` and not closed runs to the end of the record (``end`` = -1 there,
    read as "no end").
    """
    sample = np.asarray(sample, dtype=np.int64)
    symbol = np.asarray(symbol, dtype=str)
    is_beat = np.isin(symbol, list(QRS_SYMBOLS))
    episodes: list[tuple[int, int]] = []
    start = None
    for s, sym in zip(sample.tolist(), symbol.tolist()):
        if sym == "[":
            start = s
        elif sym == "]" and start is not None:
            episodes.append((start, s))
            start = None
    if start is not None:
        episodes.append((start, -1))
    return sample[is_beat], symbol[is_beat], np.asarray(episodes, dtype=np.int64).reshape(-1, 2)


def match_beats(ref: np.ndarray, det: np.ndarray, fs: float, window_s: float = MATCH_WINDOW_S) -> BeatMatch:
    """Match detections ``det`` to reference beats ``ref`` (sample indices) within ``window_s``."""
    ref = np.asarray(ref, dtype=np.int64)
    det = np.asarray(det, dtype=np.int64)
    if np.any(np.diff(ref) < 0) or np.any(np.diff(det) < 0):
        raise ValueError("reference and detected beats must be sorted by sample")
    window = window_s * fs
    lo = np.searchsorted(det, ref - window, side="left")
    hi = np.searchsorted(det, ref + window, side="right")
    # float window edges: searchsorted on integers with a float bound is exact at the edge
    counts = hi - lo
    if counts.sum() == 0:
        return BeatMatch(np.zeros((0, 2), np.int64), np.arange(len(ref)), np.arange(len(det)))
    ri = np.repeat(np.arange(len(ref)), counts)
    di = np.concatenate([np.arange(a, b) for a, b in zip(lo[counts > 0], hi[counts > 0])])
    dist = np.abs(det[di] - ref[ri])
    order = np.lexsort((di, ri, dist))  # closest first, then earlier reference, then earlier detection
    used_r = np.zeros(len(ref), bool)
    used_d = np.zeros(len(det), bool)
    pairs = []
    for k in order.tolist():
        r, d = ri[k], di[k]
        if not used_r[r] and not used_d[d]:
            used_r[r] = used_d[d] = True
            pairs.append((r, d))
    pairs_arr = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    return BeatMatch(pairs_arr, np.flatnonzero(~used_r), np.flatnonzero(~used_d))


def _in_episodes(x: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    inside = np.zeros(len(x), bool)
    for start, end in episodes.tolist():
        inside |= (x >= start) & ((x < end) if end >= 0 else True)
    return inside


def qrs_counts(
    record: str,
    ref: np.ndarray,
    det: np.ndarray,
    fs: float,
    episodes: np.ndarray | None = None,
    learning_s: float = LEARNING_PERIOD_S,
    window_s: float = MATCH_WINDOW_S,
) -> tuple[QrsCounts, BeatMatch]:
    """EC57 QRS counts of one record: match over the whole record, count after ``learning_s``."""
    ref = np.asarray(ref, dtype=np.int64)
    det = np.asarray(det, dtype=np.int64)
    m = match_beats(ref, det, fs, window_s)
    start = learning_s * fs
    tp = int(np.sum(ref[m.pairs[:, 0]] >= start)) if len(m.pairs) else 0
    fn = int(np.sum(ref[m.unmatched_ref] >= start))
    fp_det = det[m.unmatched_det]
    fp_mask = fp_det >= start
    if episodes is not None and len(episodes):
        fp_mask &= ~_in_episodes(fp_det, np.asarray(episodes, dtype=np.int64).reshape(-1, 2))
    return QrsCounts(record, tp, fn, int(fp_mask.sum())), m


def gross(counts: list[QrsCounts], name: str = "gross") -> QrsCounts:
    """Counts summed over records (EC57 gross statistics)."""
    return QrsCounts(name, sum(c.tp for c in counts), sum(c.fn for c in counts), sum(c.fp for c in counts))


def average(counts: list[QrsCounts]) -> dict[str, float]:
    """Mean of the per-record Se and +P (EC57 average statistics)."""
    se = [c.se for c in counts if not np.isnan(c.se)]
    ppv = [c.ppv for c in counts if not np.isnan(c.ppv)]
    return {"se": float(np.mean(se)) if se else float("nan"), "ppv": float(np.mean(ppv)) if ppv else float("nan")}
