"""Per-beat latency of loaded runtimes, measured together so that their ratios mean something.

Each runtime classifies one beat per call (batch 1), as a gateway does. Runtimes are timed in
interleaved rounds (every runtime in turn, then the next round), so a background load that comes
and goes lands on all of them alike; a warm-up first lets allocators, kernel selection and weight
packing settle. Each call includes what the gateway pays around inference: uint8 -> float (or ->
int8 for a full-integer TFLite model) and dequantising the logits.

numpy only: usable on the gateway itself.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Latency", "measure_latency"]


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float
    beats_per_s: float  # 1 / median
    calls: int

    def as_dict(self) -> dict:
        return asdict(self)


def measure_latency(
    runtimes: dict,
    images: np.ndarray,
    rr: np.ndarray | None = None,
    *,
    calls: int = 300,
    rounds: int = 10,
    warmup: int = 20,
) -> dict[str, Latency]:
    """Median / 90th-percentile seconds per ``predict`` of one beat, for each named runtime.

    ``images``: uint8 ``[N, H, W]`` beats cycled through; ``rr``: ``[N, N_RHYTHM]`` for runtimes that take it.
    """
    images = np.asarray(images)
    if images.ndim != 3 or not len(images):
        raise ValueError(f"images must be a non-empty [N, H, W] array, got shape {images.shape}")
    per_round = max(1, int(calls) // max(1, int(rounds)))

    def args(rt, i: int):
        i %= len(images)
        return images[i][None], (rr[i][None] if (rr is not None and rt.rr_features) else None)

    for rt in runtimes.values():
        for i in range(warmup):
            rt.predict(*args(rt, i))
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    for r in range(max(1, int(rounds))):
        for name, rt in runtimes.items():
            for j in range(per_round):
                x, q = args(rt, r * per_round + j)
                t = time.perf_counter()
                rt.predict(x, q)
                times[name].append(time.perf_counter() - t)
    out = {}
    for name, ts in times.items():
        ts.sort()
        med = statistics.median(ts)
        out[name] = Latency(round(med * 1e3, 4), round(ts[int(0.9 * (len(ts) - 1))] * 1e3, 4), round(1.0 / med, 1), len(ts))
    return out
