"""Beat batches as tensors, straight from the prepared arrays (no per-item Dataset overhead)."""

from collections.abc import Iterator

import numpy as np
import torch

from ecgedge.data.dataset import BeatDataset
from ecgedge.errors import EcgEdgeError
from ecgedge.train.augment import Augmenter

# Datasets up to this size are copied into RAM once; larger ones (the paper preset, ~5 GB)
# stay memory-mapped and are read batch by batch.
_IN_MEMORY_BYTES = 2 << 30


def _rows(array, idx: np.ndarray) -> np.ndarray:
    """``array[idx]`` in batch order, reading a memory map in sorted order."""
    if isinstance(array, np.memmap) or not isinstance(array, np.ndarray):
        order = np.argsort(idx)
        out = np.empty((len(idx), *array.shape[1:]), dtype=array.dtype)
        out[order] = np.asarray(array[idx[order]])
        return out
    return array[idx]


class BeatTensors:
    """Images, rhythm features and labels of a :class:`BeatDataset`, indexable by beat arrays.

    With an :class:`Augmenter`, training batches are made from the cached signal windows instead
    of the cached images (perturbed, then turned into spectrograms by the same function).
    """

    def __init__(self, ds: BeatDataset, augmenter: Augmenter | None = None):
        self.in_memory = ds.images.nbytes <= _IN_MEMORY_BYTES
        self.images = torch.from_numpy(np.array(ds.images)) if self.in_memory else ds.images
        self.rr = torch.from_numpy(np.ascontiguousarray(ds.rr))
        self.labels = torch.from_numpy(ds.labels.astype(np.int64))
        self.augmenter = augmenter if augmenter is not None and augmenter.names else None
        self.windows = None
        if self.augmenter is not None:
            if ds.windows is None:
                raise EcgEdgeError(f"the prepared dataset {ds.path} holds no signal windows; prepare it again to augment.")
            self.windows = np.array(ds.windows) if ds.windows.nbytes <= _IN_MEMORY_BYTES else ds.windows

    def get(self, idx: np.ndarray, device: torch.device, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images float [B,1,H,W] in [0,1], rr [B,N_RHYTHM], labels [B]) on ``device``.

        ``rng`` given (training) and an augmenter set: augmented images drawn from ``rng``.
        """
        if rng is not None and self.augmenter is not None:
            raw = torch.from_numpy(self.augmenter.images(_rows(self.windows, idx), rng))
        elif self.in_memory:
            raw = self.images[torch.from_numpy(idx)]
        else:
            raw = torch.from_numpy(_rows(self.images, idx))
        t = torch.from_numpy(idx)
        x = raw.to(device, non_blocking=True).unsqueeze(1).float().div_(255)
        return x, self.rr[t].to(device), self.labels[t].to(device)


def iterate(idx: np.ndarray, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Batches of ``idx`` (shuffled when ``rng`` is given; the last batch may be smaller)."""
    order = rng.permutation(idx) if rng is not None else idx
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
