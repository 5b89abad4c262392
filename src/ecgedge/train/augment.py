"""Signal augmentation for training: perturb the beat's signal, then make its spectrogram again.

Inter-patient generalisation suffers from what differs between patients and recordings, not from
what differs between beats of one patient; each augmentation imitates one such difference, on
the high-passed signal before the STFT (so the image is what the gateway would compute):

* ``jitter``: the R peak a little off the window centre (up to ``WINDOW_MARGIN`` samples, 22 ms at
  360 Hz): the gateway's own QRS detector places R peaks, not the reference annotations.
* ``noise``: white noise, standard deviation uniform in [0, ``NOISE_MV``] mV (electrode and
  muscle noise).
* ``wander``: a slow sinusoid (0.05-0.5 Hz, up to ``WANDER_MV`` mV, random phase): residual
  baseline wander (breathing, movement) that a causal high-pass leaves.
* ``amplitude``: a gain in [0.7, 1.3] (electrode placement, body habitus). Each image maps its
  own peak power to white, so a gain alone changes no pixel (``tests/test_augment.py``); it is
  kept so the claim stays checked, and matters only combined with ``noise``.

Everything is drawn from the generator passed in, in a fixed order: same seed, same images.
"""

from dataclasses import dataclass

import numpy as np

from ecgedge.data.beats import WINDOW_MARGIN
from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess import PreprocessConfig, beats_to_images

AUGMENTATIONS = ("jitter", "noise", "wander", "amplitude")
NOISE_MV = 0.05
WANDER_MV = 0.3
GAIN_RANGE = (0.7, 1.3)


def parse_augment(spec: str) -> tuple[str, ...]:
    """``"none"``, ``"all"`` or a comma list of :data:`AUGMENTATIONS` -> their names, in that order."""
    spec = (spec or "none").strip().lower()
    if spec == "none":
        return ()
    if spec == "all":
        return AUGMENTATIONS
    names = {s.strip() for s in spec.split(",") if s.strip()}
    unknown = sorted(n for n in names if n not in AUGMENTATIONS)
    if unknown or not names:
        raise EcgEdgeError(f"unknown augmentation {', '.join(unknown) or spec!r}; choose none, all or a comma list of {', '.join(AUGMENTATIONS)}.")
    return tuple(n for n in AUGMENTATIONS if n in names)


@dataclass(frozen=True)
class Augmenter:
    config: PreprocessConfig
    names: tuple[str, ...]

    def windows(self, margin_windows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``[B, length + 2 margin]`` signal -> perturbed ``[B, length]`` windows (float32)."""
        n, total = margin_windows.shape
        length = self.config.window.length
        margin = (total - length) // 2
        if margin != WINDOW_MARGIN:
            raise ValueError(f"expected windows with a margin of {WINDOW_MARGIN} samples, got {margin}")
        shift = rng.integers(-margin, margin + 1, size=n) if "jitter" in self.names else np.zeros(n, dtype=np.int64)
        cols = (margin + shift)[:, None] + np.arange(length)
        w = np.take_along_axis(margin_windows.astype(np.float32), cols, axis=1)
        if "amplitude" in self.names:
            w *= rng.uniform(*GAIN_RANGE, size=(n, 1)).astype(np.float32)
        if "wander" in self.names:
            t = np.arange(length, dtype=np.float32) / self.config.fs
            freq = rng.uniform(0.05, 0.5, size=(n, 1))
            phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
            amp = rng.uniform(0, WANDER_MV, size=(n, 1))
            w += (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)
        if "noise" in self.names:
            sd = rng.uniform(0, NOISE_MV, size=(n, 1))
            w += (sd * rng.standard_normal((n, length))).astype(np.float32)
        return w

    def images(self, margin_windows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint8 ``[B, H, W]`` spectrograms of the perturbed windows."""
        return beats_to_images(self.windows(margin_windows, rng), self.config)
