"""Export a trained run to deployable files: one front door, a table of formats.

    from ecgedge.export import export_model
    from ecgedge.firmware_host import load_runtime
    files = export_model(Path("runs/r1"), Path("exports/r1"), formats=("onnx", "tflite"), int8=True, load_runtime=load_runtime)

writes, for each format, ``<run>-fp32<suffix>`` and (``int8=True``) ``<run>-int8<suffix>``:

========  ========  =====  ==============  ===================================================
format    suffix    int8   runtime         route
========  ========  =====  ==============  ===================================================
onnx      .onnx     yes    onnxruntime     torch.onnx (dynamo, opset 18, dynamic batch);
                                           int8: static QDQ by nncf (default) or
                                           onnxruntime, s8 per-channel weights, u8
                                           activations, float I/O
tflite    .tflite   yes    ai-edge-litert  litert-torch; int8: PT2E static quantisation,
                                           int8 input (scale 1/255, zp -128) and output
========  ========  =====  ==============  ===================================================

A checkpoint made by ``ecgedge compress --qat`` is exported to int8 with its *learned* scales
(:data:`QAT_ROUTES`: the torchao ``convert_pt2e`` graph to ONNX QDQ and to full-integer TFLite) and
no calibration; any other checkpoint gets post-training int8 calibrated on DS1 training beats.

Every file gets the ``ecgedge`` metadata (classes, preprocessing, input quantisation, version,
source checkpoint SHA-256, run dir; see :mod:`ecgedge.export.metadata`) and checks itself before
it is reported: ONNX passes ``onnx.checker``; the file is loaded with the ``load_runtime`` the
caller passes (:func:`ecgedge.firmware_host.load_runtime`: onnxruntime / LiteRT) and run on
held-out DS1 training beats next to the torch model: fp32 must match within ``max |dlogit| <= 1e-3``, int8 must agree on the top-1 class for >= 97 % of them
(a QAT int8 file with the checkpoint's own int8 simulation, a post-training one with the float model);
else :class:`ecgedge.errors.EcgEdgeError` (the file is renamed ``*.rejected``). A manifest
``export.json`` lists every file with size, time and check. Calibration uses DS1 training beats
only (:mod:`ecgedge.export.calibration`), never DS2.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ecgedge import jsonio
from ecgedge.atomic import sha256_file, temp_path_for
from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess.rhythm import N_RHYTHM
from ecgedge.export.validate import FP32_MAX_ABS_LOGIT_DIFF, INT8_MIN_TOP1_AGREEMENT

__all__ = ["ExportFormat", "ExportedModel", "FORMATS", "export_model", "export_onnx", "export_tflite", "parse_formats"]


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    int8: bool  # has an int8 variant
    runtime: str  # what runs it (PyPI package)
    route: str
    exporter: Callable  # (ctx, precision, path) -> Path


@dataclass
class ExportedModel:
    path: Path
    format: str
    precision: str  # fp32 | int8
    size_bytes: int
    seconds: float  # conversion + metadata (not the self-check)
    check: dict  # compare_outputs(...) against torch on held-out DS1 training beats
    metadata_location: str  # onnx metadata_props | tflite flatbuffer | sidecar
    quantization: str | None = None  # int8 only: "qat" (learned scales) | "ptq" (calibrated here)
    sha256: str | None = None  # of the file's bytes; also in the sidecar MODEL.sha256
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d

    def summary(self) -> str:
        c = self.check
        return (
            f"{self.path.name}: {self.size_bytes / 1e6:.2f} MB, {self.seconds:.1f} s; "
            f"vs torch on {c['n_beats']} beats: max|dlogit| {c['max_abs_logit_diff']:.2e}, top-1 agreement {c['top1_agreement']:.2%}"
        )


@dataclass
class _Context:
    source: object  # ExportSource
    data: object  # CalibrationData
    out_dir: Path
    onnx_ptq: str = "nncf"  # post-training int8 route for ONNX (onnx_format.PTQ_ROUTES)
    written: dict = field(default_factory=dict)  # (format, precision) -> Path

    @property
    def qat(self) -> bool:
        """int8 files take the checkpoint's learned QAT scales instead of post-training calibration."""
        return bool(self.source.extra.get("qat"))

    @functools.cached_property
    def qat_checkpoint(self) -> dict:
        from ecgedge.export.qat_formats import qat_source_checkpoint

        return qat_source_checkpoint(self.source)

    @functools.cached_property
    def qat_prepared(self):
        """The QAT graph rebuilt once for both formats (each converts its own copy)."""
        from ecgedge.compress.qat import prepared_from_checkpoint

        return prepared_from_checkpoint(self.qat_checkpoint, self.source.image_size)[0]


def export_onnx(ctx: _Context, precision: str, path: Path) -> Path:
    """ONNX fp32, or int8 (static QDQ) quantised from the fp32 file written first."""
    from ecgedge.export import onnx_format

    if precision == "fp32":
        return onnx_format.export_onnx_fp32(ctx.source, path)
    if ctx.qat:
        from ecgedge.export.qat_formats import export_qat_onnx

        return export_qat_onnx(ctx.source, path, ctx.qat_prepared)
    fp32 = ctx.written.get(("onnx", "fp32"))
    if fp32 is None:
        raise EcgEdgeError("ONNX int8 needs the fp32 ONNX file first")
    return onnx_format.export_onnx_int8(ctx.source, path, fp32, ctx.data.calib, ctx.onnx_ptq)


def export_tflite(ctx: _Context, precision: str, path: Path) -> Path:
    """TFLite fp32, or full-integer int8 (PT2E static) via litert-torch."""
    from ecgedge.export import tflite_format

    if precision == "fp32":
        return tflite_format.export_tflite_fp32(ctx.source, path)
    if ctx.qat:
        from ecgedge.export.qat_formats import export_qat_tflite

        return export_qat_tflite(ctx.source, path, ctx.qat_prepared)
    return tflite_format.export_tflite_int8(ctx.source, path, ctx.data.calib)


FORMATS: dict[str, ExportFormat] = {
    "onnx": ExportFormat(
        "onnx", ".onnx", True, "onnxruntime",
        "torch.onnx.export(dynamo=True) opset 18; int8: post-training static QDQ (nncf, or onnxruntime quantize_static)",
        export_onnx,
    ),
    "tflite": ExportFormat(
        "tflite", ".tflite", True, "ai-edge-litert",
        "litert-torch convert; int8: PT2E static quantisation (int8 weights per channel, int8 activations and I/O)",
        export_tflite,
    ),
}  # fmt: skip


#: int8 routes of a quantisation-aware checkpoint (``ecgedge compress --qat``): its learned scales.
QAT_ROUTES = {
    "onnx": "QAT: torchao convert_pt2e graph -> torch.onnx.export(dynamo=True) opset 18 QDQ (learned scales; 7-bit per-channel weights in int8, activations as uint8)",
    "tflite": "QAT: torchao convert_pt2e graph -> litert-torch convert (learned scales; full integer, int8 I/O)",
}


def model_complexity(source) -> dict | None:
    """Parameters and multiply-accumulates of one beat's forward pass (None without torch-pruning)."""
    try:
        from ecgedge.compress.prune import complexity, example_inputs
    except ImportError:
        return None
    try:
        return complexity(source.model, example_inputs(source.model, source.image_size))
    except EcgEdgeError:
        return None


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    out = []
    for n in names:
        n = n.strip().lower().lstrip(".")
        if not n:
            continue
        if n not in FORMATS:
            raise EcgEdgeError(f"unknown export format {n!r}; choose from {', '.join(FORMATS)}.")
        if n not in out:
            out.append(n)
    if not out:
        raise EcgEdgeError(f"no export format given; choose from {', '.join(FORMATS)}.")
    return tuple(out)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def export_model(
    run_dir: Path,
    out_dir: Path,
    formats: str | Iterable[str] = ("onnx", "tflite"),
    int8: bool = False,
    data_dir: Path | None = None,
    *,
    calibration_beats: int = 256,
    check_beats: int = 256,
    fp32_atol: float = FP32_MAX_ABS_LOGIT_DIFF,
    int8_min_agreement: float = INT8_MIN_TOP1_AGREEMENT,
    onnx_ptq: str = "nncf",
    log: Callable[[str], None] | None = _stderr,
    load_runtime: Callable[[Path], object],
) -> list[ExportedModel]:
    """Export ``run_dir``'s best checkpoint to ``out_dir`` in every format (fp32, plus int8 if asked).

    ``load_runtime``: what runs a written file for its self-check (path -> an object with
    ``predict(images_u8, rr)`` and ``metadata``): :func:`ecgedge.firmware_host.load_runtime`, the
    gateway's runtime. The caller passes it, so export does not depend on the layer above it.
    """
    import numpy as np

    from ecgedge.export.calibration import calibration_data
    from ecgedge.export.metadata import RR_INPUT, build_metadata, image_input, write_onnx_metadata, write_tflite_metadata
    from ecgedge.run_dirs import export_file, export_manifest, package_versions
    from ecgedge.export.source import load_source, torch_logits
    from ecgedge.export.validate import compare_outputs
    from ecgedge.export.onnx_format import PTQ_ROUTES
    from ecgedge.model_files import sha256_sidecar, sidecar_path, write_sha256_sidecar

    log = log or (lambda _m: None)
    names = parse_formats(formats)
    if onnx_ptq not in PTQ_ROUTES:
        raise EcgEdgeError(f"unknown ONNX int8 route {onnx_ptq!r}; choose from {', '.join(PTQ_ROUTES)}.")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    source = load_source(run_dir)
    data = calibration_data(source.meta, data_dir, n_calib=calibration_beats, n_check=check_beats)
    check = data.check
    rr_check = check.rr if source.rr_features else None
    reference = torch_logits(source.model, check.images, rr_check)
    ctx = _Context(source, data, out_dir, onnx_ptq=onnx_ptq)
    qat_reference = None
    if ctx.qat and int8:
        # a QAT int8 file must compute what the checkpoint's int8 simulation computes
        from ecgedge.models.checkpoint import load_checkpoint_model

        qat_reference = torch_logits(load_checkpoint_model(ctx.qat_checkpoint, source.checkpoint), check.images, rr_check)
    complexity = model_complexity(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    h, w = source.image_size
    versions = package_versions("torch", "onnx", "onnxscript", "onnxruntime", "litert-torch", "ai-edge-litert", "torchao", "nncf", "numpy")
    results: list[ExportedModel] = []

    for name in names:
        fmt = FORMATS[name]
        for precision in ("fp32", "int8") if (int8 and fmt.int8) else ("fp32",):
            final = export_file(out_dir, source.name, precision, fmt.suffix)
            for stale in (final, Path(f"{final}.rejected"), sidecar_path(final), sha256_sidecar(final)):
                stale.unlink(missing_ok=True)
            log(f"export {final.name} ...")
            # written under a temporary name, renamed once checked: a killed export leaves no file
            # (truncated or unchecked) under the final name
            path = temp_path_for(final)
            try:
                t0 = time.perf_counter()
                fmt.exporter(ctx, precision, path)
                # what the file's inputs and outputs are, as its runtime sees them
                if name == "onnx":
                    from ecgedge.export.onnx_format import check_onnx, input_quantization

                    check_onnx(path)
                    q = input_quantization(path) if precision == "int8" else None
                    img_q = {"internal_quantization": {**q, "note": "input stays float32; quantised inside the graph (QDQ)"}} if q else None
                    inputs = [image_input(h, w, "B", img_q)] + ([RR_INPUT] if source.rr_features else [])
                    outputs = [{"name": "logits", "dtype": "float32", "shape": ["B", source.num_classes]}]
                else:
                    from ecgedge.export.tflite_format import tensor_io

                    t_in, t_out = tensor_io(path)
                    img = next(d for d in t_in if len(d["shape"]) == 4)
                    img_q = None
                    if "quantization" in img:
                        img_q = {"dtype": img["dtype"], "quantization": img["quantization"], "from_uint8": _from_uint8(img["quantization"])}
                    inputs = [{**image_input(h, w, 1, img_q), "tensor": img["tensor"]}]
                    if source.rr_features:
                        rr_t = next(d for d in t_in if len(d["shape"]) == 2)
                        inputs.append({**RR_INPUT, "shape": [1, N_RHYTHM], "tensor": rr_t["tensor"], "dtype": rr_t["dtype"], **({"quantization": rr_t["quantization"]} if "quantization" in rr_t else {})})
                    o = t_out[0]
                    outputs = [{"name": "logits", "tensor": o["tensor"], "dtype": o["dtype"], "shape": o["shape"], **({"quantization": o["quantization"], "to_float": "logit = (q - zero_point) * scale"} if "quantization" in o else {})}]
                quantization = None if precision == "fp32" else ("qat" if ctx.qat else "ptq")
                route = QAT_ROUTES[name] if quantization == "qat" else fmt.route
                if name == "onnx" and quantization == "ptq":
                    route = f"{fmt.route}; used: {PTQ_ROUTES[onnx_ptq]}"
                export_info = {"route": route, "runtime": fmt.runtime, "versions": versions, "batch": "dynamic" if name == "onnx" else 1, "quantization": quantization}
                meta = build_metadata(
                    source,
                    fmt=name,
                    precision=precision,
                    inputs=inputs,
                    outputs=outputs,
                    export=export_info,
                    calibration=data.description if quantization == "ptq" else None,
                    complexity=complexity,
                )
                if name == "onnx":
                    write_onnx_metadata(path, meta)
                    where = "onnx metadata_props['ecgedge']"
                else:
                    where = "tflite flatbuffer metadata 'ecgedge'" if write_tflite_metadata(path, meta) == "flatbuffer" else "sidecar .json"
                seconds = time.perf_counter() - t0

                # self-check: load with the gateway runtime, compare with torch, metadata round trip
                rt = load_runtime(path)
                ref = qat_reference if quantization == "qat" else reference
                logits = rt.predict(check.images, rr_check)
                result = compare_outputs(logits, ref, precision, fp32_atol, int8_min_agreement)
                result["beats"] = "held-out DS1 training beats (disjoint from calibration)"
                result["reference"] = "the checkpoint's QAT int8 simulation (torch)" if quantization == "qat" else "the float model (torch)"
                if quantization == "qat":
                    result["top1_agreement_with_float"] = float(np.mean(logits.argmax(1) == reference.argmax(1)))
                if json.loads(json.dumps(rt.metadata)) != json.loads(_dumps(meta)):
                    result["passed"] = False
                    result["criterion"] += "; metadata did not round-trip"
                if not result["passed"]:
                    rejected = Path(f"{final}.rejected")
                    path.replace(rejected)
                    raise EcgEdgeError(
                        f"{final.name} failed its self-check ({result['criterion']}: max|dlogit| {result['max_abs_logit_diff']:.3g}, "
                        f"top-1 agreement {result['top1_agreement']:.2%}); kept as {rejected} for inspection."
                    )
                if where == "sidecar .json":
                    os.replace(sidecar_path(path), sidecar_path(final))
                digest = sha256_file(path)
                write_sha256_sidecar(final, digest)  # first: a file under the final name always has one
                os.replace(path, final)
                ctx.written[(name, precision)] = final
                em = ExportedModel(
                    path=final,
                    format=name,
                    precision=precision,
                    size_bytes=final.stat().st_size,
                    sha256=digest,
                    seconds=round(seconds, 3),
                    check=result,
                    metadata_location=where,
                    quantization=quantization,
                    inputs=inputs,
                    outputs=outputs,
                )
                results.append(em)
                log(em.summary())
            finally:
                path.unlink(missing_ok=True)
                sidecar_path(path).unlink(missing_ok=True)

    manifest_path = export_manifest(out_dir)
    previous = []
    if manifest_path.is_file():  # keep entries of other formats exported earlier into out_dir
        try:
            old = json.loads(manifest_path.read_text())
            if old.get("checkpoint_sha256") == source.checkpoint_sha256:
                mine = {str(r.path) for r in results}
                previous = [f for f in old.get("files", []) if f.get("path") not in mine and Path(f.get("path", "")).is_file()]
        except (json.JSONDecodeError, AttributeError):
            previous = []
    manifest = {
        "run_dir": str(source.run_dir),
        "checkpoint_sha256": source.checkpoint_sha256,
        "calibration": data.description,
        "check_beats": {"n": len(check), "class_counts": check.class_counts()},
        "float_reference_check_accuracy": float(np.mean(reference.argmax(1) == check.labels)),
        "complexity": complexity,
        "files": previous + [r.as_dict() for r in results],
    }
    jsonio.write_json(manifest_path, manifest)
    return results


def _from_uint8(q: dict) -> str:
    scale, zero = q["scale"], q["zero_point"]
    if abs(scale * 255.0 - 1.0) < 1e-6:
        return f"q = u8 {'+' if zero >= 0 else '-'} {abs(zero)}" if zero else "q = u8"
    return f"q = round(u8 / 255 / {scale:.8g}) + {zero}"


def _dumps(meta: dict) -> str:
    from ecgedge.export.metadata import dumps

    return dumps(meta)
