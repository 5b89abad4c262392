"""The model an export starts from: a run directory's best checkpoint, as an export-ready graph.

The exported graph takes what the gateway has after preprocessing: ``image`` float32
``[B, 1, H, W]`` = uint8 spectrogram / 255 (and ``rr`` float32 ``[B, N_RHYTHM]`` rhythm features when the run used
RR features) and returns logits ``[B, num_classes]``. The model's input normalisation
``(x - mean) / std`` is written as ``x * (1/std) + (-mean/std)`` (a Mul and an Add, identical up to
float rounding, ~1e-7): quantisers annotate Mul/Add but not Sub/Div, so in the int8 TFLite model the
very first operation is already integer and the int8 input is the image itself (scale 1/255,
zero point -128, i.e. ``q = u8 - 128``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ecgedge import run_dirs
from ecgedge.atomic import sha256_file
from ecgedge.errors import EcgEdgeError
from ecgedge.models.architectures import SpectrogramClassifier
from ecgedge.models.checkpoint import model_from_spec
from ecgedge.models.graph import ExportGraph
from ecgedge.preprocess.rhythm import REGULAR_RHYTHM


@dataclass
class ExportSource:
    """Everything an exporter needs from a run directory."""

    run_dir: Path
    checkpoint: Path
    checkpoint_sha256: str
    epoch: int | None
    meta: dict  # config.json
    model: SpectrogramClassifier
    arch: str
    num_classes: int
    rr_features: bool
    preprocess: dict
    image_size: tuple[int, int]
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.run_dir.name

    def graph(self) -> nn.Module:
        return ExportGraph(self.model).eval()

    def sample_args(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        h, w = self.image_size
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(batch, 1, h, w, generator=gen)
        if self.rr_features:
            return x, torch.tensor(REGULAR_RHYTHM).repeat(batch, 1)
        return (x,)

    def input_names(self) -> list[str]:
        return ["image", "rr"] if self.rr_features else ["image"]


def load_source(run_dir: Path) -> ExportSource:
    """Load ``run_dir/checkpoints/best.pt`` into an eval-mode model; EcgEdgeError if anything is missing."""
    run_dir = Path(run_dir).expanduser().resolve()
    if not run_dir.is_dir():
        raise EcgEdgeError(f"{run_dir} is not a run directory (made by `ecgedge train`).")
    meta = run_dirs.read_config(run_dir)
    best = run_dirs.best_checkpoint(run_dir, must_exist=True)
    try:
        ckpt = torch.load(best, map_location="cpu", weights_only=False)
        spec = ckpt["model_spec"]
        state = ckpt["model"]
    except Exception as exc:
        raise EcgEdgeError(f"{best} is not a loadable checkpoint ({str(exc).splitlines()[0][:200]}); train again or restore it.") from None
    model = model_from_spec(spec)  # pruned checkpoints carry their channel counts in the spec
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise EcgEdgeError(f"{best} does not fit {spec['arch']} ({str(exc).splitlines()[0][:200]}).") from None
    model.eval()
    preprocess = ckpt.get("preprocess") or meta.get("preprocess")
    if not preprocess:
        raise EcgEdgeError(f"{best} and {run_dir / run_dirs.CONFIG} hold no preprocessing config; cannot export.")
    size = preprocess["spectrogram"]["image_size"]
    return ExportSource(
        run_dir=run_dir,
        checkpoint=best,
        checkpoint_sha256=sha256_file(best),
        epoch=ckpt.get("epoch"),
        meta=meta,
        model=model,
        arch=str(spec["arch"]),
        num_classes=int(spec["num_classes"]),
        rr_features=bool(spec["rr_features"]),
        preprocess=preprocess,
        image_size=(int(size[0]), int(size[1])),
        extra={"val_metrics": _small_val_metrics(ckpt.get("val_metrics")), "qat": "qat_state" in ckpt},
    )


def _small_val_metrics(m) -> dict | None:
    if not isinstance(m, dict):
        return None
    return {k: m[k] for k in ("accuracy", "macro_f1", "jk") if isinstance(m.get(k), (int, float))}


@torch.no_grad()
def torch_logits(model: nn.Module, images_u8, rr=None, batch_size: int = 256):
    """Reference logits (numpy float32) of the float model on uint8 images ``[B, H, W]``."""
    import numpy as np

    model.eval()
    out = []
    for s in range(0, len(images_u8), batch_size):
        x = torch.from_numpy(np.asarray(images_u8[s : s + batch_size], dtype=np.float32) / 255.0)[:, None]
        r = torch.from_numpy(np.asarray(rr[s : s + batch_size], dtype=np.float32)) if rr is not None else None
        out.append(model(x, r).float().numpy())
    return np.concatenate(out)
