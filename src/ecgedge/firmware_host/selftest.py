"""Golden-vector self-test: the gateway's own runtime must reproduce the host's outputs.

Every model file of a bundle is loaded with :func:`ecgedge.firmware_host.runtime.load_runtime` and
run over the bundle's golden beats; its logits are compared with the host's, stored in the bundle,
under the tolerance the (signed) manifest states for that file, and the predicted classes must be
equal on every golden beat. The tolerances the host writes come from :func:`tolerance_for`, set
from what was measured across Arm cores (issue 11: 2,000 DS2 beats, Cortex-A53/A72/A76 under
qemu against the x86 host):

* TFLite int8: 0, bit-identical outputs (integer kernels; measured identical on all three cores);
* ONNX int8: 0.15, twice the largest difference measured (0.074, one output quantisation step of
  the QAT file: a requantisation rounding the other way); or twice the model's own output step
  when that is larger;
* fp32 (ONNX and TFLite): 1e-4, ten times the largest difference measured (1e-5; float kernels
  sum in another order on Arm).

Equal classes are demanded strictly because the host leaves out of the golden set every beat
whose two highest logits are within twice the tolerance (a near tie that a difference inside the
tolerance could flip: one such F/V tie flipped in 2,000 beats for the post-training ONNX file).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.bundle_format import GOLDEN, logits_key
from ecgedge.firmware_host.runtime import load_runtime

#: largest |logit - host logit| accepted, per (format, precision), before any model-specific step
TOLERANCES = {
    ("tflite", "int8"): 0.0,
    ("onnx", "int8"): 0.15,
    ("onnx", "fp32"): 1e-4,
    ("tflite", "fp32"): 1e-4,
}
WHY = {
    ("tflite", "int8"): "bit-identical (integer kernels; identical on Cortex-A53/A72/A76 vs x86)",
    ("onnx", "int8"): "2 x the largest difference measured on Cortex-A53/A72/A76 vs x86 (0.074, one output quantisation step)",
    ("onnx", "fp32"): "10 x the largest fp32 difference measured on Cortex-A53/A72/A76 vs x86 (1e-5)",
    ("tflite", "fp32"): "10 x the largest fp32 difference measured on Cortex-A53/A72/A76 vs x86 (1e-5)",
}


def tolerance_for(fmt: str, precision: str, output_step: float | None = None) -> dict:
    """``{"max_abs_logit_diff", "classes", "why"}`` for a model file (``output_step``: ONNX int8 output scale)."""
    key = (fmt, precision)
    if key not in TOLERANCES:
        raise EcgEdgeError(f"no self-test tolerance is defined for {fmt} {precision} models.")
    tol, why = TOLERANCES[key], WHY[key]
    if output_step and key == ("onnx", "int8") and 2 * output_step > tol:
        tol, why = 2 * float(output_step), f"2 x this model's output quantisation step ({output_step:.4g})"
    return {"max_abs_logit_diff": tol, "classes": "equal on every golden beat", "why": why}


@dataclass(frozen=True)
class Comparison:
    file: str
    n: int
    max_abs_logit_diff: float
    tolerance: float
    class_mismatches: int
    passed: bool


def compare(file: str, got: np.ndarray, expected: np.ndarray, tolerance: float) -> Comparison:
    if got.shape != expected.shape:
        return Comparison(file, len(expected), float("inf"), tolerance, len(expected), False)
    diff = float(np.max(np.abs(got.astype(np.float64) - expected))) if got.size else 0.0
    within = np.array_equal(got, expected) if tolerance == 0 else diff <= tolerance
    mismatches = int(np.sum(got.argmax(1) != expected.argmax(1))) if got.size else 0
    return Comparison(file, len(expected), diff, tolerance, mismatches, bool(within and mismatches == 0))


def self_test(bundle_dir: Path, manifest: dict, runtimes: dict | None = None) -> list[Comparison]:
    """Run every model of the extracted bundle in ``bundle_dir`` over the golden beats.

    ``runtimes``: already loaded runtimes by model file (the service tests the very object it serves with).
    """
    bundle_dir = Path(bundle_dir)
    with np.load(bundle_dir / GOLDEN, allow_pickle=False) as golden:
        images = golden["images"]
        rr = golden["rr"] if "rr" in golden.files else None
        expected = {m["file"]: golden[logits_key(m["file"])] for m in manifest["models"] if logits_key(m["file"]) in golden.files}
    results = []
    for m in manifest["models"]:
        name = m["file"]
        if name not in expected:
            raise EcgEdgeError(f"{GOLDEN} holds no host outputs for {name}; the bundle is malformed.")
        runtime = (runtimes or {}).get(name) or load_runtime(bundle_dir / name)
        got = runtime.predict(images, rr if runtime.rr_features else None)
        results.append(compare(name, got, expected[name], float(m["golden_tolerance"]["max_abs_logit_diff"])))
    return results


def failure_message(results: list[Comparison]) -> str | None:
    bad = [r for r in results if not r.passed]
    if not bad:
        return None
    return "; ".join(
        f"{r.file}: max|dlogit| {r.max_abs_logit_diff:.3g} (tolerance {r.tolerance:.3g}), {r.class_mismatches} of {r.n} golden beats classified differently"
        for r in bad
    )


def as_dicts(results: list[Comparison]) -> list[dict]:
    return [asdict(r) for r in results]
