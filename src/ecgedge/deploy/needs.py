"""What a bundle's model needs on a gateway: file size, multiply-accumulates per beat, peak memory.

Peak memory is measured, not estimated: :func:`measure_on_host` runs the gateway's own check
(:mod:`ecgedge.firmware_host.check`) over the bundle's golden beats in a fresh interpreter, at the
gateway's micro-batch size, and reads its high-water resident set. That is the host's figure
(x86 runtime build); ``ecgedge validate --target qemu-aarch64:CPU`` measures it on an emulated
Pi, and ``--profile`` compares either with a board's budget
(:mod:`ecgedge.deploy.targets.profiles`).
"""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ["GATEWAY_BATCH", "measure_on_host", "model_needs"]

#: beats per runtime call in the measurement: the largest micro-batch the streaming gateway makes
GATEWAY_BATCH = 64
MB = 1024 * 1024
CHECK_MODULE = "ecgedge.firmware_host.check"


def measure_on_host(model: Path, inputs: Path, batch: int = GATEWAY_BATCH) -> dict:
    """The check's report for ``model`` on ``inputs`` (npz with ``images`` [+ ``rr``]), run in a new interpreter."""
    from ecgedge.deploy.targets.base import json_answer, run_module
    from ecgedge.deploy.targets.local import LocalTarget

    host = LocalTarget()
    with host.workdir() as tmp:
        res = run_module(host, CHECK_MODULE, [str(model), "--inputs", str(inputs), "-o", f"{tmp}/out.npz", "--batch", str(batch)])
    return json_answer(res.stdout)


def model_needs(model: Path, complexity: dict | None, report: dict) -> dict:
    """The manifest's ``needs`` of one model file, from its size, metadata and a host measurement."""
    return {
        "size_bytes": Path(model).stat().st_size,
        "macs_per_beat": (complexity or {}).get("macs"),
        "params": (complexity or {}).get("params"),
        "peak_rss_mb": round(report["peak_rss_bytes"] / MB, 1),
        "measured_on": f"host {platform.machine()} ({report['backend']} {report.get('backend_version') or ''}".rstrip() + ")",
        "batch": report["batch"],
        "ms_per_beat_host": report["ms_per_beat"],
    }
