"""A short fine-tuning loop for compressed models (pruned, or quantisation-aware PT2E graphs).

The same pieces as :func:`ecgedge.train.fit.fit` (its :func:`~ecgedge.train.fit.train_epoch`,
AdamW + one-cycle, selection on the validation beats) without
resuming or DDP: a few epochs on one process. Works on any module called as ``model(x, rr)``;
``before_eval`` / ``after_eval`` hooks let a QAT graph freeze its observers while it is scored,
so quantisation ranges are never fitted on validation beats.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ecgedge.train.batches import BeatTensors
from ecgedge.train.fit import train_epoch
from ecgedge.train.sampling import epoch_beats, epoch_size
from ecgedge.train.validate import epoch_row, evaluate_val


@dataclass
class FinetuneResult:
    history: list[dict]
    best_epoch: int
    best_score: float
    best_val: dict  # aami_metrics of the best epoch on the validation beats
    best_state: dict  # state_dict of the best epoch (a copy)


def finetune(
    model: torch.nn.Module,
    data: BeatTensors,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    epochs: int,
    lr: float,
    class_weights: np.ndarray,
    batch_size: int = 128,
    eval_batch_size: int = 512,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: torch.device = torch.device("cpu"),
    before_eval: Callable[[], None] | None = None,
    after_eval: Callable[[], None] | None = None,
    initial_val: dict | None = None,
    criterion: Callable | None = None,
    log: Callable[[str], None] | None = None,
    normal_per_epoch: int | None = None,
    reference: np.ndarray | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` in place for ``epochs``; returns the history and the best epoch's weights.

    ``initial_val``: the validation metrics of ``model`` as given; it then competes as "epoch 0",
    so fine-tuning that only makes validation worse leaves the starting weights selected.
    ``criterion``: the training loss (default: class-weighted cross-entropy), see
    :class:`ecgedge.compress.distill.DistillationLoss`. ``normal_per_epoch``: N beats drawn afresh
    per epoch, as in training (:func:`ecgedge.train.sampling.epoch_beats`).
    ``reference``: the source model's classes of the validation beats; the epoch kept is then the
    one that agrees with it most (``initial_val`` must hold ``agreement``), else the one with the
    best validation macro-F1.
    The model is left with the *last* epoch's weights; load ``result.best_state`` for the best.
    """
    select_on = "macro_f1" if reference is None else "agreement"
    torch.manual_seed(seed)
    weights = torch.as_tensor(class_weights, dtype=torch.float32, device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    labels = data.labels.numpy()
    steps = max(1, -(-epoch_size(labels, train_idx, normal_per_epoch) // batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps, pct_start=0.15)
    history: list[dict] = []
    best = FinetuneResult(history, 0, -1.0, {}, {})
    if initial_val is not None:
        best = FinetuneResult(history, 0, initial_val[select_on], initial_val, copy.deepcopy(model.state_dict()))
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(epoch_beats(labels, train_idx, normal_per_epoch, rng))
        # augmentation (when ``data`` has an augmenter) from a stream of its own, as in training
        total, seen = train_epoch(model, data, order, batch_size, optimizer, scheduler, weights, device, criterion=criterion, rng=np.random.default_rng([seed, epoch, 1]))
        train_seconds = time.perf_counter() - started
        if before_eval:
            before_eval()
        val, val_loss = evaluate_val(model, data, val_idx, weights, eval_batch_size, device, reference)
        if after_eval:
            after_eval()
        row = epoch_row(
            epoch, total / max(seen, 1), val, val_loss, scheduler.get_last_lr()[0],
            time.perf_counter() - started, seen / max(train_seconds, 1e-9),
        )  # fmt: skip
        history.append(row)
        if val[select_on] > best.best_score:
            best.best_epoch, best.best_score, best.best_val = epoch, val[select_on], val
            best.best_state = copy.deepcopy(model.state_dict())
        if log:
            log(
                f"epoch {epoch}/{epochs}: train loss {row['train_loss']:.4f}, val loss {val_loss:.4f}, "
                f"val macro-F1 {val['macro_f1']:.4f}"
                + ("" if reference is None else f", agreement with the source {val['agreement']:.2%}")
                + f", {row['train_beats_per_s']:.0f} beats/s"
            )
    return best
