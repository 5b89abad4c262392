"""Short names for the models of a report, read from what each model records about itself.

A table column or a plot point says what the model *is* ("float", "int8 PTQ (ONNX)",
"pruned 50% + QAT int8 (TFLite)"), not the 40-character name of its file: a run's ``config.json``
says whether and how it was compressed, an exported file's scores (``FILE.metrics.json``) say its
format, precision, quantisation and how its source run was compressed. Where two models would get
the same label (runs of two recipes, say), each of them is prefixed with its run's name.
"""

from __future__ import annotations

from pathlib import Path

from ecgedge.run_dirs import compression, is_model_file

FORMAT_NAMES = {"onnx": "ONNX", "tflite": "TFLite", "torch": "torch"}


def entry_name(path: Path, config: dict | None) -> str:
    """The name of a report entry: a run's name, or a model file's name without its suffix."""
    path = Path(path)
    if is_model_file(path):
        return path.stem
    name = (config or {}).get("name")
    return str(name) if name not in (None, "") else path.resolve().name


def model_label(path: Path, config: dict | None, metrics: dict) -> str:
    """What the model is, in a few words; a run that records no training settings keeps its name."""
    path = Path(path)
    if is_model_file(path):
        comp = metrics.get("compression") or {}
        quantization = metrics.get("quantization")
        if metrics.get("precision") == "int8":
            kind = "QAT int8" if comp.get("qat") or quantization == "qat" else "int8 PTQ"
        else:
            kind = "float"
        fmt = str(metrics.get("format") or path.suffix.lstrip("."))
        return f"{_compressed(comp, kind)} ({FORMAT_NAMES.get(fmt, fmt)})"
    if not isinstance((config or {}).get("train"), dict):
        return entry_name(path, config)
    comp = compression(config) or {}
    return _compressed(comp, "QAT" if comp.get("qat") else "float")


def _compressed(comp: dict, kind: str) -> str:
    prune = comp.get("prune")
    if not prune:
        return kind
    pruned = f"pruned {prune:.0%}"
    return pruned if kind == "float" else f"{pruned} + {kind}"


def report_labels(entries: list[tuple[Path, dict | None, dict]]) -> list[str]:
    """One label per (path, config, metrics) entry, unique within the report."""
    labels = [model_label(p, c, m) for p, c, m in entries]
    names = [entry_name(p, c) for p, c, _ in entries]
    out = []
    for label, name in zip(labels, names):
        clash = labels.count(label) > 1 and label != name
        out.append(f"{name}: {label}" if clash else label)
    # still equal (the same run twice, say): number them
    return [f"{label} [{i}]" if out.count(label) > 1 else label for i, label in enumerate(out, 1)]
