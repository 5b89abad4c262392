"""Beat preprocessing shared by training and the gateway: numpy only, no torch.

A :class:`PreprocessConfig` travels with every dataset, checkpoint and exported model, so no
stage re-types a window length or an STFT size.
"""

from ecgedge.preprocess.config import PRESETS, PreprocessConfig, SpectrogramConfig, WindowConfig, get_preset
from ecgedge.preprocess.filtering import highpass
from ecgedge.preprocess.spectrogram import beats_to_images, stft_power_db

__all__ = [
    "PRESETS",
    "PreprocessConfig",
    "SpectrogramConfig",
    "WindowConfig",
    "beats_to_images",
    "get_preset",
    "highpass",
    "stft_power_db",
]
