"""``ecgedge train``, ``ecgedge evaluate``, ``ecgedge report`` and ``ecgedge pipeline``."""

import os
from pathlib import Path

import typer

from ecgedge import jsonio, preflight
from ecgedge.cli.common import DataDirOption, progress_bar, user_errors
from ecgedge.data.location import resolve_data_dir
from ecgedge.data.splits import SPLITS
from ecgedge.errors import EcgEdgeError

PRESET_HELP = "Training preset: quick (minutes on a CPU) | edge (32x32, all DS1) | paper (224x224, GPU)."


def _config(preset, split, arch, weights, rr, epochs, batch_size, lr, train_fraction, class_weighting, seed, device, normal_per_epoch=None, augment=None, ema_half_life=None, val_fold=None, weight_decay=None):
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
        val_fold=val_fold,
        weight_decay=weight_decay,
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
    val_fold: int = typer.Option(None, "--val-fold", help="Validate on this patient fold of DS1 (0-4; 0, the default, is the usual validation patients): cross-validated comparisons."),
    batch_size: int = typer.Option(None, "--batch-size"),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (one-cycle schedule)."),
    weight_decay: float = typer.Option(None, "--weight-decay", help="AdamW's decoupled weight decay."),
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
def _train(preset, split, arch, weights, rr, epochs, normal_per_epoch, augment, ema_half_life, val_fold, batch_size, lr, weight_decay, train_fraction, class_weighting, seed, device, data_dir, output, resume):
    from ecgedge.train.stage import train_run

    config = _config(preset, split, arch, weights, rr, epochs, batch_size, lr, train_fraction, class_weighting, seed, device, normal_per_epoch, augment, ema_half_life, val_fold, weight_decay)
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
    from ecgedge.run_dirs import is_model_file

    exported = run_dir.is_file() and is_model_file(run_dir)
    if exported:
        from ecgedge.model_files import verify_model_file

        verify_model_file(run_dir)
    else:
        preflight.check_run_checkpoint(run_dir)
    from ecgedge.validate.scoring import keep_scores, score

    with progress_bar() as progress:
        metrics, pred = score(run_dir, split, data_dir, progress)
    try:
        keep_scores(run_dir, metrics, pred)
    except OSError as exc:
        if not exported:
            raise  # a run directory that cannot be written to: a one-line error (user_errors)
        typer.echo(f"warning: could not keep the scores beside the model ({exc}); `ecgedge report` will not find them", err=True)
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
    output: Path = typer.Option(None, "-o", "--output", help="Directory for report.md (+ PNGs) and report.json (default: RUN_DIR/report)."),
    latency: bool = typer.Option(False, "--latency", help="Time every model per beat (batch 1) in one session on this machine."),
    threads: int = typer.Option(1, "--threads", help="Threads per runtime when timing."),
    html: bool = typer.Option(False, "--html", help="Also write report.html: one self-contained page, images inlined."),
) -> None:
    """Write a Markdown report (+ PNGs) of one run, or compare several models side by side (accuracy, size, MACs, latency)."""
    from ecgedge.report import write_report

    if output is not None:
        preflight.check_output_dir(output)
    out = output or ((run_dirs[0].parent if run_dirs[0].is_file() else run_dirs[0]) / "report")
    md = write_report(list(run_dirs), out, latency=latency, threads=threads, html=html)
    typer.echo(f"wrote {md}" + (f" and {md.with_suffix('.html')}" if html else ""))


def pipeline(
    config_file: Path = typer.Option(None, "--config", help="A pipeline config (.json or .toml; see ecgedge.pipeline.config). Options given here override its settings; --preset cannot (the file names its preset)."),
    preset: str = typer.Option(None, "--preset", help=PRESET_HELP + " Default: quick."),
    split: str = typer.Option(None, "--split", help=" | ".join(SPLITS) + " (default: inter-patient)."),
    arch: str = typer.Option(None, "--arch"),
    weights: str = typer.Option(None, "--weights"),
    rr: bool = typer.Option(None, "--rr/--no-rr"),
    epochs: int = typer.Option(None, help="Maximum epochs."),
    seed: int = typer.Option(None, "--seed"),
    augment: str = typer.Option(None, "--augment", help="none | all | comma list of jitter, noise, wander, amplitude."),
    records: str = typer.Option(None, "--records", help="Comma-separated MIT-BIH records (default: the 44 of DS1 and DS2)."),
    data_dir: Path = DataDirOption,
    output: Path = typer.Option(Path("runs/pipeline"), "-o", "--output", help="Directory for this pipeline's runs and report."),
    compress: bool = typer.Option(None, "--compress/--no-compress", help="Also prune channels + fine-tune quantisation-aware (a second run). Default: on."),
    prune: float = typer.Option(None, "--prune", help="Share of channels the compress step removes (default 0.5)."),
    compress_epochs: int = typer.Option(None, "--compress-epochs", help="Fine-tuning epochs per compress step (pruning, QAT; default 3)."),
    export: bool = typer.Option(None, "--export/--no-export", help="Also export int8 ONNX + TFLite and re-score them on the test set. Default: on."),
    bundle: bool = typer.Option(None, "--bundle/--no-bundle", help="Sign the final int8 files into a bundle and validate it on the host and, where built, an emulated Pi Zero 2 W. Default: on."),
    html: bool = typer.Option(None, "--html/--no-html", help="Also write the self-contained report.html. Default: off."),
) -> None:
    """End to end: (download if needed) -> prepare -> train -> evaluate -> export int8 -> compress -> export int8 -> re-evaluate -> bundle -> validate on targets -> report."""
    _pipeline(**locals())


def _pipeline_config(config_file, preset, split, arch, weights, rr, epochs, seed, augment, records, compress, prune, compress_epochs, export, bundle, html):
    """The job's config: the file's (or the preset's), then every option given on the command line."""
    from dataclasses import replace

    from ecgedge.cli.common import parse_records
    from ecgedge.pipeline import BundleOptions, CompressOptions, ExportOptions, PipelineConfig

    train = {"split": split, "arch": arch, "weights": weights, "rr_features": rr, "epochs": epochs, "seed": seed, "augment": augment}
    train = {k: v for k, v in train.items() if v is not None}
    if config_file is not None:
        if preset is not None:
            raise EcgEdgeError(f"--preset and --config {config_file}: the config file names its preset; set train.preset there.")
        config = PipelineConfig.load(config_file)
        config = replace(config, train=replace(config.train, **train).check())
    else:
        config = PipelineConfig.preset(preset or "quick", **train)
    if records is not None:
        config = replace(config, records=parse_records(records))
    if compress is not None:
        config = replace(config, compress=(config.compress or CompressOptions()) if compress else None)
    if config.compress is not None:
        given = {k: v for k, v in (("prune", prune), ("epochs", compress_epochs)) if v is not None}
        config = replace(config, compress=replace(config.compress, **given))
    if export is not None:
        config = replace(config, export=(config.export or ExportOptions()) if export else None)
    if bundle is not None:
        config = replace(config, bundle=(config.bundle or BundleOptions()) if bundle else None)
    if html is not None:
        config = replace(config, report=replace(config.report, html=html))
    return config.check()


@user_errors
def _pipeline(config_file, preset, split, arch, weights, rr, epochs, seed, augment, records, data_dir, output, compress, prune, compress_epochs, export, bundle, html):
    from ecgedge.pipeline import check_pipeline, run_pipeline

    config = _pipeline_config(config_file, preset, split, arch, weights, rr, epochs, seed, augment, records, compress, prune, compress_epochs, export, bundle, html)
    check_pipeline(config, output)  # before the progress bar: a bad option is the one line shown
    trained = config.dirs(output).run

    def show(path: Path, metrics: dict) -> None:
        if path == trained:
            _print_metrics(metrics)

    with progress_bar() as progress:
        result = run_pipeline(config, output, data_dir, progress=progress, on_scored=show)
    for r in result.rows:
        agree = "" if r["agreement"] is None else f", agreement {r['agreement']:.2%}"
        lat = f", {r['latency']['median_ms']:.2f} ms/beat" if r["latency"] else ""
        typer.echo(f"{r['label']}: macro-F1 (N,S,V,F) {r['macro_f1_4']:.4f} ({r['delta_macro_f1_4']:+.4f}), F1 S {r['f1']['S']:.3f}, V {r['f1']['V']:.3f}, {r['size_bytes'] / 1e6:.2f} MB{lat}{agree}")
    if result.validation is not None:
        v = result.validation
        ran = sorted({e["target"] for m in v["validations"] for e in m["targets"]})
        typer.echo(f"bundle {v['bundle']['version']}: validated on {', '.join(ran)}: " + ("passed" if v["passed"] else "FAILED"))
    typer.echo(f"report: {result.report}")
