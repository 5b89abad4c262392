"""Does an exported file still classify like the float model? The export self-check's comparison.

:func:`compare_outputs`: exported model vs torch logits on a batch; fp32 must match within a
max-abs-logit tolerance, int8 must agree on the top-1 class for a minimum share of beats.
Scoring a model file on a whole set is :mod:`ecgedge.validate.scoring`.
"""

from __future__ import annotations

import numpy as np

from ecgedge.errors import EcgEdgeError

#: Default self-check tolerances (see :func:`compare_outputs`).
FP32_MAX_ABS_LOGIT_DIFF = 1e-3
INT8_MIN_TOP1_AGREEMENT = 0.97


def compare_outputs(
    logits: np.ndarray,
    reference: np.ndarray,
    precision: str,
    fp32_atol: float = FP32_MAX_ABS_LOGIT_DIFF,
    int8_min_agreement: float = INT8_MIN_TOP1_AGREEMENT,
) -> dict:
    """Numbers comparing ``logits`` with the float ``reference``; ``passed`` against the tolerance."""
    logits, reference = np.asarray(logits, np.float32), np.asarray(reference, np.float32)
    if logits.shape != reference.shape:
        raise EcgEdgeError(f"output shape {list(logits.shape)} differs from the float model's {list(reference.shape)}")
    diff = np.abs(logits - reference)
    agree = float(np.mean(logits.argmax(1) == reference.argmax(1)))
    out = {
        "n_beats": int(len(logits)),
        "max_abs_logit_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_logit_diff": float(diff.mean()) if diff.size else 0.0,
        "top1_agreement": agree,
    }
    if precision == "fp32":
        out["criterion"] = f"max |logit - torch logit| <= {fp32_atol:g}"
        out["passed"] = bool(out["max_abs_logit_diff"] <= fp32_atol)
    else:
        out["criterion"] = f"top-1 agreement with torch >= {int8_min_agreement:.2%}"
        out["passed"] = bool(agree >= int8_min_agreement)
    return out
