"""Rhythm features: hand-computed values, causality, edges."""

import numpy as np
import pytest

from ecgedge.preprocess.rhythm import MAX_RATIO, RHYTHM_FEATURES, RhythmConfig, rhythm_features

COL = {name: i for i, name in enumerate(RHYTHM_FEATURES)}


def test_hand_computed_values_with_a_premature_beat():
    fs = 100.0
    # Regular 1.0 s rhythm, beat 4 comes 0.6 s after beat 3 and is followed by a 1.4 s pause.
    samples = np.array([0, 100, 200, 300, 360, 500, 600])
    f = rhythm_features(samples, fs, RhythmConfig(local_beats=3, long_s=10.0))
    assert f.shape == (7, len(RHYTHM_FEATURES)) and f.dtype == np.float32
    assert f[4, COL["pre_rr_s"]] == pytest.approx(0.6)
    assert f[4, COL["post_rr_s"]] == pytest.approx(1.4)
    # local mean of the 3 intervals *before* beat 4's own: 1.0, 1.0, 1.0
    assert f[4, COL["local_rr_s"]] == pytest.approx(1.0)
    assert f[4, COL["pre_over_local"]] == pytest.approx(0.6)
    assert f[4, COL["post_over_local"]] == pytest.approx(1.4)
    assert f[4, COL["post_over_pre"]] == pytest.approx(1.4 / 0.6)
    # beat 6: past intervals 1.0 (b3), 0.6 (b4), 1.4 (b5) -> local mean 1.0; long over 10 s:
    # intervals ending at beats 1..5 -> (1 + 1 + 1 + 0.6 + 1.4) / 5 = 1.0
    assert f[6, COL["local_rr_s"]] == pytest.approx(1.0)
    assert f[6, COL["long_rr_s"]] == pytest.approx(1.0)
    # beat 5: local = mean(1.0, 1.0, 0.6) (beats 2, 3, 4)
    assert f[5, COL["local_rr_s"]] == pytest.approx((1.0 + 1.0 + 0.6) / 3)
    assert f[5, COL["pre_over_local"]] == pytest.approx(1.4 / ((1.0 + 1.0 + 0.6) / 3))


def test_long_window_forgets_intervals_older_than_long_s():
    fs = 10.0
    # 0.5 s intervals for 20 s, then 1.0 s intervals
    samples = np.concatenate([np.arange(0, 200, 5), np.arange(200, 400, 10)])
    f = rhythm_features(samples, fs, RhythmConfig(local_beats=4, long_s=10.0))
    last = len(samples) - 1  # at t = 39 s, the last 10 s hold only 1.0 s intervals
    assert f[last, COL["long_rr_s"]] == pytest.approx(1.0)
    first_slow = 40  # t = 20 s: its past 10 s hold 0.5 s intervals only
    assert f[first_slow, COL["long_rr_s"]] == pytest.approx(0.5)
    assert f[first_slow, COL["pre_rr_s"]] == pytest.approx(0.5)  # 19.5 s -> 20 s


def test_features_are_causal_they_use_only_the_next_r_peak():
    rng = np.random.default_rng(0)
    samples = np.cumsum(rng.integers(200, 400, size=300))
    full = rhythm_features(samples, 360.0)
    for i in (0, 1, 5, 57, 150, 298):
        part = rhythm_features(samples[: i + 2], 360.0)
        assert np.array_equal(part[i], full[i]), i


def test_edges_and_gaps_stay_finite_and_bounded():
    f = rhythm_features(np.array([0, 360, 720, 100_000]), 360.0)
    assert np.isfinite(f).all()
    assert f[:, 4:].max() <= MAX_RATIO and f[:, 4:].min() >= 0
    assert f[0, COL["pre_rr_s"]] == f[0, COL["post_rr_s"]]  # first beat: post stands in for pre
    assert rhythm_features(np.array([5]), 360.0).shape == (1, len(RHYTHM_FEATURES))
    assert rhythm_features(np.array([], dtype=int), 360.0).shape == (0, len(RHYTHM_FEATURES))
    with pytest.raises(ValueError, match="strictly increasing"):
        rhythm_features(np.array([0, 10, 10]), 360.0)


def test_premature_s_beats_of_a_real_record_stand_out(mitdb_dir):
    """Record 220: S beats come early against the local rhythm (pre/local about 0.6), N beats on time.

    (Measured: S 10/50/90th percentiles 0.52/0.62/0.80, N 0.97/1.00/1.06. In records with runs of
    S beats, e.g. 209, the local mean adapts during a run and the S median rises to 0.88: the
    reason the long-window ratios are there too.)
    """
    from ecgedge.data.beats import locate_beats
    from ecgedge.data.records import read_annotations
    from ecgedge.preprocess import get_preset

    ann = read_annotations(mitdb_dir, "220")
    loc = locate_beats(ann, get_preset("edge").window)
    ratio = loc.rr[:, COL["pre_over_local"]]
    s, n = ratio[loc.labels == 1], ratio[loc.labels == 0]
    assert len(s) > 80
    assert np.median(s) < 0.75 and 0.95 < np.median(n) < 1.05
    assert np.percentile(s, 90) < np.percentile(n, 10)
