"""Online QRS detection on a chunked ECG stream, with a bounded latency.

Features after Pan & Tompkins, "A real-time QRS detection algorithm", IEEE Trans. Biomed. Eng.
32(3):230-236, 1985: causal band-pass, five-point derivative, squaring, 150 ms moving-window
integration (MWI). Decision rules after Hamilton & Tompkins, "Quantitative investigation of QRS
detection rules using the MIT/BIH arrhythmia database", IEEE Trans. Biomed. Eng. 33(12):1157-1165,
1986 (as in their open-source OSEA detector): peaks of the MWI compared with a threshold between
the mean of the last 8 noise peaks and the mean of the last 8 QRS peaks (coefficient 0.3125),
a 200 ms refractory period, T-wave rejection by slope within 360 ms of the previous beat, and a
search back for the largest peak above half the threshold when no beat came for 1.5 mean RR.

Why our own: the maintained Python detectors (neurokit2, wfdb.processing.xqrs / gqrs, py-ecg-detectors,
pantompkins, sleepecg, biosppy) take a whole record and most filter it forwards and backwards;
none keeps its state across chunks, so a gateway would have to re-run them on overlapping windows
and de-duplicate the beats, with no guarantee that two chunkings agree.

Streaming design. Every per-sample stage is causal with carried state (``sosfilt`` / ``lfilter``
``zi``), so the MWI does not depend on the chunking. An MWI sample ``c`` is a candidate peak when
it is the first maximum of ``mwi[c - h : c + h + 1]``; each candidate is decided at the fixed
sample time ``c + L`` (``L`` = :attr:`QrsDetector.lookahead`), and a search back at the sample time
its deadline falls on; events are handled in sample-time order whatever the chunk edges, and each
uses only samples before its time. Hence any chunking gives the same beats (tested), and a beat is
emitted at most ``L`` samples after its MWI peak (about 0.28 s after the R peak with the defaults;
:meth:`QrsDetector.max_latency_s`), or, when found by the search back, at most
``searchback_rr * rr_max_s`` after the previous beat.

Each accepted MWI peak is moved to the R peak: the sample of largest absolute deviation from the
window mean of the (causally) high-passed signal in ``[c + r_window_s[0], c + r_window_s[1]]``,
the window where the reference R peaks of DS1 fall relative to the MWI peak (measured).

Signal quality (:mod:`.quality`): NaN samples are held at the last finite value; candidates within
``settle_s`` after or ``blank_post_s`` before a NaN, saturated or flat stretch are discarded
without touching the adaptive levels (the steps at a stretch's edges ring through the filters), and
restart the search-back timer; the stretches themselves are reported.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
from scipy.signal import lfilter

from ecgedge.firmware_host.filters import SosFilter, bandpass, highpass
from ecgedge.firmware_host.quality import QualityEvent, QualityTracker

__all__ = ["QrsConfig", "QrsDetector", "Beat", "detect_qrs"]


@dataclass(frozen=True)
class QrsConfig:
    """Detector parameters; defaults are the published ones unless noted as tuned on DS1."""

    fs: float = 360.0
    highpass_hz: float = 0.25  # the signal R peaks are located on (the training filter, causal)
    highpass_order: int = 2
    band_hz: tuple[float, float] = (8.0, 20.0)  # tuned on DS1 (Pan-Tompkins: 5-15 Hz; 8-20 Hz passes less P and T wave)
    band_order: int = 2
    feature: str = "abs"  # "abs": |derivative| (Hamilton-Tompkins / OSEA), "square": derivative^2 (Pan-Tompkins)
    mwi_s: float = 0.150  # moving-window integration width
    peak_halfwidth_s: float = 0.2  # an MWI candidate is the maximum of +-this; tuned on DS1 (0.1 s let tall P waves of 108 pre-empt the QRS)
    refractory_s: float = 0.200
    twave_s: float = 0.360  # T-wave test window after a beat
    twave_slope_ratio: float = 0.5
    threshold: float = 0.4  # detection-threshold coefficient; tuned on DS1 (Hamilton-Tompkins: 0.3125)
    n_levels: int = 8  # peaks averaged into the QRS / noise levels, RR intervals into the mean RR
    level_stat: str = "mean"  # "mean" or "median" of those peaks (Hamilton-Tompkins tried both)
    searchback_rr: float = 1.5  # search back after this many mean RR without a beat
    searchback_fraction: float = 0.5  # ... for a peak above this fraction of the threshold
    searchback_min_s: float = 0.360  # ... at least this long after the previous beat
    searchback_decay: float = 0.7  # a search back that finds nothing scales the QRS level by this (ours; tuned on DS1)
    rr_max_s: float = 2.0  # RR intervals are clipped here: bounds the search-back latency
    learn_s: float = 2.0  # levels start from the per-second MWI maxima of the first seconds
    r_window_s: tuple[float, float] = (-0.25, 0.0)  # where the R peak lies relative to the MWI peak
    blank_post_s: float = 0.05
    settle_s: float = 0.30
    saturation_mv: float | None = 5.0
    flat_s: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class Beat(NamedTuple):
    sample: int  # R peak, absolute sample index in the stream
    decided_at: int  # sample time at which the detector emitted it (needs samples < decided_at)
    searchback: bool  # found by the search back


# Pan-Tompkins five-point derivative, scaled so the slope is in signal units per sample
_DERIV = np.array([2.0, 1.0, 0.0, -1.0, -2.0]) / 8.0


class QrsDetector:
    """Online QRS detector: feed chunks with :meth:`process`, end with :meth:`flush`."""

    def __init__(self, config: QrsConfig | None = None, **overrides):
        cfg = config or QrsConfig()
        if overrides:
            cfg = QrsConfig(**{**cfg.to_dict(), **overrides})
        self.config = cfg
        fs = cfg.fs
        s = lambda sec: int(round(sec * fs))  # noqa: E731
        self._h = max(1, s(cfg.peak_halfwidth_s))
        self._mwi_n = max(1, s(cfg.mwi_s))
        self._refractory = s(cfg.refractory_s)
        self._twave = s(cfg.twave_s)
        self._sb_min = s(cfg.searchback_min_s)
        self._rr_max = s(cfg.rr_max_s)
        self._learn = max(1, s(cfg.learn_s))
        self._r_lo, self._r_hi = s(cfg.r_window_s[0]), s(cfg.r_window_s[1])
        self._post = s(cfg.blank_post_s)
        self._settle = s(cfg.settle_s)
        self.quality = QualityTracker(fs, saturation_mv=cfg.saturation_mv, flat_s=cfg.flat_s)
        # the blanking test of a candidate must only need stretches already decided at c + L
        self.lookahead = max(self._h, self._post + self.quality.flat_min)

        self._hp: SosFilter = highpass(fs, cfg.highpass_hz, cfg.highpass_order)
        self._bp: SosFilter = bandpass(fs, cfg.band_hz[0], cfg.band_hz[1], cfg.band_order)
        self._deriv_zi = np.zeros(len(_DERIV) - 1)
        self._mwi_b = np.full(self._mwi_n, 1.0 / self._mwi_n)
        self._mwi_zi = np.zeros(self._mwi_n - 1)

        self.n = 0  # samples seen
        self._buf_start = 0
        self._hp_buf = np.zeros(0)
        self._slope_buf = np.zeros(0)
        self._mwi_buf = np.zeros(0)
        self._scan = 0  # next MWI sample to test as a candidate
        self._pending: deque[int] = deque()  # candidates awaiting their decision time

        self._learning = True
        self._learn_end = self._learn
        self._qrs_levels: deque[float] = deque(maxlen=cfg.n_levels)
        self._noise_levels: deque[float] = deque(maxlen=cfg.n_levels)
        self._rr: deque[int] = deque(maxlen=cfg.n_levels)
        self._last_qrs: int | None = None  # MWI time of the last beat
        self._last_slope = 0.0
        self._last_r: int | None = None
        self._sb_ref: int | None = None  # the search-back timer runs from here
        self._sb_armed = False
        self._sb_from: int | None = None  # a repeated search back looks only at peaks after this
        self._since_last: list[tuple[int, float, int, float]] = []  # noise peaks after the last beat: (c, mwi, r, slope)
        self.beats_total = 0

    # ------------------------------------------------------------------ public

    def process(self, chunk: np.ndarray) -> list[Beat]:
        """Feed the next samples (millivolts; NaN allowed); returns the beats decided meanwhile."""
        x = np.asarray(chunk, dtype=np.float64).ravel()
        if len(x) == 0:
            return []
        filled = self.quality.feed(x)
        hp = self._hp(filled)
        bp = self._bp(filled)
        d, self._deriv_zi = lfilter(_DERIV, 1.0, bp, zi=self._deriv_zi)
        # |d| keeps the feature linear in amplitude: with d^2 one large ectopic beat lifts the QRS
        # level so far that the normal beats after it fall below the threshold
        feat = np.abs(d) if self.config.feature == "abs" else d * d
        mwi, self._mwi_zi = lfilter(self._mwi_b, 1.0, feat, zi=self._mwi_zi)
        self._append(hp, np.abs(d), mwi)
        self.n += len(x)
        self._scan_candidates()
        out = self._run_events(self.n)
        self._trim()
        return out

    def flush(self) -> list[Beat]:
        """End of stream: decide the candidates still waiting, with the samples there are."""
        out = self._run_events(None)
        self.quality.flush()
        return out

    @property
    def quality_events(self) -> list[QualityEvent]:
        return sorted(self.quality.events, key=lambda ev: (ev.start, ev.kind))

    def max_latency_s(self) -> dict[str, float]:
        """Worst-case sample time from an R peak to its emission (not counting chunk buffering)."""
        fs = self.config.fs
        behind = -self._r_lo  # an R peak lies at most this far before its MWI peak
        return {
            "beat_s": (behind + self.lookahead) / fs,
            "searchback_beat_s": (self.config.searchback_rr * self._rr_max + behind - self._sb_min) / fs,
            "learning_s": (self._learn + self.lookahead) / fs,
        }

    # ------------------------------------------------------------------ buffers

    def _append(self, hp: np.ndarray, slope: np.ndarray, mwi: np.ndarray) -> None:
        self._hp_buf = np.concatenate((self._hp_buf, hp))
        self._slope_buf = np.concatenate((self._slope_buf, slope))
        self._mwi_buf = np.concatenate((self._mwi_buf, mwi))

    def _trim(self) -> None:
        # what a candidate still to come (>= the scan position) or still pending will read
        back = min(self._r_lo, -self._mwi_n, -self._h)
        oldest = (self._pending[0] if self._pending else self._scan) + back
        drop = oldest - 1 - self._buf_start
        if drop > 4096:  # trim in blocks: fewer copies, same result
            self._hp_buf = self._hp_buf[drop:]
            self._slope_buf = self._slope_buf[drop:]
            self._mwi_buf = self._mwi_buf[drop:]
            self._buf_start += drop

    def _window(self, buf: np.ndarray, start: int, end: int) -> np.ndarray:
        lo = max(start, self._buf_start, 0) - self._buf_start
        hi = min(end, self.n) - self._buf_start
        return buf[lo:max(lo, hi)]

    # ------------------------------------------------------------------ candidates

    def _scan_candidates(self) -> None:
        h = self._h
        stop = self.n - h  # sample p needs mwi[p + h]
        if stop <= self._scan:
            return
        first = self._scan - h
        seg = self._window(self._mwi_buf, first, self.n)
        if first < 0:  # before the stream's start: nothing larger
            seg = np.concatenate((np.full(-first, -np.inf), seg))
        windows = np.lib.stride_tricks.sliding_window_view(seg, h)
        # window k covers seg[k : k + h]; sample p sits at seg[p - first]
        n_pos = stop - self._scan
        centre = seg[h : h + n_pos]
        left = windows[:n_pos].max(axis=1)
        right = windows[h + 1 : h + 1 + n_pos].max(axis=1)
        peaks = np.flatnonzero((centre > left) & (centre >= right) & (centre > 0)) + self._scan
        self._pending.extend(peaks.tolist())
        self._scan = stop

    # ------------------------------------------------------------------ decisions

    def _run_events(self, avail: int | None) -> list[Beat]:
        """Handle candidate decisions and search backs due before sample time ``avail`` (None: all)."""
        out: list[Beat] = []
        end = self.n if avail is None else avail
        L = self.lookahead
        while True:
            if self._learning:
                if avail is not None and end <= self._learn_end:
                    break
                self._finish_learning()
                if self._learning:
                    if avail is None:
                        break
                    continue
            t_c = self._pending[0] + L if self._pending else None
            t_s = self._sb_deadline() if self._sb_armed else None
            if avail is None:  # end of stream: no more samples will come
                if t_c is None and (t_s is None or t_s >= end):
                    break
                if t_s is not None and t_s < end and (t_c is None or t_s < t_c):
                    self._searchback(t_s, out)
                else:
                    self._decide(self._pending.popleft(), min(t_c, end), out)
                continue
            t = min(x for x in (t_c, t_s, end) if x is not None)
            if t >= end:
                break
            if t_c is not None and t_c == t:
                self._decide(self._pending.popleft(), t_c, out)
            else:
                self._searchback(t_s, out)
        self.beats_total += len(out)
        return out

    def _finish_learning(self) -> None:
        """Start the levels from the largest MWI peak of each second of the learning window."""
        end = self._learn_end
        L = self.lookahead
        vals = [(c, self._mwi_at(c)) for c in self._pending if c + L < end and not self._blanked(c)]
        maxima = []
        for k in range(0, end, int(self.config.fs)):
            in_second = [v for c, v in vals if k <= c < k + int(self.config.fs)]
            if in_second:
                maxima.append(max(in_second))
        if not maxima:  # a flat or blanked start: learn over the next window instead
            self._learn_end += self._learn
            return
        qrs = float(np.mean(maxima))
        self._qrs_levels.extend([qrs] * self.config.n_levels)
        self._noise_levels.extend([0.0] * self.config.n_levels)
        self._learning = False

    def _mwi_at(self, c: int) -> float:
        return float(self._mwi_buf[c - self._buf_start])

    def _threshold(self) -> float:
        stat = np.median if self.config.level_stat == "median" else np.mean
        q = float(stat(self._qrs_levels))
        nz = float(stat(self._noise_levels))
        return nz + self.config.threshold * (q - nz)

    def _rr_mean(self) -> float:
        if not self._rr:
            return float(self.config.fs)  # 60 bpm until two beats are known
        return float(np.mean(self._rr))

    def _sb_deadline(self) -> int:
        return self._sb_ref + int(round(self.config.searchback_rr * self._rr_mean()))

    def _blanked(self, c: int) -> bool:
        return self.quality.any_bad(c - self._settle, c + self._post + 1, since=c - self._settle)

    def _slope(self, c: int) -> float:
        w = self._window(self._slope_buf, c - self._mwi_n, c + 1)
        return float(w.max()) if len(w) else 0.0

    def _r_peak(self, c: int) -> int:
        # never at or before the previous beat's refractory period: keeps the beats in order and
        # one R peak from being reported twice
        lo = c + self._r_lo
        if self._last_r is not None:
            lo = max(lo, self._last_r + self._refractory)
        w = self._window(self._hp_buf, lo, c + self._r_hi + 1)
        if len(w) == 0:
            return max(lo, c + self._r_hi)
        start = max(lo, self._buf_start, 0)
        return int(start + np.argmax(np.abs(w - w.mean())))

    def _decide(self, c: int, t: int, out: list[Beat]) -> None:
        if self._blanked(c):
            self._sb_ref = max(self._sb_ref or 0, c)  # artefact: restart the search-back clock
            self._sb_armed = self._last_qrs is not None
            self._sb_from = None
            self._since_last.clear()
            return
        since = None if self._last_qrs is None else c - self._last_qrs
        if since is not None and since < self._refractory:
            return
        v = self._mwi_at(c)
        slope = self._slope(c)
        if v > self._threshold():
            if since is not None and since < self._twave and slope < self.config.twave_slope_ratio * self._last_slope:
                self._noise_levels.append(v)  # a T wave
                return
            self._accept(c, v, slope, t, False, out)
        else:
            self._noise_levels.append(v)
            self._since_last.append((c, v, self._r_peak(c), slope))

    def _accept(self, c: int, v: float, slope: float, t: int, searchback: bool, out: list[Beat], r: int | None = None) -> None:
        if r is None:
            r = self._r_peak(c)
        out.append(Beat(r, t, searchback))
        self._last_r = r
        self._qrs_levels.append(v)
        if self._last_qrs is not None:
            self._rr.append(min(c - self._last_qrs, self._rr_max))
        self._last_qrs = c
        self._last_slope = slope
        self._sb_ref = c
        self._sb_armed = True
        self._sb_from = None
        self._since_last.clear()

    def _searchback(self, t: int, out: list[Beat]) -> None:
        self._sb_armed = False
        floor = self.config.searchback_fraction * self._threshold()
        ref = self._last_qrs if self._last_qrs is not None else -self._sb_min
        first = ref + self._sb_min if self._sb_from is None else self._sb_from
        best = None
        for cand in self._since_last:
            c, v = cand[0], cand[1]
            if c >= first and v > floor and (best is None or v > best[1]):
                best = cand
        if best is None:
            decay = self.config.searchback_decay
            if decay < 1.0 and self._last_qrs is not None:
                # a sudden drop in amplitude (electrode, posture) would otherwise silence the
                # detector until the amplitude comes back: lower the QRS level and look again
                # one search-back interval later, at the peaks decided since this search only
                # (which also bounds the latency of what it finds)
                self._qrs_levels = deque((q * decay for q in self._qrs_levels), maxlen=self.config.n_levels)
                self._sb_ref = t
                self._sb_from = t - self.lookahead
                self._sb_armed = True
            return
        c, v, r, slope = best
        self._noise_levels_remove(v)
        self._accept(c, v, slope, t, True, out, r=r)

    def _noise_levels_remove(self, v: float) -> None:
        # the peak was counted as noise when it was decided; it was a beat after all
        try:
            self._noise_levels.remove(v)
        except ValueError:
            pass


def detect_qrs(signal: np.ndarray, config: QrsConfig | None = None, chunk: int | None = None, **overrides) -> tuple[np.ndarray, list[QualityEvent], QrsDetector]:
    """Stream ``signal`` through a fresh detector in chunks of ``chunk`` samples (default 1 s).

    Returns the R-peak sample indices, the signal-quality stretches and the detector.
    """
    det = QrsDetector(config, **overrides)
    step = int(chunk or det.config.fs)
    beats: list[Beat] = []
    for start in range(0, len(signal), step):
        beats += det.process(signal[start : start + step])
    beats += det.flush()
    return np.array([b.sample for b in beats], dtype=np.int64), det.quality_events, det
