"""Validate an exported model on targets: the same beats through the gateway runtime on each, compared with the host.

    result = validate_on_targets(model, beats, parse_targets("host,qemu-aarch64:cortex-a72"))

The beats are prepared once on the host (:func:`select_beats`: the model's own preprocessing and
split, rebuilt from its metadata), so a target differs from the host only in the runtime build
and the CPU that execute the model. Each target runs :mod:`ecgedge.firmware_host.check` on them
and returns logits, time and peak memory; the host's run is the reference.

A target passes when its logits are within :data:`TOLERANCES` of the host's and every beat gets
the host's class. Its AAMI metrics (the ``ecgedge evaluate`` schema) are computed from its own
predictions. With a device profile, the largest peak memory measured on an emulated or real
target (the host's when none ran) must fit the profile's budget.

Takes a model file and prepared beats, so a bundle's model and golden vectors fit the same call.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgedge.deploy.needs import CHECK_MODULE
from ecgedge.deploy.targets import Log, Target, run_module
from ecgedge.errors import EcgEdgeError

__all__ = ["TOLERANCES", "Beats", "TargetRun", "stratified_subset", "select_beats", "run_on_target", "compare", "validate_on_targets"]


@dataclass(frozen=True)
class Tolerance:
    max_abs_logit_diff: float
    why: str


# Largest |logit(target) - logit(host)| accepted per (format, precision), from measurement
# (docs/results/targets/): the main job's ResNet-18 exports, 500 DS2 beats, qemu cortex-a53 /
# a72 / a76 against an x86-64 host with AVX-512 VNNI.
# * TFLite int8 (XNNPACK): identical on every CPU, also on an emulated AVX2 x86 (Haswell).
# * ONNX int8 with 7-bit weights (QAT export): identical everywhere too. With full 8-bit weights
#   (post-training, nncf): ARM differs from the VNNI host by at most 0.059 on 139 of 500 beats,
#   one class flipped at a near tie (host top-2 margin 0.017). An AVX2 host without VNNI differs
#   by 0.43, 6 classes flipped: its u8 x s8 kernels saturate 16-bit sums. The tolerance admits
#   the first and refuses the second.
# * Float: max 1.0e-5 (ONNX) and 4.3e-6 (TFLite) on cortex-a72: summation order and vector width.
TOLERANCES = {
    ("tflite", "int8"): Tolerance(0.0, "identical: measured identical on A53, A72, A76 and an AVX2 x86"),
    ("onnx", "int8"): Tolerance(0.1, "ARM and x86-VNNI int8 kernels round a few activations differently (measured max 0.059)"),
    ("onnx", "fp32"): Tolerance(1e-4, "float sums in another order and vector width (measured max 1.0e-5)"),
    ("tflite", "fp32"): Tolerance(1e-4, "float sums in another order and vector width (measured max 4.3e-6)"),
}


def tolerance(fmt: str, precision: str) -> Tolerance:
    try:
        return TOLERANCES[(fmt, precision)]
    except KeyError:
        raise EcgEdgeError(f"no validation tolerance for {fmt} {precision} models.") from None


# --------------------------------------------------------------------------- the beats


@dataclass(frozen=True)
class Beats:
    """What every target classifies: preprocessed beats with their reference labels."""

    images: np.ndarray  # uint8 [n, H, W]
    rr: np.ndarray | None  # float32 [n, N_RHYTHM]
    labels: np.ndarray  # int64 [n]
    index: np.ndarray  # dataset indices
    split: str
    set_name: str
    set_size: int  # beats in the whole set
    subset: str | None  # how the beats were chosen from the set; None: all of them

    def save_inputs(self, path: Path) -> None:
        arrays = {"images": self.images} | ({"rr": self.rr} if self.rr is not None else {})
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)


def stratified_subset(labels: np.ndarray, n: int) -> np.ndarray:
    """Sorted positions of ``n`` beats: an equal share per class, evenly spaced within each class.

    A class with fewer beats than its share gives the rest to the larger classes, so rare classes
    (F, Q) are all there and N does not swamp the check. Deterministic: no random draw, the same
    set always gives the same subset.
    """
    labels = np.asarray(labels)
    if n < 1:
        raise EcgEdgeError(f"--subset is {n}; it must be at least 1.")
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    take, left = {}, n
    for rank, i in enumerate(np.argsort(counts, kind="stable")):  # smallest classes first
        take[classes[i]] = min(int(counts[i]), left // (len(classes) - rank))
        left -= take[classes[i]]
    picks = []
    for c in classes:
        pos = np.flatnonzero(labels == c)
        k = take[c]
        picks.append(pos[((np.arange(k) + 0.5) * len(pos) / k).astype(np.int64)] if k else pos[:0])
    return np.sort(np.concatenate(picks))


def select_beats(model: Path, metadata: dict, set_name: str = "DS2", subset: int | None = None, data_dir: Path | None = None) -> Beats:
    """The set's beats prepared as the model was trained (its metadata), optionally a stratified subset."""
    from ecgedge.validate.scoring import model_set

    dataset, split, idx = model_set(model, metadata, set_name, data_dir)
    idx = np.asarray(idx)
    labels = dataset.labels[idx].astype(np.int64)
    set_size, how = len(idx), None
    if subset is not None:
        pick = stratified_subset(labels, subset)
        if len(pick) < set_size:
            how = f"{len(pick)} of {set_size} beats, stratified by class (equal shares, evenly spaced; deterministic)"
        idx, labels = idx[pick], labels[pick]
    rr = np.asarray(dataset.rr[idx], np.float32)
    return Beats(np.asarray(dataset.images[idx]), rr, labels, idx, split.name, set_name, set_size, how)


# --------------------------------------------------------------------------- one target


@dataclass(frozen=True)
class TargetRun:
    target: dict  # the target's description (name, CPU, packages)
    logits: np.ndarray  # float32 [n, C]
    check: dict  # what the check reported: load / inference seconds, peak memory, runtime
    wall_s: float  # the whole run on the target: start, imports, load, inference

    @property
    def classes(self) -> np.ndarray:
        return self.logits.argmax(1)


def run_on_target(target: Target, model: Path, inputs: Path, batch: int = 64, timeout: float | None = None) -> TargetRun:
    """Run :mod:`ecgedge.firmware_host.check` for ``model`` on ``inputs`` (npz) on ``target``."""
    from ecgedge.model_files import sidecar_path

    model = Path(model)
    with target.workdir() as wd, tempfile.TemporaryDirectory(prefix="ecgedge-validate-") as tmp:
        target.put(model, f"{wd}/{model.name}")
        if sidecar_path(model).is_file():  # metadata of a file that cannot embed it
            target.put(sidecar_path(model), f"{wd}/{sidecar_path(model).name}")
        target.put(Path(inputs), f"{wd}/inputs.npz")
        args = [f"{wd}/{model.name}", "--inputs", f"{wd}/inputs.npz", "-o", f"{wd}/outputs.npz", "--batch", str(batch)]
        t0 = time.monotonic()
        run_module(target, CHECK_MODULE, args, timeout=timeout)
        wall = time.monotonic() - t0
        local = Path(tmp) / "outputs.npz"
        target.get(f"{wd}/outputs.npz", local)
        with np.load(local, allow_pickle=False) as out:
            logits, report = np.asarray(out["logits"], np.float32), json.loads(str(out["report"]))
    return TargetRun(target.facts(), logits, report, round(wall, 2))


def compare(reference: TargetRun, run: TargetRun, tol: Tolerance) -> dict:
    """Logits and classes of ``run`` against the reference's: the differences and the verdict."""
    if run.logits.shape != reference.logits.shape:
        raise EcgEdgeError(f"{run.target['target']} returned logits {list(run.logits.shape)}, the host {list(reference.logits.shape)}")
    diff = np.abs(run.logits.astype(np.float64) - reference.logits.astype(np.float64))
    flips = np.flatnonzero(run.classes != reference.classes)
    max_diff = float(diff.max()) if diff.size else 0.0
    top2 = np.sort(reference.logits[flips], axis=1)[:, -2:] if len(flips) else np.zeros((0, 2))
    return {
        "reference": reference.target["target"],
        "max_abs_logit_diff": max_diff,
        "mean_abs_logit_diff": float(diff.mean()) if diff.size else 0.0,
        "identical": bool(np.array_equal(run.logits, reference.logits)),
        "beats_with_any_difference": int((diff > 0).any(axis=1).sum()),
        "classes_equal": int(len(run.classes) - len(flips)),
        "class_differences": [int(i) for i in flips[:20]],  # positions in the checked beats
        # how close the host's own top two classes were there: a flip at a near tie is numerics, not a broken model
        "host_top2_margin_at_differences": [round(float(m), 6) for m in (top2[:, 1] - top2[:, 0])[:20]],
        "tolerance": tol.max_abs_logit_diff,
        "tolerance_why": tol.why,
        "passed": bool(max_diff <= tol.max_abs_logit_diff and len(flips) == 0),
    }


# --------------------------------------------------------------------------- all targets


def validate_on_targets(
    model: Path,
    beats: Beats,
    targets: list[Target],
    metadata: dict,
    *,
    profile: str | None = None,
    batch: int = 64,
    timeout: float | None = None,
    log: Log | None = None,
) -> tuple[dict, dict[str, TargetRun]]:
    """(the validation result, each target's run); the host runs first as the reference."""
    from ecgedge.atomic import sha256_file
    from ecgedge.deploy.targets.local import LocalTarget
    from ecgedge.deploy.targets.profiles import get_profile, memory_fit
    from ecgedge.evaluate import aami_metrics
    from ecgedge.validate.scoring import model_file_fields

    log = log or (lambda msg: None)
    prof = get_profile(profile) if profile else None
    model = Path(model)
    fmt = metadata.get("format", model.suffix.lstrip("."))
    tol = tolerance(fmt, str(metadata.get("precision", "fp32")))
    order = [t for t in targets if t.name == "host"] or [LocalTarget()]
    order += [t for t in targets if t.name != "host"]
    runs: dict[str, TargetRun] = {}
    entries = []
    with tempfile.TemporaryDirectory(prefix="ecgedge-validate-") as tmp:
        inputs = Path(tmp) / "inputs.npz"
        beats.save_inputs(inputs)
        for target in order:
            t0 = time.monotonic()
            target.prepare(log)
            prepare_s = round(time.monotonic() - t0, 1)
            log(f"{target.name}: {len(beats.labels)} beats through {model.name}")
            run = run_on_target(target, model, inputs, batch, timeout)
            runs[target.name] = run
            metrics = aami_metrics(beats.labels, run.classes)
            metrics.update(model_file_fields(model, metadata, beats.split, beats.set_name))
            metrics["target"] = target.name
            comparison = None if not entries else compare(runs[order[0].name], run, tol)
            entries.append({**run.target, "prepare_s": prepare_s, "wall_s": run.wall_s, "check": run.check, "metrics": metrics, "comparison": comparison})
    result = {
        "model": str(model),
        "sha256": sha256_file(model),
        "format": fmt,
        "precision": metadata.get("precision"),
        "size_bytes": model.stat().st_size,
        "split": beats.split,
        "set": beats.set_name,
        "beats": int(len(beats.labels)),
        "set_beats": beats.set_size,
        "subset": beats.subset,
        "class_counts": {c: int((beats.labels == i).sum()) for i, c in enumerate(metadata.get("classes") or ("N", "S", "V", "F", "Q"))},
        "reference": order[0].name,
        "tolerance": {"max_abs_logit_diff": tol.max_abs_logit_diff, "why": tol.why, "classes": "equal on every beat"},
        "targets": entries,
    }
    if prof is not None:
        measured = [e for e in entries if e["target"] != "host"] or entries
        worst = max(measured, key=lambda e: e["check"]["peak_rss_bytes"])
        result["profile"] = memory_fit(prof, worst["check"]["peak_rss_bytes"], worst["target"])
        result["profile"]["host_peak_mb"] = round(entries[0]["check"]["peak_rss_bytes"] / 2**20, 1)  # native, for context
    result["failures"] = failures(result)
    result["passed"] = not result["failures"]
    return result, runs


def failures(result: dict) -> list[str]:
    """One line per failed check of a validation result."""
    out = []
    for e in result["targets"]:
        c = e.get("comparison")
        if c and not c["passed"]:
            out.append(
                f"{e['target']}: max |logit - host| {c['max_abs_logit_diff']:.3g} (tolerance {c['tolerance']:.3g}), "
                f"{result['beats'] - c['classes_equal']} of {result['beats']} beats classified differently"
                + (f" (host's top-2 margin there: {', '.join(f'{m:.3g}' for m in c['host_top2_margin_at_differences'][:5])})" if c["class_differences"] else "")
            )
    fit = result.get("profile")
    if fit and not fit["fits"]:
        out.append(
            f"{Path(result['model']).name} peaks at {fit['peak_mb']:.0f} MB on {fit['measured_on']}; "
            f"the {fit['name']} profile ({fit['board']}, {fit['ram_mb']} MB) leaves {fit['budget_mb']} MB"
        )
    return out
