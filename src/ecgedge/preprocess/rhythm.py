"""Rhythm features of each beat: RR intervals and their ratios to the patient's own rhythm (numpy).

Supraventricular ectopic beats look like normal beats; what marks them is *prematurity* relative to
the rhythm of the same patient (a short pre-RR, often a longer post-RR). Absolute intervals differ a
lot between patients (40-150 bpm), which is why inter-patient classifiers normalise them:

* de Chazal, O'Dwyer, Reilly 2004 (IEEE TBME 51:1196): pre-RR, post-RR, the record's average RR
  and the local average RR (10 s) are the features that carry most of the S information.
* Llamedo and Martínez 2011 (IEEE TBME 58:616) and Mondéjar-Guerra et al. 2019 (BSPC 47:41): the
  same intervals *divided by the patient's average RR* generalise across patients far better than
  the raw ones (S sensitivity up to +30 points in the inter-patient protocol).
* Lin and Yang 2014 (IEEE TBME 61:1240): normalised RR intervals alone reach most of the S
  performance of the full feature set.

The average RR must be causal for a gateway: the record's overall average (de Chazal's) is not
known while streaming, so two running means of *past* intervals stand in for it: ``local`` (the
last ``local_beats`` intervals, about 10 s) and ``long`` (the intervals of the last ``long_s``
seconds). Neither includes the beat's own pre-RR, so a premature beat does not dilute its own
reference. The next R peak is allowed (post-RR): the gateway waits for it, as the beat window
already reaches past the R peak.

Features, in order of :data:`RHYTHM_FEATURES` (seconds, or ratios):

    pre_rr, post_rr, local_rr, long_rr,
    pre/local, post/local, pre/long, post/long, local/long, post/pre

Edges: the first beat has no pre-RR (its post-RR stands in), the last no post-RR (its pre-RR
stands in); before any past interval exists the beat's own pre-RR is the reference. Ratios are
clipped to [0, :data:`MAX_RATIO`] so a gap in the annotations (or a missed detection) cannot
produce huge values. Every value is finite.
"""

from dataclasses import asdict, dataclass

import numpy as np

RHYTHM_FEATURES = (
    "pre_rr_s",
    "post_rr_s",
    "local_rr_s",
    "long_rr_s",
    "pre_over_local",
    "post_over_local",
    "pre_over_long",
    "post_over_long",
    "local_over_long",
    "post_over_pre",
)
N_RHYTHM = len(RHYTHM_FEATURES)
MAX_RATIO = 5.0

#: Fixed centre and scale per feature that put each near unit scale (seconds around a 75 bpm
#: rhythm; ratios around 1). A model applies them in its graph, so exported files take the raw
#: features and the gateway computes nothing but :func:`rhythm_features`.
RHYTHM_CENTER = (0.8, 0.8, 0.8, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
RHYTHM_SCALE = (0.25, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3)
#: The features of a perfectly regular 75 bpm rhythm (example inputs for tracing and export).
REGULAR_RHYTHM = RHYTHM_CENTER


@dataclass(frozen=True)
class RhythmConfig:
    local_beats: int = 10  # past intervals in the local mean (about 10 s at 60 bpm)
    long_s: float = 300.0  # seconds of past intervals in the long mean (5 minutes)

    def to_dict(self) -> dict:
        return asdict(self)


def _past_mean(intervals: np.ndarray, first: np.ndarray, last: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Mean of ``intervals[first[i]:last[i]]`` per beat (``fallback`` where that range is empty)."""
    csum = np.concatenate([[0.0], np.cumsum(intervals)])
    count = last - first
    total = csum[last] - csum[first]
    return np.where(count > 0, total / np.maximum(count, 1), fallback)


def rhythm_features(samples: np.ndarray, fs: float, config: RhythmConfig = RhythmConfig()) -> np.ndarray:
    """float32 ``[n, N_RHYTHM]`` rhythm features of the beats at R-peak ``samples`` (increasing).

    Beat ``i`` uses only ``samples[: i + 2]``: the past beats, itself and the next R peak.
    """
    samples = np.asarray(samples, dtype=np.int64)
    n = len(samples)
    if n == 0:
        return np.zeros((0, N_RHYTHM), dtype=np.float32)
    if fs <= 0:
        raise ValueError(f"sampling rate must be positive, got {fs}")
    if n == 1:
        # One beat has no interval at all; a 75 bpm rhythm is the neutral guess.
        pre = post = np.array([0.8])
    else:
        diffs = np.diff(samples).astype(np.float64) / fs
        if np.any(diffs <= 0):
            raise ValueError("R-peak samples must be strictly increasing")
        pre = np.concatenate([[diffs[0]], diffs])
        post = np.concatenate([diffs, [diffs[-1]]])
    idx = np.arange(n)
    # pre[j] for j >= 1 is the interval ending at beat j; beat i's past intervals are pre[1 : i].
    past_end = np.maximum(idx, 1)
    local = _past_mean(pre, np.maximum(1, idx - config.local_beats), past_end, pre)
    t = samples / fs
    long_first = np.maximum(1, np.searchsorted(t, t - config.long_s, side="left"))
    long = _past_mean(pre, np.minimum(long_first, past_end), past_end, pre)

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.clip(a / b, 0.0, MAX_RATIO)

    return np.stack(
        [
            pre,
            post,
            local,
            long,
            ratio(pre, local),
            ratio(post, local),
            ratio(pre, long),
            ratio(post, long),
            ratio(local, long),
            ratio(post, pre),
        ],
        axis=1,
    ).astype(np.float32)
