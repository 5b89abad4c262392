"""The compress stage: a trained run -> a pruned and/or quantisation-aware run directory.

``compress_run(RUN, OUT, prune=0.5, qat=True, epochs=2)``:

1. loads ``RUN/checkpoints/best.pt`` (plain or already pruned);
2. ``prune``: structured channel pruning (:mod:`ecgedge.compress.prune`), then ``epochs`` of
   float fine-tuning on the run's own training beats (DS1 minus the validation patients), best
   epoch chosen on ``split.val``;
3. ``qat``: quantisation-aware fine-tuning (:mod:`ecgedge.compress.qat`) for ``epochs`` more,
   from the float (possibly just pruned and fine-tuned) model, again selected on ``split.val``;
4. writes ``OUT`` like a training run: ``config.json`` (the source run's, with ``name``,
   ``compress`` and the per-step summaries), ``versions.json``, ``history.json`` (all fine-tuning
   epochs, numbered consecutively, with a ``phase`` key), ``checkpoints/best.pt``
   (``model``, ``model_spec`` with the pruned ``channels``, ``epoch``, ``val_metrics``,
   ``train_config``, ``preprocess``, ``compress``; for QAT also ``qat_state``) and
   ``checkpoints/qat_int8.pt2``.

DS2 (``split.test``) is never touched here; score ``OUT`` with ``ecgedge evaluate OUT``.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ecgedge.compress.distill import DistillConfig, DistillationLoss, MixedViews
from ecgedge.train.sampling import parse_normal_per_epoch
from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.atomic import atomic_path
from ecgedge.errors import EcgEdgeError
from ecgedge import run_dirs

DEFAULT_LR = {"prune": 1e-3, "qat": 1e-4}
CALIBRATION_BEATS = 512  # training beats that set the QAT graph's initial activation ranges
SELECTIONS = ("agreement", "macro-f1")  # what picks each fine-tuning step's epoch (compress_run)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _small(m: dict) -> dict:
    return {k: m[k] for k in ("accuracy", "macro_f1", "jk", "agreement") if k in m} | {f"f1_{c}": m["per_class"][c]["f1"] for c in AAMI_CLASSES}


def compress_run(
    run_dir: Path,
    out_dir: Path,
    prune: float | None = None,
    qat: bool = False,
    epochs: int = 2,
    data_dir: Path | None = None,
    *,
    lr: float | None = None,
    batch_size: int | None = None,
    train_fraction: float | None = None,
    keep_stem: bool = True,
    round_to: int | None = 8,
    qat_weight_bits: int = 7,
    distill: DistillConfig | None = DistillConfig(),
    select: str = "agreement",
    seed: int | None = None,
    normal_per_epoch: int | str | None = None,
    prune_normal_per_epoch: int | str | None = None,
    log: Callable[[str], None] | None = _stderr,
) -> Path:
    """Compress the run in ``run_dir`` into the new run directory ``out_dir``; returns ``out_dir``.

    ``prune``: share of channels to remove in (0, 1) (torch-pruning convention: 0.5 halves every
    prunable layer's width). ``qat``: quantisation-aware fine-tuning. ``epochs``: fine-tuning
    epochs per step. ``lr``: peak learning rate (default 1e-3 after pruning, 1e-4 for QAT).
    ``train_fraction``: patient-stratified share of the run's training beats to fine-tune on
    (default: all the run used). ``keep_stem``: leave the stem convolution's output channels alone.
    ``qat_weight_bits``: 7 (default; exact in onnxruntime's x86 int8 kernels, see
    :data:`ecgedge.compress.qat.DEFAULT_WEIGHT_BITS`) or 8. ``distill``: learn the source
    model's soft outputs in every fine-tuning step (:mod:`ecgedge.compress.distill`; default: them
    alone, which kept S and V F1 of a 60 %-pruned ResNet-18 within a point of the float model where
    labels alone lost up to 5.5 points); None: labels only. ``select``: which fine-tuning epoch
    (or the state before it) each step keeps: ``agreement``, the one classifying the validation
    beats most like the source model (default: compression should give the same classifier, and
    the validation macro-F1 of a few patients is noisy enough to pick a different one), or
    ``macro-f1``, the best validation macro-F1. ``normal_per_epoch``: N beats drawn afresh per
    fine-tuning epoch (default: the run's own setting), or ``"all"``: every training beat each
    epoch, so the student is taught the teacher's answer on all the run's N beats, not a sample.
    ``prune_normal_per_epoch``: the same for the pruning step alone (default: as
    ``normal_per_epoch``): the pruning step is where the copy loses its source's rarer calls, and
    the cheap step to give more beats (docs/results.md, session 8, measures ``"all"``).
    """
    from ecgedge.compress.finetune import evaluate_val, finetune
    from ecgedge.compress.prune import check_ratio, complexity, example_inputs, prune_model
    from ecgedge.models.checkpoint import channel_spec, model_from_checkpoint
    from ecgedge.data.splits import make_split
    from ecgedge.data.summary import class_counts
    from ecgedge.data.run_data import run_dataset
    from ecgedge.atomic import sha256_file
    from ecgedge.train.batches import BeatTensors, iterate
    from ecgedge.train.config import TrainConfig
    from ecgedge.train.fit import resolve_device, seed_everything
    from ecgedge.train.augment import Augmenter, parse_augment
    from ecgedge.train.predict import predict_logits
    from ecgedge.train.sampling import patient_stratified_subsample, training_class_weights
    from ecgedge.train.stage import training_beats

    log = log or (lambda _m: None)
    # ---- arguments
    if prune is None and not qat:
        raise EcgEdgeError("nothing to do: pass --prune RATIO and/or --qat.")
    if select not in SELECTIONS:
        raise EcgEdgeError(f"unknown selection {select!r}; choose {' or '.join(SELECTIONS)}.")
    ratio = check_ratio(prune) if prune is not None else None
    if qat:  # fail before any data is loaded
        from ecgedge.compress.qat import check_weight_bits

        check_weight_bits(qat_weight_bits)
    if int(epochs) < 1:
        raise EcgEdgeError(f"--epochs must be at least 1, got {epochs}.")
    if lr is not None and not lr > 0:
        raise EcgEdgeError(f"--lr must be positive, got {lr}.")
    if train_fraction is not None and not 0 < train_fraction <= 1:
        raise EcgEdgeError(f"--train-fraction must be in (0, 1], got {train_fraction}.")
    n_per_epoch = parse_normal_per_epoch(normal_per_epoch)
    prune_n = n_per_epoch if prune_normal_per_epoch is None else parse_normal_per_epoch(prune_normal_per_epoch, "--prune-normal-per-epoch")
    run_dir, out_dir = Path(run_dir).expanduser(), Path(out_dir).expanduser()
    if not run_dirs.has_config(run_dir):
        raise EcgEdgeError(f"{run_dir} is not a run directory (no {run_dirs.CONFIG}); give one made by `ecgedge train`.")
    best_path = run_dirs.best_checkpoint(run_dir, must_exist=True)
    if out_dir.resolve() == run_dir.resolve():
        raise EcgEdgeError("-o must be a new directory, not the run being compressed.")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise EcgEdgeError(f"{out_dir} already holds files; choose another -o.")

    meta = run_dirs.read_config(run_dir)
    config = TrainConfig.from_dict(meta["train"])
    if batch_size is not None:
        config = replace(config, batch_size=int(batch_size))
    seed = config.seed if seed is None else int(seed)
    # the fine-tuning's own draw; the run's config (written out as "train") keeps the training's
    epoch_normal = config.normal_per_epoch if n_per_epoch == "run" else n_per_epoch
    prune_epoch_normal = config.normal_per_epoch if prune_n == "run" else prune_n
    try:
        ckpt = torch.load(best_path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise EcgEdgeError(f"{best_path} is not a loadable checkpoint ({str(exc).splitlines()[0][:200]}).") from None
    if "qat_state" in ckpt:
        raise EcgEdgeError(f"{run_dir} is already quantisation-aware; compress its float source run instead.")
    model = model_from_checkpoint(ckpt, str(best_path))

    # ---- data: the run's own beats and split (DS2 is never used here)
    dataset = run_dataset(meta, data_dir)  # the run's records, its preprocessing, its files (SHA-256 checked)
    split = make_split(config.split, dataset.records, dataset.labels, config.seed, config.val_fold)
    train_idx = training_beats(config, dataset, split)
    if train_fraction is not None and train_fraction < 1:
        train_idx = patient_stratified_subsample(dataset.records, dataset.labels, train_idx, train_fraction, seed)
    live_teacher = bool(distill) and distill.live
    # every augmentation the toolkit has: the views only widen where student and teacher are compared
    data = BeatTensors(dataset, Augmenter(dataset.config, parse_augment("all")) if live_teacher else None)
    if live_teacher and distill.views == "mixup":
        data = MixedViews(data)
    device = resolve_device(config.device)
    cw = training_class_weights(config, dataset.labels, train_idx)
    weights_t = torch.as_tensor(cw, dtype=torch.float32)
    image_size = tuple(int(v) for v in dataset.config.to_dict()["spectrogram"]["image_size"])
    log(f"compress {run_dir.name}: {len(train_idx)} training beats, {len(split.val)} validation beats ({config.split})")

    seed_everything(seed)
    model = model.to(device)
    source_val, _ = evaluate_val(model, data, split.val, weights_t, config.eval_batch_size, device)
    # the source's own classes of the validation beats: what a faithful copy reproduces
    reference = predict_logits(model, data, split.val, config.eval_batch_size, device).argmax(1) if select == "agreement" else None
    log(f"source model: val macro-F1 {source_val['macro_f1']:.4f}")
    # the source model, before pruning changes it in place, teaches every step: its logits, once
    criterion = None
    if distill:
        if live_teacher:
            criterion = DistillationLoss.live(copy.deepcopy(model), weights_t.to(device), distill)
        else:
            criterion = DistillationLoss.from_teacher(model, data, train_idx, weights_t.to(device), distill, batch_size=config.eval_batch_size, device=device)
    common = dict(batch_size=config.batch_size, eval_batch_size=config.eval_batch_size, weight_decay=config.weight_decay, seed=seed, device=device, class_weights=cw, criterion=criterion, log=log, normal_per_epoch=epoch_normal, reference=reference)
    history: list[dict] = []
    info: dict = {
        "source_run": str(run_dir.resolve()),
        "source_checkpoint": str(best_path.resolve()),
        "source_checkpoint_sha256": sha256_file(best_path),
        "epochs_per_step": int(epochs),
        "train_beats": class_counts(dataset.labels[train_idx]),
        "train_fraction": train_fraction,
        "seed": seed,
        "distill": distill.to_dict() if distill else None,
        "select": select,
        "normal_per_epoch": epoch_normal,
        "source_val": _small(source_val),
        "steps": [],
    }
    inputs = example_inputs(model, image_size)
    info["complexity_source"] = complexity(model.cpu(), inputs)
    model.to(device)
    spec = dict(ckpt["model_spec"])
    best_val, best_epoch = source_val, 0
    t0 = time.perf_counter()

    # ---- 1. structured pruning + float fine-tuning
    if ratio is not None:
        p = prune_model(model.cpu(), ratio, image_size=image_size, round_to=round_to, keep_stem=keep_stem)
        model.to(device, memory_format=torch.channels_last)
        pruned_val, _ = evaluate_val(model, data, split.val, weights_t, config.eval_batch_size, device, reference)
        log(
            f"pruned {ratio:.0%} of channels: params {p['before']['params']:,} -> {p['after']['params']:,}, "
            f"MACs {p['before']['macs']:,} -> {p['after']['macs']:,}; val macro-F1 before fine-tuning {pruned_val['macro_f1']:.4f}"
        )
        step_lr = lr or DEFAULT_LR["prune"]
        res = finetune(model, data, train_idx, split.val, epochs=int(epochs), lr=step_lr, initial_val=pruned_val, **{**common, "normal_per_epoch": prune_epoch_normal})
        model.load_state_dict(res.best_state)
        spec["channels"] = channel_spec(model)
        history += [{**row, "phase": "prune"} for row in res.history]
        best_val, best_epoch = res.best_val, res.best_epoch
        info["steps"].append({"step": "prune", **p, "lr": step_lr, "normal_per_epoch": prune_epoch_normal, "val_after_pruning": _small(pruned_val), "best_epoch": res.best_epoch, "best_val": _small(res.best_val)})

    # ---- 2. quantisation-aware fine-tuning
    extra: dict = {}
    if qat:
        from ecgedge.compress.qat import QAT_PROGRAM, QATTrainable, convert_qat, float_state_from_prepared, prepare_qat, quantizer_description, save_qat_program, set_observers

        model = model.cpu().to(memory_format=torch.contiguous_format).eval()
        prepared, input_q = prepare_qat(model, image_size, qat_weight_bits)
        quantizer = quantizer_description(qat_weight_bits)
        trainable = QATTrainable(prepared, model.num_classes, model.rr_features).to(device)
        # initial activation ranges from a few training batches, BatchNorm in eval form (statistics kept)
        calib = np.random.default_rng([seed, 0]).permutation(train_idx)[: CALIBRATION_BEATS]
        trainable.eval()
        with torch.no_grad():
            for batch in iterate(np.sort(calib), config.batch_size):
                trainable(*data.get(batch, device)[:2])
        set_observers(prepared, False)
        fq_val, _ = evaluate_val(trainable, data, split.val, weights_t, config.eval_batch_size, device, reference)
        set_observers(prepared, True)
        log(
            f"QAT graph ready (input scale {input_q['scale']:.6f}, zero point {input_q['zero_point']}); "
            f"val macro-F1 before fine-tuning {fq_val['macro_f1']:.4f} (ranges from {len(calib)} training beats, i.e. post-training int8)"
        )
        step_lr = lr or DEFAULT_LR["qat"]
        res = finetune(
            trainable, data, train_idx, split.val, epochs=int(epochs), lr=step_lr,
            before_eval=lambda: set_observers(prepared, False), after_eval=lambda: set_observers(prepared, True),
            initial_val=fq_val, **common,
        )  # fmt: skip
        trainable.load_state_dict(res.best_state)
        set_observers(prepared, False)
        offset = len(history)
        history += [{**row, "epoch": row["epoch"] + offset, "phase": "qat"} for row in res.history]
        best_val, best_epoch = res.best_val, res.best_epoch + offset
        model.load_state_dict(float_state_from_prepared(prepared.cpu(), model))
        extra["qat_state"] = {k: v.detach().cpu().clone() for k, v in prepared.state_dict().items()}
        spec["qat"] = {"quantizer": quantizer, "weight_bits": int(qat_weight_bits), "input_quantization": input_q, "program": QAT_PROGRAM}
        info["steps"].append({"step": "qat", "quantizer": quantizer, "lr": step_lr, "input_quantization": input_q, "val_before_finetune": _small(fq_val), "calibration_beats": int(len(calib)), "best_epoch": res.best_epoch, "best_val": _small(res.best_val)})
        converted = convert_qat(prepared.cpu(), fold_quantize=False)

    info["complexity"] = complexity(model.cpu(), inputs)
    info["seconds"] = round(time.perf_counter() - t0, 1)

    # ---- write the run directory
    ckpt_dir = run_dirs.checkpoint_dir(out_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if qat:
        with atomic_path(ckpt_dir / QAT_PROGRAM) as tmp:
            save_qat_program(converted, tmp, model.rr_features, image_size)
    checkpoint = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_spec": spec,
        "epoch": int(best_epoch),
        "val_metrics": best_val,
        "train_config": config.to_dict(),
        "preprocess": dataset.config.to_dict(),
        "run": {"split": split.to_dict()},
        "compress": info,
        **extra,
    }
    with atomic_path(run_dirs.best_checkpoint(out_dir)) as tmp:  # a killed run leaves no truncated best.pt
        torch.save(checkpoint, tmp)
    out_meta = {
        **meta,
        "name": out_dir.name,
        "train": config.to_dict(),
        "train_beats": class_counts(dataset.labels[train_idx]),
        "compress": {"prune": ratio, "qat": bool(qat), **info},
    }
    run_dirs.write_run_record(out_dir, out_meta, "torch-pruning", "torchao")
    run_dirs.write_json(out_dir / run_dirs.HISTORY, history)
    last = info["steps"][-1] if info["steps"] else {}
    chosen = f"{last.get('step')} epoch {last.get('best_epoch')}" if last.get("best_epoch") else f"the state before {last.get('step')} fine-tuning"
    agreement = f", agreement with the source {best_val['agreement']:.2%}" if "agreement" in best_val else ""
    log(f"selected {chosen}: val macro-F1 {best_val['macro_f1']:.4f} (source {source_val['macro_f1']:.4f}){agreement}; run in {out_dir}")
    return out_dir
