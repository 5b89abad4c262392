"""Rebuild a (possibly channel-pruned) model from a checkpoint; no torch-pruning needed at load time.

A pruned checkpoint stores, next to the ordinary ``state_dict``, a *channel spec* in
``model_spec["channels"]``: for every Conv / BatchNorm / Linear module whose shape differs from
the freshly built architecture, its new sizes, e.g.
``{"backbone.layer1.0.conv1": {"in_channels": 32, "out_channels": 32, "groups": 1}}``.
:func:`model_from_spec` builds the architecture with :func:`ecgedge.models.architectures.create_model`,
shrinks those modules in place (same module classes, so TF-"SAME" padding convolutions and the
like keep their behaviour) and the strict ``load_state_dict`` that follows checks every shape.
Plain (unpruned) specs go through the same function unchanged.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ecgedge.errors import EcgEdgeError
from ecgedge.models.architectures import SpectrogramClassifier, create_model

__all__ = ["channel_spec", "apply_channel_spec", "model_from_spec", "model_from_checkpoint", "load_checkpoint_model", "is_pruned_spec"]

_CONV = (nn.Conv1d, nn.Conv2d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def _sizes(m: nn.Module) -> dict | None:
    if isinstance(m, _CONV):
        return {"in_channels": int(m.in_channels), "out_channels": int(m.out_channels), "groups": int(m.groups)}
    if isinstance(m, _BN):
        return {"num_features": int(m.num_features)}
    if isinstance(m, nn.Linear):
        return {"in_features": int(m.in_features), "out_features": int(m.out_features)}
    return None


def channel_spec(model: SpectrogramClassifier) -> dict[str, dict]:
    """Sizes of every Conv / BatchNorm / Linear of ``model`` that differ from a fresh model of its arch."""
    fresh = create_model(model.arch, "none", model.num_classes, model.rr_features)
    ref = {name: _sizes(m) for name, m in fresh.named_modules()}
    out = {}
    for name, m in model.named_modules():
        s = _sizes(m)
        if s is not None and s != ref.get(name):
            out[name] = s
    return out


def _resize_param(module: nn.Module, name: str, shape: tuple[int, ...]) -> None:
    old = getattr(module, name, None)
    if old is None:
        return
    if isinstance(old, nn.Parameter):
        setattr(module, name, nn.Parameter(torch.zeros(shape, dtype=old.dtype), requires_grad=old.requires_grad))
    else:
        module.register_buffer(name, torch.zeros(shape, dtype=old.dtype))


def apply_channel_spec(model: SpectrogramClassifier, spec: dict[str, dict]) -> SpectrogramClassifier:
    """Shrink (or grow) the listed modules of ``model`` in place; weights become zeros (load a state dict next)."""
    modules = dict(model.named_modules())
    for name, s in spec.items():
        m = modules.get(name)
        if m is None or _sizes(m) is None or set(s) != set(_sizes(m)):
            raise EcgEdgeError(f"the pruned channel spec does not fit {model.arch}: module {name!r} ({type(m).__name__ if m is not None else 'missing'}).")
        if isinstance(m, _CONV):
            m.in_channels, m.out_channels, m.groups = s["in_channels"], s["out_channels"], s["groups"]
            k = tuple(m.weight.shape[2:])
            _resize_param(m, "weight", (m.out_channels, m.in_channels // m.groups, *k))
            _resize_param(m, "bias", (m.out_channels,))
        elif isinstance(m, _BN):
            m.num_features = s["num_features"]
            for p in ("weight", "bias", "running_mean", "running_var"):
                _resize_param(m, p, (m.num_features,))
        else:
            m.in_features, m.out_features = s["in_features"], s["out_features"]
            _resize_param(m, "weight", (m.out_features, m.in_features))
            _resize_param(m, "bias", (m.out_features,))
    sync_feature_dim(model)
    return model


def sync_feature_dim(model: SpectrogramClassifier) -> None:
    """``model.feature_dim`` = what the classifier now takes from the backbone (after pruning)."""
    fc = model.head.fc
    model.feature_dim = int(fc.in_features - (model.head.rr[1].out_features if model.head.rr is not None else 0))


def is_pruned_spec(spec: dict) -> bool:
    return bool(spec.get("channels"))


def model_from_spec(spec: dict) -> SpectrogramClassifier:
    """An untrained model with the architecture (and pruned channel counts) a checkpoint's ``model_spec`` describes."""
    model = create_model(spec["arch"], "none", int(spec["num_classes"]), bool(spec["rr_features"]))
    if spec.get("channels"):
        apply_channel_spec(model, spec["channels"])
    return model


def model_from_checkpoint(ckpt: dict, origin: str = "checkpoint") -> SpectrogramClassifier:
    """``model_from_spec(ckpt["model_spec"])`` with ``ckpt["model"]`` loaded (strict), in eval mode."""
    model = model_from_spec(ckpt["model_spec"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise EcgEdgeError(f"{origin} does not fit {ckpt['model_spec'].get('arch')} ({str(exc).splitlines()[0][:200]}).") from None
    return model.eval()


def load_checkpoint_model(ckpt: dict, checkpoint: str | os.PathLike[str]) -> nn.Module:
    """The model to *evaluate* for a checkpoint file: ``model(x, rr)`` -> logits, eval mode.

    Plain and pruned checkpoints give their float model; a quantisation-aware one (``ecgedge
    compress --qat``) gives its int8-simulating converted graph (``qat_int8.pt2`` next to it),
    so ``ecgedge evaluate`` scores what the int8 deployment computes.
    """
    from pathlib import Path

    if "qat_state" in ckpt:
        from ecgedge.models.qat_program import QAT_PROGRAM, QATModel, load_qat_program

        program = Path(checkpoint).parent / QAT_PROGRAM
        if not program.is_file():
            raise EcgEdgeError(f"{program} not found: the quantisation-aware run is incomplete.")
        spec = ckpt["model_spec"]
        return QATModel(load_qat_program(program), int(spec["num_classes"]), bool(spec["rr_features"])).eval()
    return model_from_checkpoint(ckpt, str(checkpoint))
