"""Typed preprocessing configuration and the named presets."""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from types import MappingProxyType

from ecgedge.errors import EcgEdgeError


@dataclass(frozen=True)
class WindowConfig:
    """Samples kept around each R-peak annotation (at ``fs``): ``[r - before, r + after)``."""

    before: int
    after: int

    @property
    def length(self) -> int:
        return self.before + self.after


@dataclass(frozen=True)
class SpectrogramConfig:
    """Short-time Fourier transform of one beat window, rendered as a grey image."""

    win_length: int  # samples per STFT frame (periodic Hamming window)
    hop: int  # samples between frames
    n_fft: int  # FFT size (zero-padded frames)
    fmax_hz: float | None  # keep frequency bins <= fmax_hz; None keeps all up to fs/2
    dynamic_range_db: float  # image shows [max - range, max] dB of each beat
    image_size: tuple[int, int]  # (height = frequency, width = time)


@dataclass(frozen=True)
class PreprocessConfig:
    name: str
    fs: int
    lead: str
    highpass_hz: float  # baseline-wander removal before windowing (Butterworth)
    highpass_order: int
    window: WindowConfig
    spectrogram: SpectrogramConfig
    # True: the causal filter a gateway runs (ecgedge.preprocess.filtering.highpass); False: zero
    # phase over the whole record (runs made before version 3; their configs lack the field).
    highpass_causal: bool = False
    version: int = field(default=3)  # bump when the algorithm changes: it invalidates caches
    # 2: rhythm features (ecgedge.preprocess.rhythm) replace the 3 RR intervals; windows cached
    # 3: the presets filter causally, as the gateway does

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessConfig":
        spec = dict(d["spectrogram"])
        spec["image_size"] = tuple(spec["image_size"])
        return cls(
            **{k: v for k, v in d.items() if k not in ("window", "spectrogram")},
            window=WindowConfig(**d["window"]),
            spectrogram=SpectrogramConfig(**spec),
        )

    def fingerprint(self) -> str:
        """Stable hash of every parameter (used in cache keys and model metadata)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


PRESETS = MappingProxyType(
    {
        # The published code's recipe: MLII at 360 Hz, 0.25 Hz high-pass, 864-sample (2.4 s) window,
        # Hamming STFT with n_fft 512, dB scale, 224x224 image.
        "paper": PreprocessConfig(
            name="paper",
            fs=360,
            lead="MLII",
            highpass_hz=0.25,
            highpass_order=2,
            highpass_causal=True,
            window=WindowConfig(before=432, after=432),
            spectrogram=SpectrogramConfig(
                win_length=128, hop=4, n_fft=512, fmax_hz=None, dynamic_range_db=80.0, image_size=(224, 224)
            ),
        ),
        # Pi-sized: a 1.4 s window still holds the neighbouring R peaks (prematurity is what marks
        # S beats) and 0-59 Hz holds the QRS energy. n_fft 192 puts exactly 32 bins below 59 Hz, so
        # the frequency axis needs no resampling; 32x32 is 49x fewer pixels than 224x224, which is
        # what lets `prepare` pass 20,000 beats/s and a ResNet-18 train on two CPU cores.
        "edge": PreprocessConfig(
            name="edge",
            fs=360,
            lead="MLII",
            highpass_hz=0.25,
            highpass_order=2,
            highpass_causal=True,
            window=WindowConfig(before=256, after=256),
            spectrogram=SpectrogramConfig(
                win_length=64, hop=14, n_fft=192, fmax_hz=59.1, dynamic_range_db=60.0, image_size=(32, 32)
            ),
        ),
    }
)


def get_preset(name: str) -> PreprocessConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise EcgEdgeError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.") from None
