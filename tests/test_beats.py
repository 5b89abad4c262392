import numpy as np
import pytest

from ecgedge.data.beats import WINDOW_MARGIN, extract_beats, locate_beats
from ecgedge.preprocess.rhythm import RHYTHM_FEATURES, rhythm_features
from ecgedge.data.records import read_annotations, read_record
from ecgedge.preprocess import get_preset, highpass


@pytest.fixture(scope="module")
def record_100(mitdb_dir):
    return read_record(mitdb_dir, "100")


@pytest.mark.parametrize("preset", ["edge", "paper"])
def test_windows_are_centred_on_the_annotation(record_100, preset):
    cfg = get_preset(preset)
    beats = extract_beats(record_100, cfg)
    filtered = highpass(record_100.signal, record_100.fs, cfg.highpass_hz, cfg.highpass_order, cfg.highpass_causal)
    assert beats.windows.shape[1] == cfg.window.length
    # Sample `before` of each window is the annotated R-peak sample itself.
    assert np.array_equal(beats.windows[:, cfg.window.before], filtered[beats.samples])
    # ...and on real data the R peak is the largest deflection within +-30 ms of the centre.
    c, w = cfg.window.before, int(0.03 * cfg.fs)
    peak = np.abs(beats.windows[:, c - w : c + w + 1]).argmax(axis=1) - w
    assert np.median(np.abs(peak)) <= 2


def test_mlii_lead_is_chosen_by_name(mitdb_dir):
    # Record 114 stores V5 first and MLII second.
    rec = read_record(mitdb_dir, "114")
    import wfdb

    ref = wfdb.rdrecord(str(mitdb_dir / "114"), sampto=1000)
    assert ref.sig_name == ["V5", "MLII"]
    assert np.allclose(rec.signal[:1000], ref.p_signal[:, 1], atol=1e-6)


def test_beats_carry_the_rhythm_features_of_all_annotated_beats(mitdb_dir):
    ann = read_annotations(mitdb_dir, "100")
    loc = locate_beats(ann, get_preset("edge").window)
    assert loc.rr.shape == (len(loc.samples), len(RHYTHM_FEATURES))
    assert np.array_equal(loc.rr, rhythm_features(loc.samples, ann.fs))
    pre = np.diff(loc.samples) / ann.fs
    assert np.allclose(loc.rr[1:, 0], pre) and np.allclose(loc.rr[:-1, 1], pre)


def test_margin_windows_hold_the_plain_window_in_their_middle(record_100):
    cfg = get_preset("edge")
    plain = extract_beats(record_100, cfg)
    wide = extract_beats(record_100, cfg, margin=WINDOW_MARGIN)
    assert wide.windows.shape == (len(plain.labels), cfg.window.length + 2 * WINDOW_MARGIN)
    assert np.array_equal(wide.windows[:, WINDOW_MARGIN:-WINDOW_MARGIN], plain.windows)
    assert np.array_equal(wide.samples, plain.samples)


def test_resampled_record_keeps_annotations_on_peaks(mitdb_copy, tmp_path):
    """A 250 Hz record (as in other PhysioNet databases) is resampled to 360 Hz."""
    import wfdb

    src = mitdb_copy(("100",), with_sums=False)
    rec = wfdb.rdrecord(str(src / "100"), sampto=60 * 360)  # one minute
    ann = wfdb.rdann(str(src / "100"), "atr", sampto=rec.sig_len)
    from scipy.signal import resample_poly

    sig250 = resample_poly(rec.p_signal, 25, 36, axis=0)
    out = tmp_path / "db250"
    out.mkdir()
    wfdb.wrsamp("r250", fs=250, units=rec.units, sig_name=rec.sig_name, p_signal=sig250, fmt=["16", "16"], write_dir=str(out))
    wfdb.wrann("r250", "atr", np.round(ann.sample * 250 / 360).astype(int), ann.symbol, write_dir=str(out))
    res = read_record(out, "r250")
    assert res.fs == 360 and res.source_fs == 250
    assert abs(len(res.signal) - rec.sig_len) <= 2
    orig = read_annotations(src, "100")
    n = len(res.annotations.sample)
    assert np.abs(res.annotations.sample - orig.sample[:n]).max() <= 1


def test_training_filters_as_the_gateway_does(record_100):
    """The presets' causal high-pass over a whole record = the gateway's streaming filter, chunk by chunk."""
    from ecgedge.firmware_host.filters import highpass as stream_highpass

    cfg = get_preset("edge")
    assert cfg.highpass_causal
    x = record_100.signal[: 360 * 120]
    training = highpass(x, record_100.fs, cfg.highpass_hz, cfg.highpass_order, causal=True)
    f = stream_highpass(record_100.fs, cfg.highpass_hz, cfg.highpass_order)
    streamed = np.concatenate([f(x[s : s + 997]) for s in range(0, len(x), 997)]).astype(np.float32)
    np.testing.assert_array_equal(training, streamed)
    # and it is not the zero-phase filter of earlier versions
    assert not np.allclose(training, highpass(x, record_100.fs, cfg.highpass_hz, cfg.highpass_order, causal=False), atol=1e-3)
