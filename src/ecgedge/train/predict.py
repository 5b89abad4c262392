"""Forward passes over a set of beats (evaluation and validation)."""

import numpy as np
import torch

from ecgedge.train.batches import BeatTensors, iterate


@torch.no_grad()
def predict_logits(model: torch.nn.Module, data: BeatTensors, idx: np.ndarray, batch_size: int, device: torch.device, progress=None) -> np.ndarray:
    """Logits float32 ``[len(idx), n_classes]`` in the order of ``idx``."""
    was_training = model.training
    model.eval()
    out = []
    task = progress.add_task("predict", total=len(idx)) if progress else None
    for batch in iterate(idx, batch_size):
        x, rr, _ = data.get(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x, rr)
        out.append(logits.float().cpu().numpy())
        if progress:
            progress.advance(task, len(batch))
    if progress:
        progress.remove_task(task)
    model.train(was_training)
    n_classes = getattr(model, "num_classes", 5)
    return np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)
