import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import ShortTimeFFT
from scipy.signal.windows import hamming

from ecgedge.data.beats import extract_beats
from ecgedge.data.records import read_record
from ecgedge.preprocess import PRESETS, PreprocessConfig, beats_to_images, get_preset, stft_power_db
from ecgedge.preprocess.spectrogram import _resize_matrix, n_bins, n_frames


@pytest.fixture(scope="module")
def beats_208(mitdb_dir):
    # Record 208 has many V and F beats next to N ones.
    return read_record(mitdb_dir, "208")


@pytest.mark.parametrize("preset", ["edge", "paper"])
def test_stft_equals_scipy_short_time_fft(beats_208, preset):
    cfg = get_preset(preset)
    spec = cfg.spectrogram
    windows = extract_beats(beats_208, cfg).windows[:8]
    stft = ShortTimeFFT(hamming(spec.win_length, sym=False), spec.hop, cfg.fs, mfft=spec.n_fft)
    # scipy centres frame p at p*hop; ours start at 0, hop, ...: shift the input to line them up.
    pad = -stft.m_num_mid % spec.hop
    p0 = (stft.m_num_mid + pad) // spec.hop
    frames = n_frames(spec, cfg.window.length)
    padded = np.pad(windows, ((0, 0), (pad, 0)))
    ref = np.abs(stft.stft(padded, p0=p0, p1=p0 + frames)[:, : n_bins(spec, cfg.fs)]) ** 2
    ours = stft_power_db(windows, spec, cfg.fs)
    assert ours.shape == ref.shape
    ref_db = 10 * np.log10(ref + 1e-12)
    # float32 DFT vs float64 FFT: compare over the range the image shows.
    shown = ref_db > ref_db.max(axis=(1, 2), keepdims=True) - spec.dynamic_range_db
    assert np.abs(ours - ref_db)[shown].max() < 0.02


@pytest.mark.parametrize(("preset", "shape", "window"), [("edge", (32, 32), 512), ("paper", (224, 224), 864)])
def test_presets_give_documented_shapes(beats_208, preset, shape, window):
    cfg = get_preset(preset)
    assert cfg.window.length == window and cfg.fs == 360 and cfg.lead == "MLII"
    images = beats_to_images(extract_beats(beats_208, cfg).windows[:40], cfg)
    assert images.shape == (40, *shape) and images.dtype == np.uint8
    # Each image spans the grey range: its peak near white, its floor near black (interpolation
    # to the image size may round the extremes by a few levels).
    assert (images.reshape(40, -1).max(axis=1) >= 240).all()
    assert (images.reshape(40, -1).min(axis=1) <= 15).all()


def test_classes_look_different(beats_208):
    """V beats (wide QRS) put less energy at high frequencies than N beats: the images must show it."""
    cfg = get_preset("edge")
    beats = extract_beats(beats_208, cfg)
    images = beats_to_images(beats.windows, cfg).astype(float)
    centre = slice(14, 18)  # time columns around the R peak
    top_half = images[:, :16, centre].mean(axis=(1, 2))  # rows 0..15 = high frequencies
    assert top_half[beats.labels == 0].mean() > top_half[beats.labels == 2].mean() + 10


def test_resize_matrix_interpolates():
    m = _resize_matrix(4, 8)
    assert np.allclose(m.sum(axis=1), 1)
    ramp = np.arange(4, dtype=np.float32)
    assert np.all(np.diff(m @ ramp) >= 0)
    assert np.allclose(_resize_matrix(5, 5), np.eye(5))


def test_config_round_trips_and_fingerprints():
    for cfg in PRESETS.values():
        again = PreprocessConfig.from_dict(cfg.to_dict())
        assert again == cfg and again.fingerprint() == cfg.fingerprint()
    assert PRESETS["edge"].fingerprint() != PRESETS["paper"].fingerprint()


def test_wrong_window_length_is_rejected():
    with pytest.raises(ValueError, match="512 samples"):
        beats_to_images(np.zeros((2, 100), np.float32), get_preset("edge"))


def test_preprocessing_needs_no_torch():
    """The gateway runs this module as is: it must not pull torch in."""
    code = "import sys, ecgedge.preprocess.spectrogram; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
