"""EC57 beat-by-beat matching on hand-made cases, and WFDB annotation files round-tripping through rdann."""

import numpy as np
import pytest
import wfdb

from ecgedge.evaluate.annotations import read_beat_annotations, write_beat_annotations
from ecgedge.evaluate.ec57 import QrsCounts, average, gross, match_beats, qrs_counts, reference_beats

FS = 360.0
W = 54  # 150 ms at 360 Hz
T5 = int(300 * FS)  # end of the learning period


def test_window_edge_is_inclusive():
    ref = np.array([1000, 2000])
    m = match_beats(ref, np.array([1000 + W, 2000 - W - 1]), FS)
    assert m.pairs.tolist() == [[0, 0]]
    assert m.unmatched_ref.tolist() == [1]
    assert m.unmatched_det.tolist() == [1]


def test_double_detection_is_one_true_and_one_false_positive():
    ref = np.array([T5 + 1000])
    det = np.array([T5 + 990, T5 + 1020])
    counts, m = qrs_counts("x", ref, det, FS)
    assert m.pairs.tolist() == [[0, 0]]  # the closer one
    assert (counts.tp, counts.fn, counts.fp) == (1, 0, 1)


def test_closest_pairs_win_over_order():
    # det 0 lies within the window of both beats but closer to ref 1, which has det 1 closer still:
    # ref 1 takes det 1 first, and det 0 is left for ref 0
    ref = np.array([1000, 1060])
    det = np.array([1040, 1061])
    m = match_beats(ref, det, FS)
    assert m.pairs.tolist() == [[0, 0], [1, 1]]
    # one detection between two beats goes to the closer beat
    m = match_beats(np.array([1000, 1080]), np.array([1050]), FS)
    assert m.pairs.tolist() == [[1, 0]] and m.unmatched_ref.tolist() == [0]


def test_learning_period_excluded_from_counts_not_from_matching():
    ref = np.array([100, T5 - 10, T5 + 500, T5 + 900])
    # the beat just before 5 min is matched by a detection just after it: neither counts;
    # a false detection in the learning period does not count either
    det = np.array([100, 5000, T5 + 10, T5 + 500])
    counts, m = qrs_counts("x", ref, det, FS)
    assert m.pairs.tolist() == [[0, 0], [1, 2], [2, 3]]
    assert (counts.tp, counts.fn, counts.fp) == (1, 1, 0)
    # a pair whose reference beat is after 5 min counts even when the detection is just before
    counts, _ = qrs_counts("x", np.array([T5 + 5]), np.array([T5 - 5]), FS)
    assert (counts.tp, counts.fn, counts.fp) == (1, 0, 0)


def test_vf_episodes_and_non_beats():
    sample = np.array([T5 + 100, T5 + 200, T5 + 300, T5 + 400, T5 + 900, T5 + 1000])
    symbol = np.array(["N", "[", "!", "]", "+", "V"])
    beats, symbols, episodes = reference_beats(sample, symbol)
    assert beats.tolist() == [T5 + 100, T5 + 1000] and symbols.tolist() == ["N", "V"]
    assert episodes.tolist() == [[T5 + 200, T5 + 400]]
    det = np.array([T5 + 100, T5 + 300, T5 + 600, T5 + 1000])  # one in the episode, one outside
    counts, _ = qrs_counts("x", beats, det, FS, episodes=episodes)
    assert (counts.tp, counts.fn, counts.fp) == (2, 0, 1)


def test_no_detections_and_no_beats():
    counts, m = qrs_counts("x", np.array([T5 + 1]), np.array([], dtype=np.int64), FS)
    assert (counts.tp, counts.fn, counts.fp) == (0, 1, 0) and m.pairs.shape == (0, 2)
    assert np.isnan(QrsCounts("x", 0, 0, 0).se)


def test_gross_sums_counts_average_means_figures():
    a, b = QrsCounts("a", 90, 10, 0), QrsCounts("b", 10, 0, 10)
    g = gross([a, b])
    assert (g.tp, g.fn, g.fp) == (100, 10, 10)
    assert g.se == pytest.approx(100 / 110)
    assert average([a, b]) == pytest.approx({"se": (0.9 + 1.0) / 2, "ppv": (1.0 + 0.5) / 2})


def test_unsorted_input_rejected():
    with pytest.raises(ValueError):
        match_beats(np.array([2, 1]), np.array([1]), FS)


def test_annotation_file_round_trips_through_rdann(tmp_path):
    samples = np.array([700, 5, 360 * 1800, 42])  # unsorted on purpose: written sorted
    symbols = np.array(["V", "N", "N", "S"])
    path = write_beat_annotations("100", samples, tmp_path, FS, symbols)
    assert path == tmp_path / "100.qrs"
    ann = wfdb.rdann(str(tmp_path / "100"), "qrs")
    assert ann.sample.tolist() == [5, 42, 700, 360 * 1800]
    assert ann.symbol == ["N", "S", "V", "N"]
    assert ann.fs == FS
    s, sym = read_beat_annotations(tmp_path / "100")
    assert s.tolist() == sorted(samples.tolist()) and sym.tolist() == ["N", "S", "V", "N"]
