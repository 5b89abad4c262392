"""One ECG stream -> beats ready for the classifier: causal filter, QRS detection, window, rhythm.

A :class:`BeatCutter` owns one patient's stream. Samples come in any chunking; it

1. holds NaN samples at the last finite value (a dropped packet must not poison the filter state),
2. runs the causal high-pass of the model's preprocessing (``sosfilt`` with carried state: the
   same samples as training's ``highpass(..., causal=True)`` over the whole record, for models
   of preprocessing version 3 on; earlier models were trained on the zero-phase filter, which a
   stream cannot reproduce: the difference is measured in ``docs/results/ec57/``) and keeps only
   the filtered samples a beat can still need,
3. feeds the raw samples to :class:`~ecgedge.firmware_host.qrs.QrsDetector` (its own causal
   filters, quality tracker and R-peak location),
4. once a beat's whole window ``[r - before, r + after)`` *and* the next R peak have arrived, cuts
   the window and computes its rhythm features with the training function
   :func:`~ecgedge.preprocess.rhythm.rhythm_features` on the R peaks detected so far plus the next
   one (the features of beat ``i`` use only ``samples[: i + 2]``, so this equals the batch function
   on the whole list of detected peaks).

Numpy + scipy only. Every step is a function of the sample stream, not of the chunk edges, so any
chunking gives the same beats, windows and features (tested).

Rhythm history: :func:`rhythm_features` of beat ``i`` reads the intervals of the last
``long_s`` seconds and the last ``local_beats`` intervals. The cutter keeps the R peaks of the last
``long_s`` seconds plus ``local_beats + 2`` beats, which gives the same intervals; the cumulative
sums inside start at another beat, so values can differ from the whole-history call in the last
float64 bit, i.e. at most one float32 ulp after the cast (the tests compare exactly on records).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ecgedge.firmware_host.filters import SosFilter, highpass
from ecgedge.firmware_host.qrs import QrsConfig, QrsDetector
from ecgedge.firmware_host.quality import QualityEvent
from ecgedge.preprocess.config import PreprocessConfig
from ecgedge.preprocess.rhythm import RhythmConfig, rhythm_features

__all__ = ["ReadyBeat", "BeatCutter", "hold_nan"]


@dataclass(frozen=True)
class ReadyBeat:
    """A detected beat whose window and rhythm features are complete."""

    stream: str
    sample: int  # R peak, absolute sample index of the stream
    window: np.ndarray  # float32 [window.length], causally high-passed, millivolts
    rr: np.ndarray  # float32 [N_RHYTHM]
    ready_at: int  # samples of the stream seen when the beat became ready (stream time)
    padded: bool  # the window crossed the stream's start or end and was edge-padded (training drops these beats)


def hold_nan(x: np.ndarray, last: float) -> tuple[np.ndarray, float]:
    """``x`` with non-finite samples replaced by the last finite one (``last`` before ``x``)."""
    finite = np.isfinite(x)
    if finite.all():
        return x, float(x[-1]) if len(x) else last
    idx = np.where(finite, np.arange(len(x)), -1)
    np.maximum.accumulate(idx, out=idx)
    filled = np.where(idx >= 0, x[np.maximum(idx, 0)], last)
    return filled, float(filled[-1])


class BeatCutter:
    """Per-stream front end: feed chunks with :meth:`feed`, end with :meth:`finish`."""

    def __init__(
        self,
        stream: str,
        preprocess: PreprocessConfig,
        qrs: QrsConfig | None = None,
        rhythm: RhythmConfig = RhythmConfig(),
    ):
        self.stream = stream
        self.pre = preprocess
        self.fs = float(preprocess.fs)
        qcfg = qrs or QrsConfig(fs=self.fs, highpass_hz=preprocess.highpass_hz, highpass_order=preprocess.highpass_order)
        if qcfg.fs != self.fs:
            raise ValueError(f"detector runs at {qcfg.fs} Hz but the model expects {self.fs} Hz")
        self.detector = QrsDetector(qcfg)
        self.rhythm = rhythm
        self._hp: SosFilter = highpass(self.fs, preprocess.highpass_hz, preprocess.highpass_order)
        self._last_finite = 0.0
        self.n = 0  # samples seen
        self._buf = np.zeros(0, np.float32)  # filtered samples [buf_start, n)
        self._buf_start = 0
        # a beat the detector emits now lies at most this far behind the newest sample
        bound_s = max(self.detector.max_latency_s().values())
        self._keep = preprocess.window.before + int(np.ceil(bound_s * self.fs)) + int(self.fs)
        self._peaks: deque[int] = deque()  # rhythm history + beats not yet cut (the last two are pending)
        self._next_cut = 0  # index into _peaks of the next beat to cut
        self._quality_seen = 0
        self.finished = False

    # ------------------------------------------------------------------ public

    def feed(self, chunk: np.ndarray) -> tuple[list[ReadyBeat], list[QualityEvent]]:
        """Next samples (millivolts, NaN allowed) -> beats that became ready, closed quality stretches."""
        if self.finished:
            raise RuntimeError(f"stream {self.stream!r} has ended")
        x = np.asarray(chunk, dtype=np.float64).ravel()
        if len(x) == 0:
            return [], []
        filled, self._last_finite = hold_nan(x, self._last_finite)
        self._buf = np.concatenate((self._buf, self._hp(filled).astype(np.float32)))
        self.n += len(x)
        self._peaks.extend(b.sample for b in self.detector.process(x))
        out = self._cut(final=False)
        self._trim()
        return out, self._new_quality()

    def finish(self) -> tuple[list[ReadyBeat], list[QualityEvent]]:
        """End of stream: the detector decides what is left; the last beat uses its pre-RR as post-RR."""
        if self.finished:
            return [], []
        self._peaks.extend(b.sample for b in self.detector.flush())
        out = self._cut(final=True)
        self.finished = True
        return out, self._new_quality()

    @property
    def buffered_samples(self) -> int:
        return len(self._buf)

    # ------------------------------------------------------------------ internals

    def _new_quality(self) -> list[QualityEvent]:
        events = self.detector.quality.events
        new = events[self._quality_seen :]
        self._quality_seen = len(events)
        return list(new)

    def _cut(self, final: bool) -> list[ReadyBeat]:
        before, after = self.pre.window.before, self.pre.window.after
        peaks = self._peaks
        out: list[ReadyBeat] = []
        while self._next_cut < len(peaks):
            i = self._next_cut
            has_next = i + 1 < len(peaks)
            r = peaks[i]
            if not final and (not has_next or r + after > self.n):
                break
            # rhythm on the history up to and including the next peak (or the last peak at the end)
            hist = np.fromiter(peaks, dtype=np.int64, count=min(len(peaks), i + 2))
            rr = rhythm_features(hist, self.fs, self.rhythm)[i]
            window, padded = self._window(r - before, r + after)
            out.append(ReadyBeat(self.stream, int(r), window, rr, self.n, padded))
            self._next_cut += 1
        self._forget_history()
        return out

    def _forget_history(self) -> None:
        """Drop R peaks no future beat's rhythm features can read (see the module docstring)."""
        if self._next_cut < 1:
            return
        horizon = int(np.ceil(self.rhythm.long_s * self.fs))
        newest_cut = self._peaks[self._next_cut - 1]
        keep_beats = self.rhythm.local_beats + 2
        while self._next_cut > keep_beats and self._peaks[1] < newest_cut - horizon:
            self._peaks.popleft()
            self._next_cut -= 1

    def _window(self, start: int, end: int) -> tuple[np.ndarray, bool]:
        lo, hi = start - self._buf_start, end - self._buf_start
        if lo >= 0 and hi <= len(self._buf):
            return self._buf[lo:hi].copy(), False
        # crosses the stream's start or end (or, never expected, the kept buffer): edge padding
        seg = self._buf[max(lo, 0) : max(min(hi, len(self._buf)), 0)]
        if len(seg) == 0:
            return np.zeros(end - start, np.float32), True
        return np.pad(seg, (max(0, -lo), max(0, hi - len(self._buf))), mode="edge").astype(np.float32), True

    def _trim(self) -> None:
        # what the next beat to cut, or any beat the detector may still emit, can need
        oldest = self.n - self._keep
        if self._next_cut < len(self._peaks):
            oldest = min(oldest, self._peaks[self._next_cut] - self.pre.window.before)
        drop = oldest - self._buf_start
        if drop > 8192:  # in blocks: fewer copies
            self._buf = self._buf[drop:].copy()
            self._buf_start += drop
