"""``ecgedge train``, ``ecgedge evaluate``, ``ecgedge report`` and ``ecgedge pipeline``."""

import json
import os
import shutil
from pathlib import Path

import typer

from ecgedge import jsonio, preflight
from ecgedge.cli.common import DataDirOption, progress_bar, user_errors
from ecgedge.data.location import resolve_data_dir
from ecgedge.data.splits import SPLITS
from ecgedge.errors import EcgEdgeError

PRESET_HELP = "Training preset: quick (minutes on a CPU) | edge (32x32, all DS1) | paper (224x224, GPU)."


def _config(preset, split, arch, weights, rr, epochs, batch_size, lr, train_fraction, class_weighting, seed, device, normal_per_epoch=None, augment=None, ema_half_life=None):
    from ecgedge.train.config import train_preset

    return train_preset(
        preset,
        split=split,
        arch=arch,
        weights=weights,
        rr_features=rr,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        train_fraction=train_fraction,
        class_weighting=class_weighting,
        seed=seed,
        device=device,
        normal_per_epoch=normal_per_epoch,
        augment=augment,
        ema_half_life=ema_half_life,
    )


def train(
    preset: str = typer.Option("quick", "--preset", help=PRESET_HELP),
    split: str = typer.Option("inter-patient", "--split", help=" | ".join(SPLITS)),
    arch: str = typer.Option(None, "--arch", help="resnet18 | efficientnet_lite0 (default: resnet18)."),
    weights: str = typer.Option(None, "--weights", help="imagenet | none | PATH to a state dict (default: none)."),
    rr: bool = typer.Option(None, "--rr/--no-rr", help="Rhythm features (RR intervals and their ratios to the patient's running mean) as a second input."),
    epochs: int = typer.Option(None, help="Maximum epochs (early stopping may end sooner)."),
    normal_per_epoch: int = typer.Option(None, "--normal-per-epoch", help="N beats drawn afresh each epoch (balances the classes; all N beats are seen over the run)."),
    augment: str = typer.Option(None, "--augment", help="none | all | comma list of jitter, noise, wander, amplitude."),
    ema_half_life: float = typer.Option(None, "--ema-half-life", help="Validate and keep a moving average of the weights with this half-life in epochs (0: off)."),
    batch_size: int = typer.Option(None, "--batch-size"),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (one-cycle schedule)."),
    train_fraction: float = typer.Option(None, "--train-fraction", help="Patient-stratified share of the training beats, e.g. 0.01."),
    class_weighting: str = typer.Option(None, "--class-weighting", help="Loss weights ~ frequency^-p: none | sqrt | inverse."),
    seed: int = typer.Option(None, "--seed"),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N."),
    data_dir: Path = DataDirOption,
    output: Path = typer.Option(..., "-o", "--output", help="Run directory to create."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in -o from its last checkpoint."),
) -> None:
    """Fine-tune a spectrogram classifier; select on patient-wise DS1 validation only."""
    _train(**locals())


def _keep_after_failure(run_dir: Path) -> bool:
    # Under torchrun the directory is rank 0's: another rank failing must not remove its files.
    return os.environ.get("RANK", "0") != "0" or preflight.resumable(run_dir)


@user_errors
def _train(preset, split, arch, weights, rr, epochs, normal_per_epoch, augment, ema_half_life, batch_size, lr, train_fraction, class_weighting, seed, device, data_dir, output, resume):
    from ecgedge.train.stage import train_run

    config = _config(preset, split, arch, weights, rr, epochs, batch_size, lr, train_fraction, class_weighting, seed, device, normal_per_epoch, augment, ema_half_life)
    preflight.check_train_options(config, output, resume)
    with progress_bar() as progress, preflight.removed_on_failure(output, keep=_keep_after_failure):
        result = train_run(config, resolve_data_dir(data_dir), output, resume=resume, progress=progress)
    typer.echo(f"best epoch {result.best_epoch}: validation macro-F1 {result.best_val_macro_f1:.4f}; run in {output}", err=True)


@user_errors
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory made by `ecgedge train`."),
    split: str = typer.Option("DS2", "--split", help="Set to score: DS2 | val | DS1 (inter-patient); test | val | train (intra-patient)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="MIT-BIH directory (default: the one the run was trained on)."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Score a run (or an exported .onnx / .tflite file) on a set of its split (AAMI EC57 per-class Se, PPV, FPR, F1; jκ)."""
    exported = run_dir.is_file() and run_dir.suffix.lower() in (".onnx", ".tflite")
    if exported:
        from ecgedge.model_files import verify_model_file

        verify_model_file(run_dir)
    else:
        preflight.check_run_checkpoint(run_dir)
    with progress_bar() as progress:
        if exported:
            from ecgedge.validate.scoring import evaluate_with_predictions, keep_scores

            metrics, pred = evaluate_with_predictions(run_dir, split, data_dir, progress)
            try:
                keep_scores(run_dir, metrics, pred)
            except OSError as exc:
                typer.echo(f"warning: could not keep the scores beside the model ({exc}); `ecgedge report` will not find them", err=True)
        else:
            from ecgedge.train.stage import evaluate_run

            metrics = evaluate_run(run_dir, split, data_dir, progress)
    if as_json:
        typer.echo(jsonio.dumps(metrics))
    else:
        _print_metrics(metrics)
        if exported:
            agree = metrics.get("agreement")
            ref = (metrics.get("agreement_reference") or {}).get("note", "")
            typer.echo(
                f"{metrics['format']} {metrics['precision']}, {metrics['size_bytes'] / 1e6:.2f} MB; agreement with the float model: "
                + (f"{agree:.2%}" if agree is not None else f"n/a ({ref})")
            )


def _print_metrics(metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from ecgedge.report.efficiency import headline

    h = headline(metrics)
    table = Table(
        title=f"{metrics.get('set', '')}: macro-F1 (N,S,V,F) {h['macro_f1_4']:.4f}, kappa {h['kappa_4']:.4f}, jκ {h['jk_4']:.4f}; "
        f"SVEB Se {h['sveb_se']:.3f} +P {h['sveb_ppv']:.3f}, VEB Se {h['veb_se']:.3f} +P {h['veb_ppv']:.3f}; "
        f"5 classes: macro-F1 {metrics['macro_f1']:.4f}, jκ {metrics['jk']:.4f}"
    )
    for col in ("class", "Se", "PPV", "FPR", "F1", "support"):
        table.add_column(col, justify="right")
    for cls, m in metrics["per_class"].items():
        table.add_row(cls, f"{m['se']:.4f}", f"{m['ppv']:.4f}", f"{m['fpr']:.4f}", f"{m['f1']:.4f}", f"{m['support']:,}")
    Console().print(table)


@user_errors
def report(
    run_dirs: list[Path] = typer.Argument(..., help="Evaluated run directories or exported model files (scored by `ecgedge evaluate FILE`); the first is the baseline."),
    output: Path = typer.Option(None, "-o", "--output", help="Directory for report.html, report.md and report.json (default: RUN_DIR/report)."),
    latency: bool = typer.Option(False, "--latency", help="Time every model per beat (batch 1) in one session on this machine."),
    threads: int = typer.Option(1, "--threads", help="Threads per runtime when timing."),
) -> None:
    """Write an HTML + Markdown report of one run, or compare several models side by side (accuracy, size, MACs, latency)."""
    from ecgedge.report import write_report

    if output is not None:
        preflight.check_output_dir(output)
    out = output or ((run_dirs[0].parent if run_dirs[0].is_file() else run_dirs[0]) / "report")
    html, md = write_report(list(run_dirs), out, latency=latency, threads=threads)
    typer.echo(f"wrote {html} and {md}")


def pipeline(
    preset: str = typer.Option("quick", "--preset", help=PRESET_HELP),
    split: str = typer.Option("inter-patient", "--split", help=" | ".join(SPLITS)),
    arch: str = typer.Option(None, "--arch"),
    weights: str = typer.Option(None, "--weights"),
    rr: bool = typer.Option(None, "--rr/--no-rr"),
    epochs: int = typer.Option(None, help="Maximum epochs."),
    seed: int = typer.Option(None, "--seed"),
    augment: str = typer.Option(None, "--augment", help="none | all | comma list of jitter, noise, wander, amplitude."),
    data_dir: Path = DataDirOption,
    output: Path = typer.Option(Path("runs/pipeline"), "-o", "--output", help="Directory for this pipeline's runs and report."),
    compress: bool = typer.Option(True, "--compress/--no-compress", help="Also prune channels + fine-tune quantisation-aware (a second run)."),
    prune: float = typer.Option(0.5, "--prune", help="Share of channels the compress step removes."),
    compress_epochs: int = typer.Option(1, "--compress-epochs", help="Fine-tuning epochs per compress step (pruning, QAT)."),
    export: bool = typer.Option(True, "--export/--no-export", help="Also export int8 ONNX + TFLite and re-score them on the test set."),
) -> None:
    """End to end: (download if needed) -> prepare -> train -> evaluate -> compress -> export int8 -> re-evaluate -> report."""
    _pipeline(**locals())


def _score_exports(run_dir: Path, out_dir: Path, set_name: str, data_dir: Path, progress) -> list[Path]:
    """Export ``run_dir`` to int8 ONNX and TFLite and score each file on ``set_name`` (sidecar metrics)."""
    from ecgedge.export import export_model
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.validate.scoring import evaluate_with_predictions, keep_scores

    files = []
    for model in export_model(run_dir, out_dir, ("onnx", "tflite"), int8=True, data_dir=data_dir, load_runtime=load_runtime):
        if model.precision == "int8":
            keep_scores(model.path, *evaluate_with_predictions(model.path, set_name, data_dir, progress))
            files.append(model.path)
    return files


def _compressed_from(compressed: Path, run_dir: Path) -> bool:
    """Does ``compressed`` hold a finished compress run of ``run_dir``'s current best checkpoint?"""
    from ecgedge.atomic import sha256_file
    from ecgedge.train import runs

    if not (compressed / runs.CHECKPOINTS / runs.BEST).is_file() or not (compressed / runs.CONFIG).is_file():
        return False
    made_from = runs.read_json(compressed / runs.CONFIG).get("compress", {}).get("source_checkpoint_sha256")
    return made_from == sha256_file(run_dir / runs.CHECKPOINTS / runs.BEST)


@user_errors
def _pipeline(preset, split, arch, weights, rr, epochs, seed, augment, data_dir, output, compress, prune, compress_epochs, export):
    from ecgedge.data.dataset import prepare_dataset
    from ecgedge.data.download import download
    from ecgedge.data.location import default_data_dir
    from ecgedge.preprocess import get_preset
    from ecgedge.report import write_report
    from ecgedge.train.stage import evaluate_run, train_run

    preflight.check_output_dir(output)
    target = resolve_data_dir(data_dir)
    if data_dir is None and target == default_data_dir() and not (target / "100.hea").is_file():
        typer.echo(f"MIT-BIH not found; downloading it from PhysioNet into {target}", err=True)
        download(target)
    config = _config(preset, split, arch, weights, rr, epochs, None, None, None, None, seed, None, augment=augment)
    preflight.check_seed(config.seed)
    preflight.check_arch_and_weights(config.arch, config.weights)
    if compress:  # fail now, not after training
        from ecgedge.compress.prune import check_ratio

        check_ratio(prune)
        if compress_epochs < 1:
            raise EcgEdgeError(f"--compress-epochs must be at least 1, got {compress_epochs}.")
    set_name = "DS2" if config.split == "inter-patient" else "test"
    run_dir = output / f"{config.name}-{config.arch}-{config.split}"
    compressed = output / f"{run_dir.name}-prune{round(prune * 100)}-qat"
    entries = [run_dir]
    with progress_bar() as progress:
        prepare_dataset(target, get_preset(config.data_preset), progress=progress)
        resume = (run_dir / "config.json").is_file()
        train_run(config, target, run_dir, resume=resume, progress=progress)
        metrics = evaluate_run(run_dir, set_name, target, progress)
        _print_metrics(metrics)
        if export:
            entries += _score_exports(run_dir, output / "exports" / run_dir.name, set_name, target, progress)
        if compress:
            if not _compressed_from(compressed, run_dir):
                from ecgedge.compress import compress_run

                shutil.rmtree(compressed, ignore_errors=True)  # unfinished, or made from an older checkpoint
                compress_run(run_dir, compressed, prune=prune, qat=True, epochs=compress_epochs, data_dir=target)
            evaluate_run(compressed, set_name, target, progress)
            entries.append(compressed)
            if export:
                entries += _score_exports(compressed, output / "exports" / compressed.name, set_name, target, progress)
    html, _ = write_report(entries, output / "report", latency=len(entries) > 1)
    rows = json.loads((output / "report" / "report.json").read_text())["models"] if len(entries) > 1 else []
    for r in rows:
        agree = "" if r["agreement"] is None else f", agreement {r['agreement']:.2%}"
        lat = f", {r['latency']['median_ms']:.2f} ms/beat" if r["latency"] else ""
        typer.echo(f"{r['label']}: macro-F1 (N,S,V,F) {r['macro_f1_4']:.4f} ({r['delta_macro_f1_4']:+.4f}), F1 S {r['f1']['S']:.3f}, V {r['f1']['V']:.3f}, {r['size_bytes'] / 1e6:.2f} MB{lat}{agree}")
    typer.echo(f"report: {html}")
