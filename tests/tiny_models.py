"""A tiny ResNet (stem + two torchvision BasicBlocks) registered as an architecture for fast tests.

It has the residual adds that pruning and int8 export must get right, at a fraction of ResNet-18's cost.
"""

from contextlib import contextmanager

import torch
from torch import nn

from ecgedge.models.architectures import ARCHS, IMAGENET_MEAN, IMAGENET_STD, Arch, register_arch


class TinyBackbone(nn.Module):
    def __init__(self, width: int):
        from torchvision.models.resnet import BasicBlock

        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = BasicBlock(width, width)
        down = nn.Sequential(nn.Conv2d(width, 2 * width, 1, 2, bias=False), nn.BatchNorm2d(2 * width))
        self.layer2 = BasicBlock(width, 2 * width, stride=2, downsample=down)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return torch.flatten(self.pool(x), 1)


@contextmanager
def registered_tiny_arch(name: str, width: int):
    """Register the tiny ResNet under ``name`` while the block runs (other tests enumerate ARCHS)."""

    class TinyResNet(Arch):
        stem_conv = "conv1"
        stem_bn = "bn1"
        native_head = ("fc.",)
        rgb_mean = IMAGENET_MEAN
        rgb_std = IMAGENET_STD

        def build_backbone(self):
            return TinyBackbone(width), 2 * width

    if name not in ARCHS:
        register_arch(name)(TinyResNet)
    try:
        yield name
    finally:
        ARCHS.pop(name, None)


def write_run_dir(rd, mitdb_dir, config, ds, split, model) -> None:
    """A run directory as `ecgedge train` leaves it (config.json + checkpoints/best.pt) for ``model``."""
    from ecgedge import run_dirs

    (rd / run_dirs.CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    run_dirs.write_json(
        rd / run_dirs.CONFIG,
        {
            "name": rd.name,
            "train": config.to_dict(),
            "preprocess": ds.config.to_dict(),
            "data_dir": str(mitdb_dir),
            "dataset": {"path": str(ds.path), "n_beats": len(ds), "sources": ds.meta["sources"]},
            "split": split.to_dict(),
        },
    )
    torch.save(
        {
            "model": model.state_dict(),
            "model_spec": {"arch": config.arch, "num_classes": 5, "rr_features": model.rr_features},
            "train_config": config.to_dict(),
            "preprocess": ds.config.to_dict(),
            "epoch": 1,
        },
        rd / run_dirs.CHECKPOINTS / run_dirs.BEST,
    )


def train_briefly(model, ds, pool, steps: int = 30, rr_features: bool = True) -> None:
    """A few AdamW steps on batches of ``pool`` drawn with N beats 8x rarer (so V beats are seen)."""
    import numpy as np
    import torch.nn.functional as F

    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    labels = ds.labels.astype(np.int64)
    weights = np.where(labels[pool] == 0, 1.0, 8.0)
    model.train()
    for _ in range(steps):
        b = np.sort(rng.choice(pool, 64, replace=False, p=weights / weights.sum()))
        x = torch.from_numpy(np.asarray(ds.images[b], np.float32) / 255.0)[:, None]
        rr = torch.from_numpy(np.asarray(ds.rr[b], np.float32))
        loss = F.cross_entropy(model(x, rr) if rr_features else model(x), torch.from_numpy(labels[b]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
