"""The end-to-end job as one function: what ``ecgedge pipeline`` and ``./run main`` run.

    from ecgedge.pipeline import PipelineConfig, run_pipeline
    result = run_pipeline(PipelineConfig.preset("quick", epochs=2), Path("runs/p"), data_dir=Path("mitdb"))
    result.report            # runs/p/report/report.md
    result.metrics[result.dirs.run]["macro_f1"]

(download MIT-BIH if needed) -> prepare -> train -> evaluate on the test set -> export int8 and
score each file -> compress (prune + QAT, distilled) -> evaluate -> export int8 and score -> sign
the final int8 files into a bundle and validate it on the host and an emulated Pi -> one report
comparing every model. Directory layout: :class:`ecgedge.run_dirs.PipelineDirs`.

Run again into the same directory, the job continues: training resumes from its last checkpoint
(same settings only), a compressed run made from the current best checkpoint is kept, everything
else is redone. All options are checked before anything is written or downloaded.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ecgedge.pipeline.config import PipelineConfig
from ecgedge.run_dirs import PipelineDirs


@dataclass
class PipelineResult:
    dirs: PipelineDirs
    set_name: str  # the test set every model was scored on (DS2 / test)
    entries: list[Path]  # the compared models, baseline (the trained run) first
    metrics: dict[Path, dict] = field(default_factory=dict)  # scores of each entry
    report: Path | None = None  # report.md
    rows: list[dict] = field(default_factory=list)  # report.json's comparison (empty for one model)
    validation: dict | None = None  # the bundle's validation (validation/validation.json), when bundled


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check_pipeline(config: PipelineConfig, out_dir: Path) -> None:
    """Everything the job can judge before it writes, downloads or trains anything."""
    from ecgedge import preflight

    config.check()
    preflight.check_output_dir(out_dir)
    preflight.check_lr(config.train.lr, "train.lr")
    preflight.check_seed(config.train.seed, "train.seed")
    preflight.check_device(config.train.device, "train.device")
    preflight.check_arch_and_weights(config.train.arch, config.train.weights)


def run_pipeline(
    config: PipelineConfig,
    out_dir: Path,
    data_dir: Path | None = None,
    progress=None,
    log: Callable[[str], None] | None = _stderr,
    on_scored: Callable[[Path, dict], None] | None = None,
) -> PipelineResult:
    """Run the whole job into ``out_dir``; returns where everything went and the scores.

    ``data_dir``: MIT-BIH (default: ``$ECGEDGE_DATA_DIR``, else the user cache directory, which is
    filled from PhysioNet when empty). ``progress``: a ``rich.progress.Progress`` (optional).
    ``log``: one line per step (default: stderr). ``on_scored(path, metrics)``: called as each
    model is scored, while the job goes on.
    """
    from ecgedge.data.download import download
    from ecgedge.data.location import default_data_dir, resolve_data_dir
    from ecgedge.run_dirs import compressed_from, has_config
    from ecgedge.report import write_report
    from ecgedge.train.stage import train_run
    from ecgedge.validate.scoring import evaluate

    out_dir = Path(out_dir)
    log = log or (lambda _m: None)
    check_pipeline(config, out_dir)
    target = resolve_data_dir(data_dir)
    if data_dir is None and target == default_data_dir() and not (target / "100.hea").is_file():
        log(f"MIT-BIH not found; downloading it from PhysioNet into {target}")
        download(target)

    dirs = config.dirs(out_dir)
    result = PipelineResult(dirs, config.test_set, [dirs.run])

    def score(path: Path) -> None:
        result.metrics[path] = evaluate(path, result.set_name, target, progress)
        if on_scored:
            on_scored(path, result.metrics[path])

    train_run(config.train, target, dirs.run, resume=has_config(dirs.run), progress=progress, records=config.records)
    score(dirs.run)
    if config.export:
        result.entries += _export_and_score(config, dirs.run, dirs.exports(dirs.run), target, log, score)
    if config.compress:
        c = config.compress
        if not compressed_from(dirs.compressed, dirs.run):
            from ecgedge.compress import compress_run

            shutil.rmtree(dirs.compressed, ignore_errors=True)  # unfinished, or made from an older checkpoint
            compress_run(dirs.run, dirs.compressed, prune=c.prune, qat=c.qat, epochs=c.epochs, prune_normal_per_epoch=c.prune_normal_per_epoch, data_dir=target, log=log)
        score(dirs.compressed)
        result.entries.append(dirs.compressed)
        if config.export:
            result.entries += _export_and_score(config, dirs.compressed, dirs.exports(dirs.compressed), target, log, score)

    if config.bundle and config.export:
        final = dirs.compressed if config.compress else dirs.run
        result.validation = bundle_and_validate(config.bundle, dirs, dirs.exports(final), target, log)

    several = len(result.entries) > 1
    r = config.report
    result.report = write_report(result.entries, dirs.report, latency=r.latency and several, threads=r.threads, html=r.html, validation=result.validation)
    if several:
        import json

        from ecgedge.report.document import COMPARISON

        result.rows = json.loads((dirs.report / COMPARISON).read_text(encoding="utf-8"))["models"]
    return result


def _export_and_score(config: PipelineConfig, run_dir: Path, out_dir: Path, data_dir: Path, log, score) -> list[Path]:
    """Export ``run_dir`` to int8 in every configured format and score each int8 file."""
    from ecgedge.export import export_model
    from ecgedge.firmware_host.runtime import load_runtime

    files = []
    for model in export_model(run_dir, out_dir, config.export.formats, int8=True, data_dir=data_dir, log=log, load_runtime=load_runtime):
        if model.precision == "int8":
            score(model.path)
            files.append(model.path)
    return files


def _available_targets(names: tuple[str, ...], log) -> tuple[list, list[str]]:
    """The targets that can run now, and why each other one is skipped (emulated Pis not built here)."""
    from ecgedge.deploy.targets.qemu import QemuTarget
    from ecgedge.deploy.targets.spec import parse_targets
    from ecgedge.errors import EcgEdgeError

    ready, skipped = [], []
    for t in parse_targets(",".join(names)):
        try:
            t.preflight()
            if isinstance(t, QemuTarget) and not t.built:
                raise EcgEdgeError("no emulated root file system built here (`ecgedge target build`, as root)")
        except EcgEdgeError as exc:
            skipped.append(f"{t.name}: {exc}")
            log(f"validation skips {t.name}: {exc}")
            continue
        ready.append(t)
    return ready, skipped


def bundle_and_validate(options, dirs: PipelineDirs, export_dir: Path, data_dir: Path, log) -> dict:
    """Sign the int8 files of ``export_dir`` into ``dirs.bundle`` and validate that bundle; the validation's JSON."""
    from ecgedge.deploy.bundle import build_bundle
    from ecgedge.deploy.keys import generate_keys, load_private_key
    from ecgedge.firmware_host.signing import key_id
    from ecgedge.validate.bundle_models import validate_bundle
    from ecgedge.validate.target_report import write_bundle_validation

    if options.key:
        key = Path(options.key).expanduser()
    else:  # the job's own pair, made once: a rerun signs with the same key
        key = dirs.keys / "job.key"
        if not key.is_file():
            generate_keys(dirs.keys, "job")
            log(f"made a signing key pair for this job in {dirs.keys} (for trying the bundle out; sign releases with your own key)")
    int8 = [p.name for p in sorted(export_dir.iterdir()) if p.suffix in (".onnx", ".tflite") and "-int8" in p.stem]
    built = build_bundle(export_dir, dirs.bundle, key, models=int8, data_dir=data_dir, n_golden=options.golden, profile=options.profile, warn=log)
    log(f"bundle {built.version}: {built.size_bytes / 1e6:.2f} MB, {len(int8)} model file(s), signed by key {built.key_id}")
    targets, skipped = _available_targets(options.targets, log)
    public = load_private_key(key).public_key()  # verified against the signer's key, as its gateways will
    result, runs, beats = validate_bundle(dirs.bundle, targets, keys={key_id(public): public}, subset=options.subset, data_dir=data_dir, profile=options.profile, log=log)
    result["skipped_targets"] = skipped
    write_bundle_validation(dirs.validation, result, runs, beats)
    log(f"validation: {'passed' if result['passed'] else 'FAILED: ' + '; '.join(result['failures'])} ({dirs.validation / 'report.md'})")
    return result
