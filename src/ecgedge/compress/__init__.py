"""Model compression: structured channel pruning (torch-pruning) and quantisation-aware
fine-tuning (torchao PT2E), producing run directories that evaluate / report / export read.

    from ecgedge.compress import compress_run
    out = compress_run(Path("runs/r1"), Path("runs/r1-p50-qat"), prune=0.5, qat=True, epochs=2)

Pieces: :func:`prune_model` / :func:`complexity` (:mod:`.prune`), :func:`finetune`
(:mod:`.finetune`), :func:`prepare_qat` / :func:`convert_qat` (:mod:`.qat`). Loading what this
writes (pruned and QAT checkpoints) is :mod:`ecgedge.models.checkpoint`'s job (no torch-pruning
needed to load a pruned model); the int8 files of a QAT run are :mod:`ecgedge.export.qat_formats`'.
Heavy imports happen on first use.
"""

from ecgedge.compress.stage import compress_run


def __getattr__(name):
    if name in ("prune_model", "complexity", "check_ratio"):
        from ecgedge.compress import prune

        return getattr(prune, name)
    if name == "finetune":
        from ecgedge.compress.finetune import finetune

        return finetune
    if name in ("prepare_qat", "convert_qat"):
        from ecgedge.compress import qat

        return getattr(qat, name)
    raise AttributeError(name)


__all__ = [
    "compress_run",
    "prune_model",
    "complexity",
    "check_ratio",
    "finetune",
    "prepare_qat",
    "convert_qat",
]
