"""AAMI-labelled beats of a record: where they are, and their signal windows."""

from dataclasses import dataclass

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES, SYMBOL_TO_AAMI
from ecgedge.data.records import Annotations, Record
from ecgedge.preprocess import PreprocessConfig, WindowConfig, highpass
from ecgedge.preprocess.rhythm import rhythm_features

_SYMBOL_LABEL = {sym: AAMI_CLASSES.index(cls) for sym, cls in SYMBOL_TO_AAMI.items()}

#: Extra samples kept on each side of a beat window, so training can shift the window a little
#: (R-peak jitter augmentation) without re-reading the record.
WINDOW_MARGIN = 8


@dataclass(frozen=True)
class BeatLocations:
    """Every AAMI beat of a record, and whether its window fits inside the record."""

    record: str
    samples: np.ndarray  # int64 [n], R-peak annotation sample
    labels: np.ndarray  # int8 [n], index into AAMI_CLASSES
    rr: np.ndarray  # float32 [n, N_RHYTHM]: ecgedge.preprocess.rhythm.RHYTHM_FEATURES
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
    rr: np.ndarray  # float32 [n, N_RHYTHM]
    dropped: np.ndarray  # int64 [5]


def locate_beats(ann: Annotations, window: WindowConfig) -> BeatLocations:
    is_beat = np.isin(ann.symbol, list(_SYMBOL_LABEL))
    samples = ann.sample[is_beat]
    labels = np.array([_SYMBOL_LABEL[s] for s in ann.symbol[is_beat]], dtype=np.int8)
    starts = samples - window.before
    return BeatLocations(
        record=ann.name,
        samples=samples,
        labels=labels,
        # Rhythm from every beat, before any is dropped, so a dropped neighbour still counts.
        rr=rhythm_features(samples, ann.fs),
        fits=(starts >= 0) & (samples + window.after <= ann.n_samples),
    )


def extract_beats(record: Record, config: PreprocessConfig, margin: int = 0) -> RecordBeats:
    """All AAMI beats of ``record``; windows that cross the record's ends are counted as dropped.

    ``margin`` > 0 widens every window by that many samples on each side (the record's first and
    last samples are repeated where the margin crosses its ends): windows ``[n, length + 2 margin]``.
    """
    loc = locate_beats(record.annotations, config.window)
    signal = highpass(record.signal, record.fs, config.highpass_hz, config.highpass_order, config.highpass_causal)
    if margin:
        signal = np.pad(signal, margin, mode="edge")
    index = (loc.samples[loc.fits] - config.window.before)[:, None] + np.arange(config.window.length + 2 * margin)
    return RecordBeats(
        record=record.name,
        windows=signal[index],
        labels=loc.labels[loc.fits],
        samples=loc.samples[loc.fits],
        rr=loc.rr[loc.fits],
        dropped=loc.dropped,
    )
