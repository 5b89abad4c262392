"""The end-to-end job as one function: what ``ecgedge pipeline`` and ``./run main`` run.

    from ecgedge.pipeline import PipelineConfig, run_pipeline
    result = run_pipeline(PipelineConfig.preset("quick", epochs=2), Path("runs/p"), data_dir=Path("mitdb"))
    result.report            # runs/p/report/report.md
    result.metrics[result.dirs.run]["macro_f1"]

(download MIT-BIH if needed) -> prepare -> train -> evaluate on the test set -> export int8 and
score each file -> compress (prune + QAT, distilled) -> evaluate -> export int8 and score -> one
report comparing every model. Directory layout: :class:`ecgedge.run_dirs.PipelineDirs`.

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
            compress_run(dirs.run, dirs.compressed, prune=c.prune, qat=c.qat, epochs=c.epochs, data_dir=target, log=log)
        score(dirs.compressed)
        result.entries.append(dirs.compressed)
        if config.export:
            result.entries += _export_and_score(config, dirs.compressed, dirs.exports(dirs.compressed), target, log, score)

    several = len(result.entries) > 1
    r = config.report
    result.report = write_report(result.entries, dirs.report, latency=r.latency and several, threads=r.threads, html=r.html)
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
