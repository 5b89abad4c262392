"""The training loop: seeded, resumable, CPU or CUDA (mixed precision), single process or DDP.

Model selection and early stopping look only at the validation beats of the split (for the
inter-patient protocol: whole DS1 patients), never at the test set.
"""

import contextlib
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.data.dataset import BeatDataset
from ecgedge.data.splits import Split
from ecgedge import run_dirs as runs
from ecgedge.train.batches import BeatTensors, iterate
from ecgedge.train.config import TrainConfig
from ecgedge.models.architectures import create_model
from ecgedge.train.validate import epoch_row, evaluate_val
from ecgedge.train.augment import Augmenter, parse_augment
from ecgedge.train.sampling import epoch_beats, epoch_size, training_class_weights


def train_epoch(net, data: BeatTensors, order: np.ndarray, batch_size: int, optimizer, scheduler, weights, device, amp: dict | None = None, on_batch=None, criterion=None, rng: np.random.Generator | None = None, after_step=None) -> tuple[float, int]:
    """One pass over ``order`` in batches (class-weighted cross-entropy, a scheduler step per batch).

    ``amp``: ``torch.autocast`` arguments, or None for none. ``on_batch(n, loss_sum, seen)`` after
    each batch. ``criterion(logits, y, batch, inputs)`` (``batch``: the beat indices, ``inputs``: the
    ``(images, rhythm)`` the net saw) replaces the cross-entropy (e.g.
    :class:`ecgedge.compress.distill.DistillationLoss`). ``rng``: draws the augmentations of
    ``data`` (none without it). ``after_step()`` after each optimizer step (weight averaging).
    Returns (sum of per-beat losses, beats seen).
    """
    net.train()
    total, seen = 0.0, 0
    for batch in iterate(order, batch_size):
        x, rr, y = data.get(batch, device, rng)
        with torch.autocast(**amp) if amp else contextlib.nullcontext():
            logits = net(x, rr).float()
            loss = criterion(logits, y, batch, (x, rr)) if criterion else F.cross_entropy(logits, y, weight=weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if after_step is not None:
            after_step()
        total += float(loss.detach()) * len(batch)
        seen += len(batch)
        if on_batch is not None:
            on_batch(len(batch), total, seen)
    return total, seen


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    best_epoch: int
    best_val_macro_f1: float
    history: list[dict]


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def init_distributed(device: torch.device) -> Dist:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=dist.get_rank(), world=dist.get_world_size())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def weight_average(model: torch.nn.Module, half_life_epochs: float, steps_per_epoch: int):
    """An exponential moving average of ``model``'s weights and BatchNorm statistics (None when off).

    Why: the validation score of the raw weights jumps by up to 0.2 macro-F1 from one epoch to the
    next (few S and F beats in a handful of validation patients), so "best epoch" picked noise and
    the seeds spread widely; the average is what gets validated, saved and exported. The half-life
    is in epochs so the same setting means the same smoothing whatever the epoch size.
    """
    if not half_life_epochs:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    decay = 0.5 ** (1.0 / (half_life_epochs * steps_per_epoch))
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _checkpoint(model, optimizer, scheduler, state: dict, extra: dict, averaged=None) -> dict:
    return {
        "model": model.state_dict(),
        "weight_average": None if averaged is None else averaged.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        **state,
        **extra,
    }


def _save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)  # a crash mid-save keeps the previous checkpoint


def fit(
    config: TrainConfig,
    dataset: BeatDataset,
    split: Split,
    train_idx: np.ndarray,
    run_dir: Path,
    resume: bool = False,
    progress=None,
    run_meta: dict | None = None,
) -> FitResult:
    """Train ``config.arch`` on ``train_idx``, select on ``split.val``; checkpoints in ``run_dir``."""
    device = resolve_device(config.device)
    dist_info = init_distributed(device)
    if device.type == "cuda" and dist_info.world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    seed_everything(config.seed)
    ckpt_dir = run_dir / runs.CHECKPOINTS
    if dist_info.main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    model = create_model(config.arch, config.weights, len(AAMI_CLASSES), config.rr_features)
    # channels_last: measured 1.25x (ResNet-18) to 1.7x (Lite0) faster CPU training at 32x32.
    model = model.to(device, memory_format=torch.channels_last)
    spec = {"arch": config.arch, "num_classes": len(AAMI_CLASSES), "rr_features": config.rr_features}
    data = BeatTensors(dataset, Augmenter(dataset.config, parse_augment(config.augment)))
    weights = torch.from_numpy(training_class_weights(config, dataset.labels, train_idx)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    per_rank = epoch_size(dataset.labels, train_idx, config.normal_per_epoch) // dist_info.world
    steps = max(1, -(-per_rank // config.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps, pct_start=0.15)
    state = {"epoch": 0, "best_score": -1.0, "best_epoch": 0, "bad_epochs": 0, "history": []}

    last = ckpt_dir / runs.LAST
    if resume and last.is_file():
        ckpt = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["torch_rng"])
        state = {k: ckpt[k] for k in state}
    averaged = weight_average(model, config.ema_half_life, steps)
    if averaged is not None and resume and last.is_file():
        averaged.load_state_dict(ckpt["weight_average"])
    scored = model if averaged is None else averaged.module  # what is validated, saved as best, exported

    net = model
    if dist_info.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    extra = {"model_spec": spec, "train_config": config.to_dict(), "preprocess": dataset.config.to_dict(), **(run_meta or {})}
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    epoch_task = progress.add_task("epochs", total=config.epochs, completed=state["epoch"]) if progress and dist_info.main else None
    while state["epoch"] < config.epochs and state["bad_epochs"] < config.patience:
        epoch = state["epoch"] + 1
        started = time.perf_counter()
        # Same beats and permutation on every rank (seeded by epoch), each rank takes its own slice;
        # augmentation draws from a stream of its own per rank, so it never shifts the order.
        epoch_rng = np.random.default_rng([config.seed, epoch])
        beats = epoch_beats(dataset.labels, train_idx, config.normal_per_epoch, epoch_rng)
        order = epoch_rng.permutation(beats)[dist_info.rank :: dist_info.world][:per_rank]
        aug_rng = np.random.default_rng([config.seed, epoch, 1, dist_info.rank])
        batch_task = progress.add_task(f"epoch {epoch}", total=per_rank) if epoch_task is not None else None
        on_batch = None if batch_task is None else (
            lambda n, total, seen, task=batch_task, epoch=epoch: progress.update(task, advance=n, description=f"epoch {epoch} loss {total / seen:.3f}")
        )
        after_step = None if averaged is None else (lambda: averaged.update_parameters(model))
        total, seen = train_epoch(net, data, order, config.batch_size, optimizer, scheduler, weights, device, amp, on_batch, rng=aug_rng, after_step=after_step)
        if batch_task is not None:
            progress.remove_task(batch_task)
        train_seconds = time.perf_counter() - started

        stop = torch.zeros(1)
        if dist_info.main:
            val, val_loss = evaluate_val(scored, data, split.val, weights, config.eval_batch_size, device)
            row = epoch_row(
                epoch, total / max(seen, 1), val, val_loss, scheduler.get_last_lr()[0],
                time.perf_counter() - started, seen * dist_info.world / train_seconds,
            )  # fmt: skip
            state["history"].append(row)
            state["epoch"] = epoch
            if val["macro_f1"] > state["best_score"]:
                state.update(best_score=val["macro_f1"], best_epoch=epoch, bad_epochs=0)
                _save({"model": scored.state_dict(), "epoch": epoch, "val_metrics": val, **extra}, ckpt_dir / runs.BEST)
            else:
                state["bad_epochs"] += 1
            _save(_checkpoint(model, optimizer, scheduler, state, extra, averaged), last)
            runs.write_json(run_dir / runs.HISTORY, state["history"])
            if epoch_task is not None:
                progress.console.print(
                    f"epoch {epoch}: train loss {row['train_loss']:.4f}, val loss {val_loss:.4f}, "
                    f"val macro-F1 {val['macro_f1']:.4f} (F1 S {row['val_f1_S']:.3f}, V {row['val_f1_V']:.3f}), "
                    f"{row['train_beats_per_s']:.0f} beats/s"
                )
                progress.update(epoch_task, advance=1, description=f"epochs (val macro-F1 {val['macro_f1']:.3f}, best {state['best_score']:.3f})")
            stop[0] = float(state["bad_epochs"] >= config.patience)
        else:
            state["epoch"] = epoch
        if dist_info.world > 1:
            import torch.distributed as dist

            dist.broadcast(stop, src=0)  # every rank stops together
            if stop[0]:
                break
    if epoch_task is not None:
        progress.remove_task(epoch_task)
    return FitResult(run_dir, state["best_epoch"], state["best_score"], state["history"])
