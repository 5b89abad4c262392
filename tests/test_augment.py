"""Training augmentations: what each changes in the image, and what it cannot change."""

import numpy as np
import pytest

from ecgedge.data.beats import WINDOW_MARGIN, extract_beats
from ecgedge.data.records import read_record
from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess import beats_to_images, get_preset
from ecgedge.train.augment import AUGMENTATIONS, Augmenter, parse_augment


@pytest.fixture(scope="module")
def wide(mitdb_dir):
    cfg = get_preset("edge")
    beats = extract_beats(read_record(mitdb_dir, "119"), cfg, margin=WINDOW_MARGIN)
    return cfg, beats.windows[:64]


def test_no_augmentation_gives_the_cached_image(wide):
    cfg, w = wide
    plain = beats_to_images(w[:, WINDOW_MARGIN:-WINDOW_MARGIN], cfg)
    assert np.array_equal(Augmenter(cfg, ()).images(w, np.random.default_rng(0)), plain)


def test_a_gain_alone_changes_no_pixel_so_amplitude_needs_noise_to_matter(wide):
    cfg, w = wide
    plain = beats_to_images(w[:, WINDOW_MARGIN:-WINDOW_MARGIN], cfg)
    scaled = Augmenter(cfg, ("amplitude",)).images(w, np.random.default_rng(0))
    # each image maps its own peak power to white: a gain moves every dB value alike
    assert np.abs(scaled.astype(int) - plain).max() <= 1


@pytest.mark.parametrize("name", ["jitter", "noise", "wander"])
def test_each_augmentation_changes_images_reproducibly(wide, name):
    cfg, w = wide
    plain = beats_to_images(w[:, WINDOW_MARGIN:-WINDOW_MARGIN], cfg)
    a = Augmenter(cfg, (name,)).images(w, np.random.default_rng(1))
    b = Augmenter(cfg, (name,)).images(w, np.random.default_rng(1))
    assert np.array_equal(a, b)
    changed = np.mean(np.any(a != plain, axis=(1, 2)))
    assert changed > 0.5, (name, changed)


def test_jitter_shifts_within_the_margin(wide):
    cfg, w = wide
    out = Augmenter(cfg, ("jitter",)).windows(w.astype(np.float32), np.random.default_rng(2))
    centre = w.shape[1] // 2
    length = cfg.window.length
    shifts = []
    for row, src in zip(out, w.astype(np.float32)):
        found = [s for s in range(-WINDOW_MARGIN, WINDOW_MARGIN + 1) if np.array_equal(src[WINDOW_MARGIN + s : WINDOW_MARGIN + s + length], row)]
        assert found
        shifts.append(found[0])
    assert len(set(shifts)) > 5 and centre > 0


def test_parse_augment():
    assert parse_augment("none") == () and parse_augment("all") == AUGMENTATIONS
    assert parse_augment("noise, jitter") == ("jitter", "noise")
    with pytest.raises(EcgEdgeError, match="unknown augmentation"):
        parse_augment("rotate")
