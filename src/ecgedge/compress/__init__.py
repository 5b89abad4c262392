"""Model compression: structured channel pruning (torch-pruning) and quantisation-aware
fine-tuning (torchao PT2E), producing run directories that evaluate / report / export read.

    from ecgedge.compress import compress_run
    out = compress_run(Path("runs/r1"), Path("runs/r1-p50-qat"), prune=0.5, qat=True, epochs=2)

Pieces: :func:`prune_model` / :func:`complexity` (:mod:`.prune`), :func:`finetune`
(:mod:`.finetune`), :func:`prepare_qat` / :func:`convert_qat` / :func:`export_qat_onnx` /
:func:`export_qat_tflite` (:mod:`.qat`), and the loaders :func:`model_from_checkpoint` /
:func:`load_checkpoint_model` (:mod:`.rebuild`, no torch-pruning needed to load a pruned model).
Heavy imports happen on first use.
"""

from ecgedge.compress.rebuild import channel_spec, load_checkpoint_model, model_from_checkpoint, model_from_spec
from ecgedge.compress.stage import compress_run


def __getattr__(name):
    if name in ("prune_model", "complexity", "check_ratio"):
        from ecgedge.compress import prune

        return getattr(prune, name)
    if name == "finetune":
        from ecgedge.compress.finetune import finetune

        return finetune
    if name in ("prepare_qat", "convert_qat", "export_qat_onnx", "export_qat_tflite", "load_qat_program", "QATModel"):
        from ecgedge.compress import qat

        return getattr(qat, name)
    raise AttributeError(name)


__all__ = [
    "compress_run",
    "channel_spec",
    "model_from_spec",
    "model_from_checkpoint",
    "load_checkpoint_model",
    "prune_model",
    "complexity",
    "check_ratio",
    "finetune",
    "prepare_qat",
    "convert_qat",
    "export_qat_onnx",
    "export_qat_tflite",
    "load_qat_program",
    "QATModel",
]
