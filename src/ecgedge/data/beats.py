"""AAMI-labelled beats of a record: where they are, and their signal windows."""

from dataclasses import dataclass

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES, SYMBOL_TO_AAMI
from ecgedge.data.records import Annotations, Record
from ecgedge.preprocess import PreprocessConfig, WindowConfig, highpass

_SYMBOL_LABEL = {sym: AAMI_CLASSES.index(cls) for sym, cls in SYMBOL_TO_AAMI.items()}

#: Beats averaged for the local RR mean (about 10 s of rhythm).
LOCAL_RR_BEATS = 10


@dataclass(frozen=True)
class BeatLocations:
    """Every AAMI beat of a record, and whether its window fits inside the record."""

    record: str
    samples: np.ndarray  # int64 [n], R-peak annotation sample
    labels: np.ndarray  # int8 [n], index into AAMI_CLASSES
    rr: np.ndarray  # float32 [n, 3] seconds: pre-RR, post-RR, local mean RR
    fits: np.ndarray  # bool [n]

    @property
    def dropped(self) -> np.ndarray:
        """Beats per class whose window falls off the record, int64 [5]."""
        return np.bincount(self.labels[~self.fits], minlength=len(AAMI_CLASSES)).astype(np.int64)


@dataclass(frozen=True)
class RecordBeats:
    """The beats of one record whose window fits inside it, and the count of those that did not."""

    record: str
    windows: np.ndarray  # float32 [n, window.length], high-passed, millivolts
    labels: np.ndarray  # int8 [n]
    samples: np.ndarray  # int64 [n]
    rr: np.ndarray  # float32 [n, 3]
    dropped: np.ndarray  # int64 [5]


def rr_features(samples: np.ndarray, fs: float) -> np.ndarray:
    """Pre-RR, post-RR and the mean pre-RR of the last ``LOCAL_RR_BEATS`` beats, in seconds."""
    if len(samples) < 2:
        return np.zeros((len(samples), 3), dtype=np.float32)
    diffs = np.diff(samples).astype(np.float64) / fs
    pre = np.concatenate([[diffs[0]], diffs])
    post = np.concatenate([diffs, [diffs[-1]]])
    csum = np.concatenate([[0.0], np.cumsum(pre)])
    idx = np.arange(len(pre))
    start = np.maximum(0, idx + 1 - LOCAL_RR_BEATS)
    local = (csum[idx + 1] - csum[start]) / (idx + 1 - start)
    return np.stack([pre, post, local], axis=1).astype(np.float32)


def locate_beats(ann: Annotations, window: WindowConfig) -> BeatLocations:
    is_beat = np.isin(ann.symbol, list(_SYMBOL_LABEL))
    samples = ann.sample[is_beat]
    labels = np.array([_SYMBOL_LABEL[s] for s in ann.symbol[is_beat]], dtype=np.int8)
    starts = samples - window.before
    return BeatLocations(
        record=ann.name,
        samples=samples,
        labels=labels,
        # RR from every beat, before any is dropped, so a dropped neighbour still counts.
        rr=rr_features(samples, ann.fs),
        fits=(starts >= 0) & (samples + window.after <= ann.n_samples),
    )


def extract_beats(record: Record, config: PreprocessConfig) -> RecordBeats:
    """All AAMI beats of ``record``; windows that cross the record's ends are counted as dropped."""
    loc = locate_beats(record.annotations, config.window)
    signal = highpass(record.signal, record.fs, config.highpass_hz, config.highpass_order)
    index = (loc.samples[loc.fits] - config.window.before)[:, None] + np.arange(config.window.length)
    return RecordBeats(
        record=record.name,
        windows=signal[index],
        labels=loc.labels[loc.fits],
        samples=loc.samples[loc.fits],
        rr=loc.rr[loc.fits],
        dropped=loc.dropped,
    )
