"""Per-epoch validation: one scoring function and one history row for training and fine-tuning."""

import numpy as np
import torch
import torch.nn.functional as F

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.evaluate import aami_metrics
from ecgedge.train.batches import BeatTensors
from ecgedge.train.predict import predict_logits


def evaluate_val(model, data: BeatTensors, val_idx: np.ndarray, weights: torch.Tensor, batch_size: int, device: torch.device, reference: np.ndarray | None = None) -> tuple[dict, float]:
    """(AAMI metrics, weighted cross-entropy) of ``model`` on the validation beats.

    ``reference``: another model's classes for the same beats; the metrics then hold
    ``agreement``, the share of beats classified alike (how faithful a compressed copy is).
    """
    logits = predict_logits(model, data, val_idx, batch_size, device)
    y = data.labels[torch.from_numpy(val_idx)].numpy()
    metrics = aami_metrics(y, logits.argmax(1))
    if reference is not None:
        metrics["agreement"] = float(np.mean(logits.argmax(1) == reference))
    loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y), weight=weights.cpu()))
    return metrics, loss


def epoch_row(epoch: int, train_loss: float, val: dict, val_loss: float, lr: float, seconds: float, beats_per_s: float) -> dict:
    """One entry of ``history.json``."""
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": val_loss,
        "val_macro_f1": val["macro_f1"],
        "val_jk": val["jk"],
        **{f"val_f1_{c}": val["per_class"][c]["f1"] for c in AAMI_CLASSES},
        **({"val_agreement": val["agreement"]} if "agreement" in val else {}),
        "lr": lr,
        "seconds": round(seconds, 2),
        "train_beats_per_s": round(beats_per_s, 1),
    }
