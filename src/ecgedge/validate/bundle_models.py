"""``ecgedge validate model.bundle``: the models of a signed bundle, checked as a gateway would accept them.

:func:`open_bundle` verifies the bundle exactly as the gateway's installer does (Ed25519 signature
against the given public key(s), every SHA-256, safe extraction:
:func:`ecgedge.firmware_host.bundle_verify.verify_bundle`) into a temporary directory, so what is
validated is byte for byte what a gateway will run. :func:`validate_bundle` does that, then runs
:func:`~ecgedge.validate.on_target.validate_on_targets` for each chosen model file over the same
beats, and adds what only a bundle knows:

* the device profile the bundle declares (``ecgedge bundle --profile``), used when ``--profile`` is
  not given, and the peak memory it states beside the ones measured on the targets;
* on the whole set, whether the host's AAMI figures here are those the manifest carries (measured
  by ``ecgedge evaluate`` before bundling): the same beats through the same runtime must give the
  same confusion matrix.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ecgedge.errors import EcgEdgeError

__all__ = ["OpenedBundle", "is_bundle", "open_bundle", "public_keys", "validate_bundle"]


@dataclass(frozen=True)
class OpenedBundle:
    path: Path
    manifest: dict
    key_id: str
    directory: Path  # the verified, extracted files

    def model_files(self, names: list[str] | None = None) -> list[tuple[dict, Path]]:
        """(manifest entry, extracted path) of each model file, or of those named (file name or bundle path)."""
        entries = self.manifest["models"]
        if not names:
            return [(e, self.directory / e["file"]) for e in entries]
        out = []
        for name in names:
            match = [e for e in entries if name in (e["file"], Path(e["file"]).name)]
            if not match:
                listed = ", ".join(Path(e["file"]).name for e in entries)
                raise EcgEdgeError(f"{self.path.name} holds no model {name!r}; it holds {listed}.")
            out.append((match[0], self.directory / match[0]["file"]))
        return out


def is_bundle(path: Path) -> bool:
    """A tar archive (what ``ecgedge bundle`` writes), as opposed to an .onnx / .tflite file."""
    import tarfile

    return Path(path).is_file() and Path(path).suffix not in (".onnx", ".tflite") and tarfile.is_tarfile(path)


def public_keys(path: Path | None, bundle: Path) -> dict[str, object]:
    """``{key_id: key}`` from one ``.pub`` file or a directory of them (a gateway's ``trusted_keys/``)."""
    from ecgedge.firmware_host.signing import key_id, load_public_key, trusted_keys

    if path is None:
        raise EcgEdgeError(
            f"{bundle.name} is a bundle: give --public-key FILE.pub (or a trusted_keys/ directory) so it is checked as a gateway "
            "checks it before anything is validated."
        )
    path = Path(path).expanduser()
    if path.is_dir():
        return trusted_keys(path)
    if not path.is_file():
        raise EcgEdgeError(f"--public-key {path}: no such file or directory.")
    key = load_public_key(path)
    return {key_id(key): key}


@contextmanager
def open_bundle(path: Path, public_key: Path | None = None, keys: dict[str, object] | None = None) -> Iterator[OpenedBundle]:
    """Verify (against ``keys``, or the key(s) at ``public_key``) and extract ``path`` into a temporary directory that lives as long as the block."""
    from ecgedge.firmware_host.bundle_verify import verify_bundle

    path = Path(path).expanduser()
    keys = keys or public_keys(public_key, path)
    with tempfile.TemporaryDirectory(prefix="ecgedge-bundle-") as tmp:
        verified = verify_bundle(path, keys, extract_to=Path(tmp))
        yield OpenedBundle(path, verified.manifest, verified.key_id, Path(tmp))


def _host_metrics_check(entry: dict, result: dict) -> dict:
    """Whether the host's figures of this validation equal those in the manifest (whole set only)."""
    stated = entry.get("host_metrics")
    if not stated:
        return {"compared": False, "why": "the manifest carries no host metrics (run `ecgedge evaluate MODEL` before bundling)"}
    if result["subset"] or stated.get("set") not in (None, result["set"]):
        return {"compared": False, "why": f"validated {result['subset'] or result['set']}, the manifest's figures are of {stated.get('set')}"}
    host = result["targets"][0]["metrics"]
    same = (stated.get("confusion") or {}).get("matrix") == host["confusion"]["matrix"]
    return {"compared": True, "equal": same, "what": "confusion matrix of the host's predictions vs the manifest's"}


def validate_bundle(
    path: Path,
    targets,
    *,
    public_key: Path | None = None,
    keys: dict[str, object] | None = None,
    names: list[str] | None = None,
    set_name: str = "DS2",
    subset: int | None = None,
    data_dir: Path | None = None,
    profile: str | None = None,
    log=None,
):
    """Verify and open the bundle at ``path``, then validate its models over one set of beats.

    Returns (the result: one validation per chosen model and the verdict, {model file: its target
    runs}, the beats), what ``ecgedge validate`` and the pipeline write.
    """
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.validate.on_target import select_beats, tolerance

    log = log or (lambda _m: None)
    with open_bundle(path, public_key, keys) as opened:
        chosen = opened.model_files(names)
        for entry, _ in chosen:
            tolerance(entry["format"], entry["precision"])  # before minutes of work
        log(f"{opened.path.name}: bundle {opened.manifest['version']}, signature and checksums verified (key {opened.key_id})")
        first = chosen[0][1]
        beats = select_beats(first, load_runtime(first).metadata, set_name, subset, data_dir)  # one set of beats for every model
        result, runs = _validate_models(opened, chosen, beats, targets, profile, log)
    return result, runs, beats


def _validate_models(opened: OpenedBundle, chosen: list[tuple[dict, Path]], beats, targets, profile: str | None, log) -> tuple[dict, dict]:
    from ecgedge.atomic import sha256_file
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.validate.on_target import validate_on_targets

    m = opened.manifest
    declared = (m.get("requires") or {}).get("profile")
    profile = profile or (declared or {}).get("name")
    validations, runs_of = [], {}
    for entry, path in chosen:
        result, runs = validate_on_targets(path, beats, targets, load_runtime(path).metadata, profile=profile, log=log)
        result["model"] = f"{opened.path.name}:{entry['file']}"  # not the temporary extraction path
        result["needs"] = entry.get("needs")
        result["manifest_host_metrics"] = _host_metrics_check(entry, result)
        if result["manifest_host_metrics"].get("equal") is False:
            result["failures"].append(f"{entry['file']}: the host's predictions differ from those behind the manifest's metrics")
            result["passed"] = False
        validations.append(result)
        runs_of[entry["file"]] = runs
    failures = [f for v in validations for f in v["failures"]]
    return {
        "bundle": {
            "path": str(opened.path),
            "sha256": sha256_file(opened.path),
            "version": m["version"],
            "name": m.get("name"),
            "signature": f"verified (key {opened.key_id}), every checksum matched",
            "requires": m.get("requires"),
            "profile_used": profile,
            "profile_from": None if profile is None else ("bundle" if declared and profile == declared["name"] else "--profile"),
        },
        "validations": validations,
        "failures": failures,
        "passed": not failures,
    }, runs_of
