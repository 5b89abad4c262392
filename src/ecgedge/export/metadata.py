"""The metadata every exported file carries, and how it is written into ONNX and TFLite files.

One JSON object (schema ``ecgedge.model/1``) under the key ``"ecgedge"``: ONNX ``metadata_props``
(plus a few flat keys), TFLite flatbuffer ``Model.metadata`` (a named buffer). Readers live in
:mod:`ecgedge.firmware_host.metadata` (no torch, no onnx package needed).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ecgedge import __version__
from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.preprocess.rhythm import N_RHYTHM, RHYTHM_FEATURES
from ecgedge.model_files import METADATA_KEY, sidecar_path

SCHEMA = "ecgedge.model/1"

CLASS_DESCRIPTIONS = {
    "N": "normal, bundle branch block, atrial/nodal escape (AAMI N)",
    "S": "supraventricular ectopic (AAMI S)",
    "V": "ventricular ectopic (AAMI V)",
    "F": "fusion of ventricular and normal (AAMI F)",
    "Q": "paced, fusion of paced and normal, unclassifiable (AAMI Q)",
}

RR_INPUT = {
    "name": "rr",
    "dtype": "float32",
    "shape": ["B", N_RHYTHM],
    "meaning": "rhythm features of the beat (RR intervals in seconds and their ratios), in the order of 'features'",
    "features": list(RHYTHM_FEATURES),
    "computed_by": "ecgedge.preprocess.rhythm.rhythm_features",
}


def image_input(h: int, w: int, batch, quantization: dict | None = None) -> dict:
    d = {
        "name": "image",
        "dtype": "float32",
        "shape": [batch, 1, h, w],
        "meaning": "STFT spectrogram image as float = uint8 / 255 (ecgedge.preprocess.beats_to_images)",
        "range": [0.0, 1.0],
    }
    if quantization:
        d.update(quantization)
    return d


def build_metadata(
    source, *, fmt: str, precision: str, inputs: list[dict], outputs: list[dict], export: dict, calibration: dict | None = None, complexity: dict | None = None
) -> dict:
    """The metadata object of one exported file (``source`` is an :class:`ExportSource`)."""
    from ecgedge.data.run_data import records_of, sources_digest
    from ecgedge.run_dirs import compression

    meta = source.meta
    train = meta.get("train") or {}
    sources = (meta.get("dataset") or {}).get("sources") or {}
    classes = list(AAMI_CLASSES[: source.num_classes])
    return {
        "schema": SCHEMA,
        "ecgedge_version": __version__,
        "format": fmt,
        "precision": precision,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "classes": classes,
        "class_descriptions": {c: CLASS_DESCRIPTIONS.get(c, c) for c in classes},
        "num_classes": source.num_classes,
        "arch": source.arch,
        "rr_features": source.rr_features,
        "complexity": complexity,  # {"params", "macs"} of the network, per beat
        "preprocess": source.preprocess,
        "inputs": inputs,
        "outputs": outputs,
        "source": {
            "run_dir": str(source.run_dir),
            "run_name": source.name,
            "checkpoint": str(source.checkpoint),
            "checkpoint_sha256": source.checkpoint_sha256,
            "epoch": source.epoch,
            "val_metrics": source.extra.get("val_metrics"),
            "compression": compression(meta),  # None: a trained run; else {"prune", "qat"}
        },
        "split": {
            "name": train.get("split", "inter-patient"),
            "seed": train.get("seed", 0),
            "val_fold": train.get("val_fold", 0),
            "val_records": list((meta.get("split") or {}).get("val_records") or []),
        },
        "dataset": {
            "records": records_of(sources),
            "sources_sha256": sources_digest(sources) if sources else None,
            "data_dir": meta.get("data_dir"),
        },
        "calibration": calibration,
        "export": export,
    }


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(meta: dict) -> str:
    return json.dumps(_jsonable(meta), sort_keys=False, allow_nan=False)


def write_onnx_metadata(path: Path, meta: dict) -> None:
    """Set ``metadata_props`` (key ``ecgedge`` = the JSON, plus flat keys) and save in place."""
    import onnx

    model = onnx.load(str(path))
    flat = {
        METADATA_KEY: dumps(meta),
        "classes": ",".join(meta["classes"]),
        "ecgedge_version": meta["ecgedge_version"],
        "source_checkpoint_sha256": meta["source"]["checkpoint_sha256"],
        "run_dir": meta["source"]["run_dir"],
        "precision": meta["precision"],
    }
    keep = [p for p in model.metadata_props if p.key not in flat]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in flat.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    model.doc_string = f"ecgedge {meta['ecgedge_version']} {meta['arch']} beat classifier ({meta['precision']}); classes {','.join(meta['classes'])}"
    model.producer_name = model.producer_name or "ecgedge"
    tmp = path.with_suffix(path.suffix + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)


def write_tflite_metadata(path: Path, meta: dict) -> str:
    """Embed the JSON as flatbuffer metadata ``ecgedge``; returns where it went.

    Falls back to a sidecar ``<file>.json`` (returns ``"sidecar"``) when the flatbuffer tools of
    ai-edge-litert are not importable.
    """
    blob = dumps(meta).encode("utf-8")
    try:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils
    except ImportError:
        sidecar_path(path).write_bytes(blob)
        return "sidecar"
    model = flatbuffer_utils.read_model(str(path))
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != METADATA_KEY]
    buf = schema.BufferT()
    buf.data = np.frombuffer(blob, dtype=np.uint8).copy()
    model.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    tmp = path.with_suffix(path.suffix + ".tmp")
    flatbuffer_utils.write_model(model, str(tmp))
    tmp.replace(path)
    return "flatbuffer"


def _name(n) -> str:
    return n.decode() if isinstance(n, bytes) else str(n)
