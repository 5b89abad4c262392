"""Run a model over given preprocessed beats on the gateway itself: logits, classes, time, peak memory.

    python -m ecgedge.firmware_host.check MODEL --inputs inputs.npz -o outputs.npz [--batch 64] [--threads N]

What ``ecgedge validate --target ...`` runs on each target (the host, an emulated Pi, a real one):
the beats are prepared on the host (``inputs.npz``: ``images`` uint8 ``[N, H, W]``, optional ``rr``
float32 ``[N, N_RHYTHM]``), so what differs between targets is only the runtime and the CPU that
execute the model. ``outputs.npz`` holds ``logits`` float32 ``[N, C]``, ``classes`` int64 ``[N]``
and ``report``, a JSON string: load and inference seconds, peak resident memory, the runtime and
the machine. The same JSON is printed as the last line on stdout.

Peak memory is the high-water resident set (``getrusage``) of a worker process that this one
starts, read after the imports, after loading the model and after inference. Linux keeps a
process's high-water mark across ``exec`` and starts it at the resident size of the process it
was forked from, so measured in the launched process itself it would report its launcher's
size (the validating host process: measured 229-247 MB whatever the model). The worker is forked
from this small process instead, so the floor is a bare Python's size. Under qemu-user the worker
is the emulator, so there it also counts qemu's translated-code cache: an upper bound of what a
real Pi uses.

Gateway-only imports (numpy and the model's runtime): argparse, no typer; no wfdb, no torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["run_check", "main"]

_WORKER = "ECGEDGE_CHECK_WORKER"


def _peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: kilobytes


def _read_inputs(path: Path):
    import numpy as np

    from ecgedge.errors import EcgEdgeError

    try:
        with np.load(path, allow_pickle=False) as data:
            images = np.asarray(data["images"])
            rr = np.asarray(data["rr"], np.float32) if "rr" in data.files else None
    except (OSError, ValueError, KeyError) as exc:
        raise EcgEdgeError(f"{path} is not an inputs file with an 'images' array ({exc}).") from None
    if images.dtype != np.uint8 or images.ndim != 3:
        raise EcgEdgeError(f"{path}: 'images' must be uint8 [N, H, W], got {images.dtype} {list(images.shape)}.")
    if rr is not None and len(rr) != len(images):
        raise EcgEdgeError(f"{path}: 'rr' has {len(rr)} rows for {len(images)} images.")
    return images, rr


def _runtime_version(backend: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    dist = {"onnxruntime": "onnxruntime", "ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}.get(backend)
    try:
        return version(dist) if dist else None
    except PackageNotFoundError:
        return None


def run_check(model: Path, inputs: Path, output: Path, batch: int = 64, threads: int | None = None) -> dict:
    """Classify the beats of ``inputs`` with ``model``; write ``output`` (npz) and return its report."""
    import numpy as np

    from ecgedge.atomic import atomic_path
    from ecgedge.errors import EcgEdgeError
    from ecgedge.firmware_host.runtime import load_runtime

    if batch < 1:
        raise EcgEdgeError(f"--batch is {batch}; it must be at least 1.")
    rss_imports = _peak_rss_bytes()
    images, rr = _read_inputs(Path(inputs))
    t0 = time.perf_counter()
    rt = load_runtime(model, num_threads=threads)
    load_s = time.perf_counter() - t0
    rss_loaded = _peak_rss_bytes()
    parts, batch_s = [], []
    for start in range(0, len(images), batch):
        t = time.perf_counter()
        parts.append(rt.predict(images[start : start + batch], None if rr is None else rr[start : start + batch]))
        batch_s.append(time.perf_counter() - t)
    logits = np.concatenate(parts) if parts else np.zeros((0, rt.num_classes), np.float32)
    infer_s = float(sum(batch_s))
    report = {
        "model": Path(model).name,
        "beats": len(images),
        "batch": batch,
        "threads": threads,
        "backend": rt.backend,
        "backend_version": _runtime_version(rt.backend),
        "numpy_version": np.__version__,
        "format": rt.format,
        "precision": rt.precision,
        "load_s": round(load_s, 4),
        "inference_s": round(infer_s, 4),
        "first_batch_s": round(batch_s[0], 4) if batch_s else None,
        "ms_per_beat": round(1e3 * infer_s / len(images), 4) if len(images) else None,
        "peak_rss_bytes": _peak_rss_bytes(),
        "peak_rss_after_imports_bytes": rss_imports,
        "peak_rss_after_load_bytes": rss_loaded,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "emulated_cpu": os.environ.get("QEMU_CPU"),  # qemu-user reads it; None on real hardware
    }
    with atomic_path(Path(output)) as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to the temporary name
            np.savez(fh, logits=logits.astype(np.float32), classes=logits.argmax(1).astype(np.int64), report=np.array(json.dumps(report)))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgedge.firmware_host.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="exported .onnx or .tflite file")
    parser.add_argument("--inputs", type=Path, required=True, help="npz with images uint8 [N, H, W] and optional rr float32 [N, N_RHYTHM]")
    parser.add_argument("-o", "--output", type=Path, required=True, help="npz to write: logits, classes, report")
    parser.add_argument("--batch", type=int, default=64, help="beats per runtime call (the gateway's micro-batch; default 64)")
    parser.add_argument("--threads", type=int, default=None, help="runtime threads (default: the runtime's choice)")
    args = parser.parse_args(argv)
    if os.environ.get(_WORKER) != "1":  # measure in a fresh child: see the module docstring
        argv = sys.argv[1:] if argv is None else argv
        return subprocess.run([sys.executable, "-m", "ecgedge.firmware_host.check", *argv], env={**os.environ, _WORKER: "1"}).returncode
    from ecgedge.errors import EcgEdgeError

    try:
        report = run_check(args.model, args.inputs, args.output, args.batch, args.threads)
    except EcgEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
