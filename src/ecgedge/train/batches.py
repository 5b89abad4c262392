"""Beat batches as tensors, straight from the prepared arrays (no per-item Dataset overhead)."""

from collections.abc import Iterator

import numpy as np
import torch

from ecgedge.data.dataset import BeatDataset

# Datasets up to this size are copied into RAM once; larger ones (the paper preset, ~5 GB)
# stay memory-mapped and are read batch by batch.
_IN_MEMORY_BYTES = 2 << 30


class BeatTensors:
    """Images, RR features and labels of a :class:`BeatDataset`, indexable by beat arrays."""

    def __init__(self, ds: BeatDataset):
        self.in_memory = ds.images.nbytes <= _IN_MEMORY_BYTES
        self.images = torch.from_numpy(np.array(ds.images)) if self.in_memory else ds.images
        self.rr = torch.from_numpy(np.ascontiguousarray(ds.rr))
        self.labels = torch.from_numpy(ds.labels.astype(np.int64))

    def get(self, idx: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images float [B,1,H,W] in [0,1], rr [B,3], labels [B]) on ``device``."""
        if self.in_memory:
            raw = self.images[torch.from_numpy(idx)]
        else:
            order = np.argsort(idx)  # sorted reads from the memory map, then back to batch order
            raw = torch.empty((len(idx), *self.images.shape[1:]), dtype=torch.uint8)
            raw[torch.from_numpy(order)] = torch.from_numpy(np.asarray(self.images[idx[order]]))
        t = torch.from_numpy(idx)
        x = raw.to(device, non_blocking=True).unsqueeze(1).float().div_(255)
        return x, self.rr[t].to(device), self.labels[t].to(device)


def iterate(idx: np.ndarray, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Batches of ``idx`` (shuffled when ``rng`` is given; the last batch may be smaller)."""
    order = rng.permutation(idx) if rng is not None else idx
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
