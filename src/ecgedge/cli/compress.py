"""``ecgedge compress``: a trained run -> a pruned and/or quantisation-aware run directory."""

from pathlib import Path

import typer

from ecgedge import preflight
from ecgedge.cli.common import user_errors


@user_errors
def compress(
    run_dir: Path = typer.Argument(..., help="A run directory made by `ecgedge train` (uses checkpoints/best.pt)."),
    output: Path = typer.Option(..., "-o", "--output", help="New run directory for the compressed model."),
    prune: float = typer.Option(None, "--prune", help="Structured pruning: share of channels to remove, in (0, 1), e.g. 0.5."),
    qat: bool = typer.Option(False, "--qat", help="Quantisation-aware fine-tuning (int8 per-channel weights, int8 activations)."),
    epochs: int = typer.Option(2, "--epochs", help="Fine-tuning epochs per step (pruning, QAT)."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (default 1e-3 after pruning, 1e-4 for QAT)."),
    train_fraction: float = typer.Option(None, "--train-fraction", help="Patient-stratified share of the run's training beats to fine-tune on."),
    keep_stem: bool = typer.Option(True, "--keep-stem/--prune-stem", help="Keep the stem convolution's output channels."),
    qat_weight_bits: int = typer.Option(7, "--qat-weight-bits", help="QAT weight grid: 7 (exact in onnxruntime's x86 int8 kernels) or 8."),
    distill: float = typer.Option(1.0, "--distill", help="Weight in [0, 1] of the source model's soft outputs in the fine-tuning loss (the rest: labels); 0 = labels only."),
    distill_temperature: float = typer.Option(4.0, "--distill-temperature", help="Softmax temperature of the distillation term."),
    distill_views: str = typer.Option("beats", "--distill-views", help="Where the student is taught the teacher's outputs: beats (each training beat as it is) | augmented (each augmented view, teacher run live) | mixup (augmented views mixed pairwise; needs --distill 1)."),
    distill_class_weights: bool = typer.Option(False, "--distill-class-weights/--no-distill-class-weights", help="Weight each beat's distillation term by the training class weight of the source model's call (faithful on rare classes too)."),
    select: str = typer.Option("agreement", "--select", help="Epoch kept per step: agreement (classifies the validation beats most like the source model) | macro-f1."),
    seed: int = typer.Option(None, "--seed", help="Seed of the fine-tuning order (default: the run's)."),
    normal_per_epoch: str = typer.Option(None, "--normal-per-epoch", help="N beats drawn afresh per fine-tuning epoch (default: the run's), or 'all': every training beat each epoch."),
    prune_normal_per_epoch: str = typer.Option(None, "--prune-normal-per-epoch", help="The same for the pruning step alone (default: as --normal-per-epoch)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="MIT-BIH directory (default: the one the run was trained on)."),
) -> None:
    """Prune channels and/or fine-tune quantisation-aware; select on DS1 validation patients only."""
    from ecgedge.compress import compress_run
    from ecgedge.compress.distill import DistillConfig

    preflight.check_lr(lr)
    preflight.check_seed(seed)
    preflight.check_output_dir(output)
    teacher = DistillConfig(distill, distill_temperature, distill_views, distill_class_weights) if distill != 0 else None
    with preflight.removed_on_failure(output):  # a failed compress never blocks a plain retry
        out = compress_run(
            run_dir, output, prune=prune, qat=qat, epochs=epochs, data_dir=data_dir, lr=lr, train_fraction=train_fraction,
            keep_stem=keep_stem, qat_weight_bits=qat_weight_bits, distill=teacher, select=select, seed=seed, normal_per_epoch=normal_per_epoch,
            prune_normal_per_epoch=prune_normal_per_epoch,
        )  # fmt: skip
    typer.echo(f"compressed run in {out}; score it with `ecgedge evaluate {out}`", err=True)
