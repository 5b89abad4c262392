"""Signal-quality stretches of a stream, found online: NaN, saturation and flat line.

A gateway must keep detecting beats through electrode pops, lead-off and dropped packets, and say
where it could not. Three kinds of stretch, each reported as a :class:`QualityEvent`
``(start, end, kind)`` in absolute sample indices, ``end`` exclusive, once the stretch has ended
(or at :meth:`QualityTracker.flush`):

* ``"nan"`` -- non-finite samples (a dropped packet, a NaN from the front end);
* ``"saturated"`` -- finite samples at or beyond ``+-saturation_mv`` (the ADC rails; MIT-BIH's
  11-bit, 200 adu/mV converter saturates at -5.12 / +5.115 mV, which no MLII sample of the database
  reaches: its extremes are within +-4.4 mV);
* ``"flat"`` -- at least ``flat_min`` consecutive equal samples that are not saturated (lead off, a
  stuck amplifier). MIT-BIH's longest run of equal MLII samples is 10 samples (28 ms; measured on
  records 100-232), so the default 0.1 s does not fire on real ECG.

NaN samples are replaced by the last finite sample (a hold) before any filter sees them, so one NaN
cannot poison a recursive filter's state for the rest of the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["QualityEvent", "QualityTracker"]


@dataclass(frozen=True)
class QualityEvent:
    start: int  # first sample of the stretch (absolute index in the stream)
    end: int  # one past the last sample
    kind: str  # "nan" | "saturated" | "flat"

    def as_tuple(self) -> tuple[int, int, str]:
        return (self.start, self.end, self.kind)


class _Runs:
    """Runs of True in a boolean stream fed in chunks; a run spanning chunks is one run."""

    def __init__(self) -> None:
        self.open_start: int | None = None

    def feed(self, mask: np.ndarray, offset: int) -> list[tuple[int, int]]:
        if len(mask) == 0:
            return []
        prev = 1 if self.open_start is not None else 0
        d = np.diff(np.concatenate(([prev], mask.astype(np.int8))))
        starts = (np.flatnonzero(d == 1) + offset).tolist()
        ends = (np.flatnonzero(d == -1) + offset).tolist()
        if prev:
            starts.insert(0, self.open_start)
        if mask[-1]:
            self.open_start = starts.pop()
        else:
            self.open_start = None
        return list(zip(starts, ends))


class QualityTracker:
    """Finds NaN, saturated and flat stretches in a stream fed chunk by chunk.

    :meth:`feed` returns the chunk with NaN held at the last finite value (what the filters get)
    and keeps the stretches; :meth:`bad_intervals` says which samples are known bad so far, which
    is what the QRS detector blanks.
    """

    def __init__(self, fs: float, saturation_mv: float | None = 5.0, flat_s: float = 0.1, flat_eps: float = 0.0):
        self.fs = float(fs)
        self.saturation_mv = saturation_mv
        self.flat_min = max(2, int(round(flat_s * fs)))
        self.flat_eps = float(flat_eps)
        self.n_seen = 0
        self._last_finite = 0.0
        self._last_sample = np.nan  # previous raw sample, for the flat test across chunk edges
        self._nan, self._sat, self._same = _Runs(), _Runs(), _Runs()
        self.events: list[QualityEvent] = []  # closed stretches, in order of their end

    def feed(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        n, offset = len(x), self.n_seen
        if n == 0:
            return x.copy()
        finite = np.isfinite(x)
        sat = finite & (np.abs(x) >= self.saturation_mv) if self.saturation_mv else np.zeros(n, bool)
        prev = np.concatenate(([self._last_sample], x[:-1]))
        with np.errstate(invalid="ignore"):
            same = (np.abs(x - prev) <= self.flat_eps) & finite & ~sat  # NaN compares False
        closed: list[QualityEvent] = []
        closed += [QualityEvent(s, e, "nan") for s, e in self._nan.feed(~finite, offset)]
        closed += [QualityEvent(s, e, "saturated") for s, e in self._sat.feed(sat, offset)]
        # a run of "same as the previous sample" over [j, k) is a flat stretch [j - 1, k)
        closed += [QualityEvent(s - 1, e, "flat") for s, e in self._same.feed(same, offset) if e - s + 1 >= self.flat_min]
        # every end lies in this chunk, so sorting by end here keeps the whole list sorted by end
        self.events += sorted(closed, key=lambda ev: (ev.end, ev.start))

        filled = x.copy()
        if not finite.all():
            idx = np.where(finite, np.arange(n), -1)
            np.maximum.accumulate(idx, out=idx)
            filled = np.where(idx >= 0, x[np.maximum(idx, 0)], self._last_finite)
        if finite.any():
            self._last_finite = float(x[np.flatnonzero(finite)[-1]])
        self._last_sample = float(x[-1])
        self.n_seen += n
        return filled

    def open_intervals(self) -> list[QualityEvent]:
        """Stretches still running at the last sample fed (flat only once ``flat_min`` long)."""
        out = []
        now = self.n_seen
        if self._nan.open_start is not None:
            out.append(QualityEvent(self._nan.open_start, now, "nan"))
        if self._sat.open_start is not None:
            out.append(QualityEvent(self._sat.open_start, now, "saturated"))
        s = self._same.open_start
        if s is not None and now - s + 1 >= self.flat_min:
            out.append(QualityEvent(s - 1, now, "flat"))
        return out

    def any_bad(self, start: int, end: int, since: int = 0) -> bool:
        """Whether a known bad stretch overlaps samples ``[start, end)``.

        ``since`` lets the caller skip closed events that ended before it (they are kept in
        order of their end, so the scan walks back from the newest).
        """
        for ev in self.open_intervals():
            if ev.start < end and ev.end > start:
                return True
        for ev in reversed(self.events):
            if ev.end <= since:
                break
            if ev.start < end and ev.end > start:
                return True
        return False

    def flush(self) -> list[QualityEvent]:
        """End of stream: close the stretches still open and return every stretch found."""
        for ev in self.open_intervals():
            self.events.append(ev)
        self._nan.open_start = self._sat.open_start = self._same.open_start = None
        return sorted(self.events, key=lambda ev: (ev.start, ev.kind))
