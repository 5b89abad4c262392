"""``ecgedge bundle EXPORT_DIR -o model.bundle --key KEY``: an export directory -> one signed file.

Two steps, usable on their own:

* :func:`stage_bundle` copies the chosen model files of an export directory (as ``ecgedge export``
  wrote it: ``export.json`` + the files, each checked against its SHA-256) into a staging
  directory, computes the golden vectors (:mod:`.golden`) and returns the manifest's content;
* :func:`pack_bundle` hashes every staged file into the manifest, names the version, signs the
  manifest's bytes (:mod:`.keys`) and writes the tar (format: :mod:`ecgedge.firmware_host.bundle_format`)
  atomically, with fixed owners and times so only content differs between bundles.

The manifest also carries, per model file, the host's DS2 metrics when the export directory holds
``MODEL.metrics.json`` (``ecgedge evaluate MODEL``), the runtime and its version on the host, the
self-test tolerance, and what the model needs on a gateway (``needs``: size, multiply-accumulates
per beat, peak memory measured on the host over the golden beats, :mod:`.needs`). With a device
profile (``--profile pi-zero-2w``) the manifest declares the smallest board it is meant for, and a
model whose measured peak already exceeds that board's budget is refused here.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

from ecgedge import __version__, jsonio
from ecgedge.atomic import atomic_path, sha256_file
from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.bundle_format import GOLDEN, MANIFEST, MODELS_DIR, SCHEMA, SIGNATURE
from ecgedge.firmware_host.runtime import load_runtime
from ecgedge.model_files import sidecar_path, verify_model_file
from ecgedge.run_dirs import metrics_path

EXPORT_MANIFEST = "export.json"  # what ecgedge.export writes (ecgedge.export.MANIFEST)
#: the model metadata fields every file of one bundle must share
SHARED = ("classes", "preprocess", "rr_features")


@dataclass(frozen=True)
class BundleResult:
    path: Path
    version: str
    size_bytes: int
    key_id: str
    manifest: dict
    seconds: float


def export_files(export_dir: Path, names: list[str] | None = None) -> list[Path]:
    """The model files of an export directory (all of ``export.json``'s, or ``names``), each verified."""
    export_dir = Path(export_dir).expanduser()
    listing = export_dir / EXPORT_MANIFEST
    if not listing.is_file():
        raise EcgEdgeError(f"{export_dir} is not an export directory (no {EXPORT_MANIFEST}); make one with `ecgedge export RUN -o DIR`.")
    try:
        entries = json.loads(listing.read_text())["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise EcgEdgeError(f"{listing} is not an export manifest; export again with `ecgedge export`.") from None
    known = {Path(e["path"]).name: e for e in entries if isinstance(e, dict) and "path" in e}
    wanted = names or list(known)
    out = []
    for name in wanted:
        if name not in known:
            raise EcgEdgeError(f"{name} is not listed in {listing}; choose from {', '.join(known) or 'nothing (empty export)'}.")
        path = export_dir / name
        if not path.is_file():
            raise EcgEdgeError(f"{path} is listed in {EXPORT_MANIFEST} but missing; export again.")
        verify_model_file(path)
        if known[name].get("sha256") and sha256_file(path) != known[name]["sha256"]:
            raise EcgEdgeError(f"{path} does not match the SHA-256 in {listing}: its bytes changed after export; export again.")
        out.append(path)
    if not out:
        raise EcgEdgeError(f"{listing} lists no model file; export again with `ecgedge export`.")
    return out


def _runtime_version(backend: str) -> str | None:
    try:
        return importlib_metadata.version(backend.replace("_", "-"))
    except importlib_metadata.PackageNotFoundError:
        return None


def _host_metrics(model: Path) -> dict | None:
    path = metrics_path(Path(model))
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise EcgEdgeError(f"{path} is not valid JSON; run `ecgedge evaluate {model}` again or delete it.") from None
    m.pop("model", None)  # a host path, meaningless on the gateway
    return m


def stage_bundle(
    export_dir: Path,
    staging: Path,
    *,
    models: list[str] | None = None,
    data_dir: Path | None = None,
    n_golden: int = 300,
    profile: str | None = None,
    warn: Callable[[str], None] = lambda _m: None,
) -> dict:
    """Copy models and golden vectors into ``staging``; return the manifest without ``files``/``version``."""
    from ecgedge.deploy.golden import golden_vectors
    from ecgedge.deploy.needs import measure_on_host, model_needs
    from ecgedge.deploy.targets.profiles import get_profile, memory_fit

    prof = get_profile(profile) if profile else None  # a typo fails before any work

    paths = export_files(export_dir, models)
    staging = Path(staging)
    (staging / MODELS_DIR).mkdir(parents=True)
    loaded = []
    for p in paths:
        rt = load_runtime(p)
        name = f"{MODELS_DIR}/{p.name}"
        shutil.copyfile(p, staging / name)
        if sidecar_path(p).is_file():  # metadata that export could not embed travels beside the model
            shutil.copyfile(sidecar_path(p), sidecar_path(staging / name))
        loaded.append((name, p, rt))
    first = loaded[0][2].metadata
    for name, _, rt in loaded[1:]:
        for key in SHARED:
            if rt.metadata.get(key) != first.get(key):
                raise EcgEdgeError(f"{name} and {loaded[0][0]} differ in {key!r}; a bundle holds files of one model (one export).")
    golden = golden_vectors(loaded, first, data_dir, n_golden, warn=warn)
    np.savez(staging / GOLDEN, **golden.arrays())
    src = first.get("source") or {}
    entries = []
    for name, path, rt in loaded:
        md = rt.metadata
        needs = model_needs(path, md.get("complexity"), measure_on_host(staging / name, staging / GOLDEN))
        if prof is not None:
            fit = memory_fit(prof, int(needs["peak_rss_mb"] * 2**20), needs["measured_on"])
            if not fit["fits"]:
                raise EcgEdgeError(
                    f"{path.name} peaks at {fit['peak_mb']:.0f} MB on the host; the {prof.name} profile ({prof.board}, {prof.ram_mb} MB) "
                    f"leaves {prof.budget_mb} MB for the gateway: choose a smaller model or a larger --profile."
                )
        entries.append({
            "file": name,
            "format": rt.format,
            "precision": rt.precision,
            "quantization": (md.get("export") or {}).get("quantization"),
            "runtime": (md.get("export") or {}).get("runtime") or rt.backend,
            "host_runtime": {"backend": rt.backend, "version": _runtime_version(rt.backend)},
            "size_bytes": path.stat().st_size,
            "complexity": md.get("complexity"),
            "host_metrics": _host_metrics(path),
            "golden_tolerance": golden.tolerances[name],
            "needs": needs,
        })  # fmt: skip
    return {
        "schema": SCHEMA,
        "name": src.get("run_name") or paths[0].stem,
        "toolkit": {"ecgedge": __version__, "python": platform.python_version(), "host": f"{platform.system()} {platform.machine()}"},
        "classes": list(first.get("classes") or loaded[0][2].classes),
        "rr_features": bool(loaded[0][2].rr_features),
        "input_size": list(loaded[0][2].input_size),
        "preprocess": first.get("preprocess"),
        "source": {"run_name": src.get("run_name"), "checkpoint_sha256": src.get("checkpoint_sha256"), "export_dir": str(Path(export_dir).expanduser().resolve())},
        "requires": {
            "runtimes": sorted({e["runtime"] for e in entries}),
            "python": ">=3.11",
            "packages": "ecgedge[gateway]",
            "peak_rss_mb": max(e["needs"]["peak_rss_mb"] for e in entries),  # of the hungriest file, on the host
            "profile": prof.as_dict() if prof else None,  # the smallest board this bundle is meant for
        },
        "models": entries,
        "golden": {"file": GOLDEN, **golden.description},
    }


def _version(name: str, files: dict) -> str:
    stem = re.sub(r"[^A-Za-z0-9._+-]", "_", name).lstrip("._+-")[:80] or "model"
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:8]
    return f"{stem}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{digest}"


def _tar_add(tar: tarfile.TarFile, name: str, data: io.BufferedIOBase | bytes, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.type = size, 0o644, 0, tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data) if isinstance(data, bytes) else data)


def pack_bundle(staging: Path, manifest: dict, key: Path, out: Path) -> BundleResult:
    """Hash, sign and archive ``staging`` with ``manifest`` into ``out`` (written atomically)."""
    from ecgedge.deploy.keys import sign

    t0 = time.perf_counter()
    staging = Path(staging)
    names = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    files = {n: {"sha256": sha256_file(staging / n), "size": (staging / n).stat().st_size} for n in names}
    manifest = {**manifest, "files": files}
    manifest["version"] = _version(manifest["name"], files)
    manifest["created_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    blob = (jsonio.dumps(manifest, indent=1) + "\n").encode()  # NaN in metrics -> null
    manifest = json.loads(blob)  # the result describes exactly what was signed
    signature, kid = sign(blob, key)
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with tarfile.open(tmp, "w:", format=tarfile.PAX_FORMAT) as tar:
            _tar_add(tar, MANIFEST, blob, len(blob))
            _tar_add(tar, SIGNATURE, signature, len(signature))
            for n in names:
                with open(staging / n, "rb") as fh:
                    _tar_add(tar, n, fh, files[n]["size"])
    return BundleResult(out, manifest["version"], out.stat().st_size, kid, manifest, round(time.perf_counter() - t0, 3))


def build_bundle(
    export_dir: Path,
    out: Path,
    key: Path,
    *,
    models: list[str] | None = None,
    data_dir: Path | None = None,
    n_golden: int = 300,
    profile: str | None = None,
    warn: Callable[[str], None] = lambda _m: None,
) -> BundleResult:
    """:func:`stage_bundle` into a temporary directory, then :func:`pack_bundle`."""
    from ecgedge.deploy.keys import load_private_key

    t0 = time.perf_counter()
    load_private_key(key)  # a bad key fails before minutes of golden-vector work
    with tempfile.TemporaryDirectory(prefix="ecgedge-bundle-") as tmp:
        manifest = stage_bundle(export_dir, Path(tmp), models=models, data_dir=data_dir, n_golden=n_golden, profile=profile, warn=warn)
        result = pack_bundle(Path(tmp), manifest, key, out)
    return BundleResult(result.path, result.version, result.size_bytes, result.key_id, result.manifest, round(time.perf_counter() - t0, 3))
