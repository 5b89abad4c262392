"""Golden vectors: a few hundred preprocessed beats and the host's exact outputs for each model file.

The beats are the model's own test set (DS2 for the inter-patient split), rebuilt from its
metadata's preprocessing, records and MIT-BIH checksums (:func:`ecgedge.data.run_data.load_beats`)
and sampled with the export's seeded class-stratified rule (rare classes first, up to a fifth each,
the rest N), so S, V and F beats are exercised too. Beats whose two highest host logits are within
twice a model's self-test tolerance are left out (near ties that a difference inside the tolerance
could flip; see :mod:`ecgedge.firmware_host.selftest`), so the gateway can demand equal classes.

Without MIT-BIH (the metadata's data directory is absent and none is given) the beats are seeded
pseudo-random images with a regular rhythm, marked ``"synthetic"`` in the manifest: they still
prove the gateway computes what the host computes, but not on ECG-shaped inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.bundle_format import logits_key
from ecgedge.firmware_host.selftest import tolerance_for
from ecgedge.preprocess.rhythm import N_RHYTHM, REGULAR_RHYTHM


@dataclass
class Golden:
    images: np.ndarray  # uint8 [n, H, W]
    rr: np.ndarray | None  # float32 [n, N_RHYTHM]
    labels: np.ndarray  # int64 [n]; -1 for synthetic beats
    description: dict
    logits: dict[str, np.ndarray] = field(default_factory=dict)  # bundle file name -> float32 [n, C]
    tolerances: dict[str, dict] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"images": self.images, "labels": self.labels, **{logits_key(k): v for k, v in self.logits.items()}}
        if self.rr is not None:
            out["rr"] = self.rr
        return out


def onnx_output_step(path: Path) -> float | None:
    """Scale of the DequantizeLinear that produces an ONNX model's output, if it has one."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    model = onnx.load(str(path), load_external_data=False)
    producer = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    node = producer.get(model.graph.output[0].name)
    while node is not None and node.op_type in ("Reshape", "Flatten", "Identity", "Squeeze"):
        node = producer.get(node.input[0])
    if node is None or node.op_type != "DequantizeLinear" or node.input[1] not in inits:
        return None
    scale = numpy_helper.to_array(inits[node.input[1]])
    return float(scale.max()) if scale.size else None


def _dataset_beats(meta: dict, data_dir: Path, n: int, seed: int):
    from ecgedge.data.run_data import load_beats
    from ecgedge.data.splits import make_split
    from ecgedge.export.calibration import _stratified

    ds_meta, split_meta = meta.get("dataset") or {}, meta.get("split") or {}
    dataset = load_beats(meta["preprocess"], ds_meta.get("records") or None, ds_meta.get("sources_sha256"), data_dir)
    split = make_split(split_meta.get("name", "inter-patient"), dataset.records, dataset.labels, int(split_meta.get("seed", 0)), int(split_meta.get("val_fold", 0)))
    pool, set_name = np.asarray(split.test), split.set_names[1]
    if len(pool) == 0:  # a model trained on DS1 records only: its own beats still test the runtime
        pool, set_name = np.arange(len(dataset)), "all prepared beats (the model's records hold no test-set beat)"
    labels = dataset.labels.astype(np.int64)
    idx = _stratified(np.random.default_rng(seed), pool, labels, n)
    return np.asarray(dataset.images[idx]), np.asarray(dataset.rr[idx], np.float32), labels[idx], {
        "source": "MIT-BIH",
        "set": set_name,
        "records": sorted(set(dataset.records[idx].tolist())),
        "sampling": f"seeded ({seed}), up to n/5 beats of each class, the rest N",
    }


def _synthetic_beats(image_size: tuple[int, int], n: int, seed: int, why: str):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *image_size), dtype=np.uint8)
    rr = (np.asarray(REGULAR_RHYTHM, np.float32) * rng.uniform(0.7, 1.3, (n, N_RHYTHM))).astype(np.float32)
    return images, rr, np.full(n, -1, np.int64), {"source": "synthetic", "why": why, "sampling": f"seeded ({seed}) uniform uint8 images, regular rhythm x U(0.7, 1.3)"}


def golden_vectors(
    models: list[tuple[str, Path, object]],
    meta: dict,
    data_dir: Path | None,
    n: int = 300,
    seed: int = 0,
    warn: Callable[[str], None] = lambda _m: None,
) -> Golden:
    """Golden beats for ``models`` (bundle file name, path, loaded gateway runtime) of one export."""
    if n < 1:
        raise EcgEdgeError(f"--golden {n}: at least one golden beat is needed.")
    where = data_dir or (meta.get("dataset") or {}).get("data_dir")
    size = tuple((meta.get("preprocess") or {}).get("spectrogram", {}).get("image_size") or models[0][2].input_size)
    if data_dir is None and (not where or not Path(where).is_dir()):
        why = f"MIT-BIH not found at {where}" if where else "the model records no data directory"
        warn(f"warning: {why}; golden vectors are synthetic images (pass --data-dir DIR for real DS2 beats).")
        images, rr, labels, desc = _synthetic_beats(size, n, seed, why)
    else:
        images, rr, labels, desc = _dataset_beats(meta, Path(where), n, seed)
    uses_rr = any(rt.rr_features for _, _, rt in models)
    keep = np.ones(len(images), bool)
    tolerances = {}
    for name, path, rt in models:
        fmt, precision = rt.format, rt.precision
        tolerances[name] = tolerance_for(fmt, precision, onnx_output_step(path) if (fmt, precision) == ("onnx", "int8") else None)
        out = rt.predict(images, rr if rt.rr_features else None)
        top2 = np.sort(out, axis=1)[:, -2:]
        keep &= (top2[:, 1] - top2[:, 0]) > 2 * tolerances[name]["max_abs_logit_diff"]
    if not keep.any():
        raise EcgEdgeError("every candidate golden beat is a near tie between two classes; use more golden beats (--golden N).")
    counts = {c: int(np.sum(labels[keep] == i)) for i, c in enumerate(AAMI_CLASSES)} if desc["source"] == "MIT-BIH" else None
    desc.update({"n": int(keep.sum()), "near_ties_left_out": int((~keep).sum()), "class_counts": counts})
    images, rr = images[keep], (rr[keep] if uses_rr else None)
    # the outputs stored are those of exactly the golden inputs, batched as the gateway will batch them
    logits = {name: rt.predict(images, rr if rt.rr_features else None) for name, _, rt in models}
    return Golden(images=images, rr=rr, labels=labels[keep], description=desc, logits=logits, tolerances=tolerances)
