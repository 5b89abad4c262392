"""Spectrogram beat classifiers: a registry of ImageNet backbones with a one-channel stem.

Input
    ``x``: float tensor ``[B, 1, H, W]``, values in ``[0, 1]`` (the uint8 spectrogram / 255;
    a uint8 tensor is also accepted and divided by 255). Works at 32x32 (``edge``) and 224x224
    (``paper``); any size that is a multiple of 32 behaves identically to 224 in padding terms.
    ``rr`` (only used with ``rr_features=True``): float ``[B, N_RHYTHM]``, the rhythm features
    of :mod:`ecgedge.preprocess.rhythm` (RR intervals in seconds and their ratios).

Why the stem is folded to one channel
    The published pipeline fed a single-channel spectrogram to an ImageNet network either by
    replacing conv1 with a fresh 1-channel convolution (throwing away the pretrained first
    layer, the one whose edge/blob detectors transfer best) or by repeating the grey image
    into 3 identical channels (3x the first convolution's multiply-accumulates, and 3x its
    input memory traffic, for no information). Neither is needed: convolution is linear, so
    for a grey image ``g`` repeated in the 3 channels and normalised per channel
    (``(g - m_c) / s_c``), the pretrained response is

        sum_c W_c * (g - m_c) / s_c  =  W1 * (g - mu) / sigma  +  delta

    with ``W1 = sigma * sum_c W_c / s_c`` (a 1-channel kernel) and, on every pixel whose
    receptive field lies inside the image, a per-output-channel constant
    ``delta_o = sum_c (mu - m_c) / s_c * sum(W_c,o)``. ``mu``/``sigma`` are the scalar grey
    statistics this model normalises its input with (the channel means of the pretraining
    statistics). The stem convolution has no bias and is followed by BatchNorm, so ``delta``
    is absorbed exactly into that BatchNorm's ``running_mean`` (``running_mean -= delta``); in
    training mode BatchNorm subtracts the batch mean, which cancels a per-channel constant
    anyway. The result: a grey image through the folded 1-channel stem gives the same
    first-block response as the 3 identical channels the network was trained on, except on
    the zero-padded border (the original pads each channel with its own mean, the folded stem
    pads with ``mu``). Checked in ``tests/test_models.py``.

Pretraining statistics per architecture
    * ``resnet18`` (torchvision): ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225);
      grey normalisation mu = 0.449, sigma = 0.226.
    * ``efficientnet_lite0`` (``efficientnet-lite-pytorch``; weights converted from the official
      TensorFlow Lite0 checkpoint): the Lite models were trained with inception-style
      statistics, mean 127/255 and std 128/255 in every channel (better post-quantisation
      ranges), so mu = 127/255, sigma = 128/255, ``W1 = sum_c W_c`` and ``delta = 0``. Using
      the torchvision statistics there would silently mis-scale the pretrained stem.

Head
    The backbone's classifier is replaced by ``num_classes`` outputs. With ``rr_features`` the
    rhythm features are centred and scaled by fixed constants inside the model (clamped to
    +-6), passed through a small MLP and concatenated to the pooled image features before the
    final linear layer (late fusion). Doing it in the model keeps the normalisation inside the
    exported graph. The ``rhythm_mlp`` architecture has no image backbone at all: the same head
    on the rhythm features alone (the ablation baseline).

Weights: ``"none"``, ``"imagenet"`` or a state-dict path; see :mod:`ecgedge.models.weights`.
The provenance is attached as ``model.weights_info`` and reported by ``model.describe()``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess.rhythm import MAX_RATIO, N_RHYTHM, RHYTHM_CENTER, RHYTHM_SCALE
from ecgedge.models.weights import (
    WeightsInfo,
    fetch_torchvision_imagenet,
    packaged_lite0_imagenet,
    read_state_dict_file,
)

__all__ = [
    "ARCHS",
    "Arch",
    "SpectrogramClassifier",
    "ClassifierHead",
    "RRFeatures",
    "register_arch",
    "get_arch",
    "create_model",
    "fold_rgb_stem",
    "load_weights_into",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (127.0 / 255.0,) * 3
INCEPTION_STD = (128.0 / 255.0,) * 3


# --------------------------------------------------------------------------- registry


class Arch:
    """One backbone family: how to build it with a 1-channel stem and where its weights live.

    Subclass, set the class attributes, implement :meth:`build_backbone` (and
    :meth:`imagenet_state_dict` if it has ImageNet weights), decorate with :func:`register_arch`.
    """

    name: str = ""
    stem_conv: ClassVar[str]  # backbone key of the first convolution, e.g. "conv1"
    stem_bn: ClassVar[str]  # backbone key of the BatchNorm right after it
    native_head: ClassVar[tuple[str, ...]]  # key prefixes of the original classifier (dropped)
    rgb_mean: ClassVar[tuple[float, float, float]]
    rgb_std: ClassVar[tuple[float, float, float]]
    dropout: ClassVar[float] = 0.0

    @property
    def grey_mean(self) -> float:
        return sum(self.rgb_mean) / 3.0

    @property
    def grey_std(self) -> float:
        return sum(self.rgb_std) / 3.0

    @property
    def official_imagenet_file(self) -> str | None:
        """File name (with its SHA-256 prefix) of the official ImageNet weights, if any."""
        return None

    def build_backbone(self) -> tuple[nn.Module, int]:
        """A randomly initialised backbone taking ``[B, 1, H, W]`` and returning pooled ``[B, F]``; and F."""
        raise NotImplementedError

    def imagenet_state_dict(self) -> tuple[dict[str, torch.Tensor], WeightsInfo]:
        raise EcgEdgeError(f"no ImageNet weights are known for {self.name}; use --weights none or a PATH")


ARCHS: dict[str, Arch] = {}


def register_arch(name: str) -> Callable[[type[Arch]], type[Arch]]:
    """Class decorator: register an :class:`Arch` subclass under ``name`` in :data:`ARCHS`."""

    def deco(cls: type[Arch]) -> type[Arch]:
        if name in ARCHS:
            raise ValueError(f"architecture {name!r} is already registered")
        inst = cls()
        inst.name = name
        ARCHS[name] = inst
        return cls

    return deco


def get_arch(name: str) -> Arch:
    key = str(name).strip().lower().replace("-", "_")
    try:
        return ARCHS[key]
    except KeyError:
        raise EcgEdgeError(f"unknown architecture {name!r}; choose one of: {', '.join(sorted(ARCHS))}") from None


@register_arch("resnet18")
class ResNet18(Arch):
    stem_conv = "conv1"
    stem_bn = "bn1"
    native_head = ("fc.",)
    rgb_mean = IMAGENET_MEAN
    rgb_std = IMAGENET_STD
    dropout = 0.0

    @staticmethod
    def _weights() -> Any:
        from torchvision.models import ResNet18_Weights

        return ResNet18_Weights.IMAGENET1K_V1

    @property
    def official_imagenet_file(self) -> str:
        return os.path.basename(self._weights().url)

    def build_backbone(self) -> tuple[nn.Module, int]:
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision
        dim = net.fc.in_features
        net.fc = nn.Identity()
        return net, dim

    def imagenet_state_dict(self) -> tuple[dict[str, torch.Tensor], WeightsInfo]:
        return fetch_torchvision_imagenet(self._weights(), self.name)


class _NoImage(nn.Module):
    """A backbone that ignores the image: ``[B, 0]`` features (for the rhythm-only model)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros((x.shape[0], 0))


@register_arch("rhythm_mlp")
class RhythmOnly(Arch):
    """No image at all: rhythm features -> MLP -> classes. The ablation's rhythm-alone model."""

    stem_conv = ""
    stem_bn = ""
    native_head = ()
    rgb_mean = IMAGENET_MEAN
    rgb_std = IMAGENET_STD
    needs_rhythm = True

    def build_backbone(self) -> tuple[nn.Module, int]:
        return _NoImage(), 0


@register_arch("efficientnet_lite0")
class EfficientNetLite0(Arch):
    stem_conv = "_conv_stem"
    stem_bn = "_bn0"
    native_head = ("_fc.",)
    rgb_mean = INCEPTION_MEAN
    rgb_std = INCEPTION_STD
    dropout = 0.2  # the Lite0 classifier dropout

    @property
    def official_imagenet_file(self) -> str:
        return "efficientnet-lite0-57934424.pth"

    def build_backbone(self) -> tuple[nn.Module, int]:
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise EcgEdgeError(
                "efficientnet_lite0 needs the package efficientnet-lite-pytorch: pip install 'ecgedge[train]'"
            ) from None
        # image_size=None -> TensorFlow-"SAME" padding computed from the actual input size, so
        # the same module is right at 32x32 and 224x224.
        net = EfficientNet.from_name("efficientnet-lite0", in_channels=1, image_size=None)
        dim = net._fc.in_features
        net._fc = nn.Identity()
        net._dropout = nn.Identity()  # the head owns the dropout
        return net, dim

    def imagenet_state_dict(self) -> tuple[dict[str, torch.Tensor], WeightsInfo]:
        return packaged_lite0_imagenet()


# --------------------------------------------------------------------------- modules


class RRFeatures(nn.Module):
    """Rhythm features ``[B, N_RHYTHM]`` (:mod:`ecgedge.preprocess.rhythm`) -> unit-scale, bounded.

    A fixed centre and scale per feature, then a clamp: the exported graph takes the raw
    features, so the gateway computes only ``rhythm_features`` and int8 input ranges stay small.
    """

    def __init__(self, clamp: float = 6.0):
        super().__init__()
        self.clamp = clamp
        self.register_buffer("center", torch.tensor(RHYTHM_CENTER, dtype=torch.float32), persistent=False)
        self.register_buffer("scale", torch.tensor(RHYTHM_SCALE, dtype=torch.float32), persistent=False)

    def forward(self, rr: torch.Tensor) -> torch.Tensor:
        rr = torch.nan_to_num(rr.float(), nan=1.0, posinf=MAX_RATIO, neginf=0.0)
        return ((rr - self.center) / self.scale).clamp(-self.clamp, self.clamp)


class ClassifierHead(nn.Module):
    """Pooled features (+ optional RR MLP) -> dropout -> linear ``num_classes``."""

    def __init__(self, in_features: int, num_classes: int, rr_features: bool, dropout: float, rr_hidden: int = 32):
        super().__init__()
        self.rr = nn.Sequential(RRFeatures(), nn.Linear(N_RHYTHM, rr_hidden), nn.ReLU()) if rr_features else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features + (rr_hidden if rr_features else 0), num_classes)

    def forward(self, feats: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        if self.rr is not None:
            if rr is None:
                raise ValueError(f"this model was built with rr_features=True: call model(x, rr) with rr [B, {N_RHYTHM}]")
            feats = torch.cat([feats, self.rr(rr)], dim=1)
        return self.fc(self.dropout(feats))


class SpectrogramClassifier(nn.Module):
    """1-channel spectrogram -> logits ``[B, num_classes]``. See the module docstring."""

    def __init__(
        self,
        arch: str,
        backbone: nn.Module,
        feature_dim: int,
        num_classes: int = 5,
        rr_features: bool = False,
        input_mean: float = sum(IMAGENET_MEAN) / 3,
        input_std: float = sum(IMAGENET_STD) / 3,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.arch = arch
        self.num_classes = int(num_classes)
        self.rr_features = bool(rr_features)
        self.feature_dim = int(feature_dim)
        # Not persistent: fixed by the architecture, not learned, so not part of checkpoints.
        self.register_buffer("input_mean", torch.tensor(float(input_mean)), persistent=False)
        self.register_buffer("input_std", torch.tensor(float(input_std)), persistent=False)
        self.backbone = backbone
        self.head = ClassifierHead(feature_dim, num_classes, rr_features, dropout)
        self.weights_info = WeightsInfo("none", note="random initialisation (from scratch)")

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        return (x - self.input_mean) / self.input_std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``[B, feature_dim]``."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected x of shape [B, 1, H, W], got {tuple(x.shape)}")
        return self.backbone(self.normalise(x))

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        """Logits. ``rr`` is required with ``rr_features=True`` and ignored otherwise."""
        return self.head(self.features(x), rr)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary for run metadata."""
        return {
            "arch": self.arch,
            "num_classes": self.num_classes,
            "rr_features": self.rr_features,
            "params": sum(p.numel() for p in self.parameters()),
            "trainable_params": sum(p.numel() for p in self.parameters() if p.requires_grad),
            "input": {
                "channels": 1,
                "range": [0.0, 1.0],
                "normalise_mean": float(self.input_mean),
                "normalise_std": float(self.input_std),
            },
            "weights": self.weights_info.as_dict(),
        }


# --------------------------------------------------------------------------- weights


def fold_rgb_stem(
    weight: torch.Tensor,
    rgb_mean: tuple[float, float, float],
    rgb_std: tuple[float, float, float],
    grey_mean: float,
    grey_std: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold a 3-channel stem kernel ``[O, 3, kh, kw]`` to 1 channel.

    Returns ``(w1, delta)``: ``w1 = grey_std * sum_c W_c / s_c`` of shape ``[O, 1, kh, kw]`` and
    ``delta[o] = sum_c (grey_mean - m_c) / s_c * sum(W[o, c])`` such that, on interior pixels,
    ``conv(W, (g - m_c) / s_c) == conv(w1, (g - grey_mean) / grey_std) + delta``.
    """
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"expected a [O, 3, kh, kw] kernel, got {tuple(weight.shape)}")
    w = weight.double()
    m = torch.tensor(rgb_mean, dtype=torch.float64).view(1, 3, 1, 1)
    s = torch.tensor(rgb_std, dtype=torch.float64).view(1, 3, 1, 1)
    w_over_s = w / s
    w1 = grey_std * w_over_s.sum(dim=1, keepdim=True)
    delta = ((grey_mean - m) * w_over_s).sum(dim=(1, 2, 3))
    return w1.to(weight.dtype), delta.to(weight.dtype)


def _names(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def load_weights_into(model: SpectrogramClassifier, state: dict[str, torch.Tensor], origin: str) -> list[str]:
    """Load ``state`` into ``model``; returns notes. ``origin`` (the file) names the source in errors.

    Accepts this module's own state dicts (``backbone.*``/``head.*``) and the backbone's native
    ones (torchvision / efficientnet-lite-pytorch keys, 3-channel stem folded to 1 channel,
    original classifier dropped). Head shape mismatches are fine (the head stays freshly
    initialised); anything else that does not fit raises :class:`EcgEdgeError`.
    """
    spec = get_arch(model.arch)
    notes: list[str] = []
    if any(k.startswith("backbone.") for k in state):
        stray = sorted(k for k in state if not k.startswith(("backbone.", "head.")))
        if stray:
            raise EcgEdgeError(f"weights file {origin} does not fit {spec.name}: unexpected keys {_names(stray)}")
        bb = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        head = {k[len("head."):]: v for k, v in state.items() if k.startswith("head.")}
    else:
        bb = {k: v for k, v in state.items() if not k.startswith(spec.native_head)}
        head = {}
        notes.append(f"backbone weights in the native layout; original classifier ({', '.join(spec.native_head)}) dropped")

    stem_key = f"{spec.stem_conv}.weight"
    stem = bb.get(stem_key)
    if stem is not None and stem.ndim == 4 and stem.shape[1] == 3:
        w1, delta = fold_rgb_stem(stem, spec.rgb_mean, spec.rgb_std, spec.grey_mean, spec.grey_std)
        bb[stem_key] = w1
        rm_key = f"{spec.stem_bn}.running_mean"
        if rm_key not in bb:
            raise EcgEdgeError(f"weights file {origin} has a 3-channel stem but no {rm_key} to fold it into")
        bb[rm_key] = bb[rm_key] - delta
        notes.append(
            f"3-channel stem {spec.stem_conv} folded to 1 channel (std folded in, offset absorbed in "
            f"{spec.stem_bn}.running_mean; input normalised with mean {spec.grey_mean:.4f}, std {spec.grey_std:.4f})"
        )

    target = model.backbone.state_dict()
    for k in target:  # old checkpoints predate BatchNorm's counter
        if k.endswith("num_batches_tracked") and k not in bb:
            bb[k] = target[k].clone()
    missing = sorted(set(target) - set(bb))
    unexpected = sorted(set(bb) - set(target))
    mismatched = sorted(
        f"{k} {tuple(bb[k].shape)} vs {tuple(target[k].shape)}"
        for k in set(target) & set(bb)
        if bb[k].shape != target[k].shape
    )
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected {_names(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatch {_names(mismatched)}")
        raise EcgEdgeError(f"weights file {origin} does not fit {spec.name}: {'; '.join(parts)}")
    model.backbone.load_state_dict(bb, strict=True)

    if head:
        tgt = model.head.state_dict()
        if set(head) == set(tgt) and all(head[k].shape == tgt[k].shape for k in tgt):
            model.head.load_state_dict(head, strict=True)
            notes.append("classifier head loaded")
        else:
            notes.append("classifier head not loaded (different classes or RR inputs): freshly initialised")
    else:
        notes.append(f"classifier head freshly initialised ({model.num_classes} classes)")
    return notes


def create_model(
    arch: str,
    weights: str | os.PathLike[str] | None = "none",
    num_classes: int = 5,
    rr_features: bool = False,
) -> SpectrogramClassifier:
    """Build a :class:`SpectrogramClassifier`.

    ``weights``: ``"none"`` (random init), ``"imagenet"`` (see :mod:`ecgedge.models.weights`), or
    the path of a state dict (ours, or the backbone's native one). Provenance: ``model.weights_info``.
    """
    spec = get_arch(arch)
    if int(num_classes) < 1:
        raise EcgEdgeError(f"num_classes must be >= 1, got {num_classes}")
    if getattr(spec, "needs_rhythm", False) and not rr_features:
        raise EcgEdgeError(f"{spec.name} classifies from rhythm features alone: train it with --rr")
    backbone, dim = spec.build_backbone()
    model = SpectrogramClassifier(
        arch=spec.name,
        backbone=backbone,
        feature_dim=dim,
        num_classes=num_classes,
        rr_features=rr_features,
        input_mean=spec.grey_mean,
        input_std=spec.grey_std,
        dropout=spec.dropout,
    )
    w = "none" if weights is None else os.fspath(weights)
    if w.strip().lower() == "none":
        info = WeightsInfo("none", note="random initialisation (from scratch)")
    else:
        if w.strip().lower() == "imagenet":
            state, info = spec.imagenet_state_dict()
        else:
            state, info = read_state_dict_file(w, spec.official_imagenet_file)
        notes = load_weights_into(model, state, info.path or w)
        info.note = "; ".join([info.note, *notes]) if info.note else "; ".join(notes)
    model.weights_info = info
    return model
