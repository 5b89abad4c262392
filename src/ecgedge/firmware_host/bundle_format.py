"""What a model bundle is: names, schema and the checks every reader applies to its manifest.

A bundle is an uncompressed tar archive (model files barely compress) with regular files only::

    manifest.json     schema ecgedge.bundle/1: the version, classes, preprocessing, every other
                      file with its SHA-256 and size, and per model file its runtime, host metrics,
                      golden outputs and comparison tolerance
    manifest.sig      Ed25519 signature over the exact bytes of manifest.json (see .signing)
    models/NAME       exported model files (and a metadata sidecar NAME.json where export wrote one)
    golden.npz        golden vectors: preprocessed beats (``images`` uint8 [n, H, W], ``rr``
                      float32 [n, N_RHYTHM] when a model takes rhythm features, ``labels``) and the
                      host's exact outputs, ``logits/<model file>`` float32 [n, classes]

The signature covers the manifest, and the manifest covers every other file by hash, so one
signature check plus one hash per file proves the whole bundle. Written by
:mod:`ecgedge.deploy.bundle` (host), read by :mod:`.bundle_verify` (gateway).
"""

from __future__ import annotations

import json
import re

from ecgedge.errors import EcgEdgeError

SCHEMA = "ecgedge.bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
GOLDEN = "golden.npz"
MODELS_DIR = "models"
#: manifest.json is read into memory before anything is checked: cap it (a real one is ~10 kB)
MAX_MANIFEST_BYTES = 4 << 20

#: a version names a directory on the gateway: no separators, no leading dot, bounded length
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
#: a file inside the bundle: relative, plain segments only
_MEMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}(/[A-Za-z0-9][A-Za-z0-9._+-]{0,199}){0,3}")


def logits_key(model_file: str) -> str:
    """The golden.npz entry holding the host's outputs of ``model_file`` (a path in the bundle)."""
    return f"logits/{model_file}"


def check_version(version: object) -> str:
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise EcgEdgeError(f"bundle version {version!r} is not a safe directory name (letters, digits, '._+-', up to 128); the manifest is malformed.")
    return version


def check_member_name(name: str) -> str:
    if not _MEMBER.fullmatch(name) or any(part in (".", "..") for part in name.split("/")):
        raise EcgEdgeError(f"bundle file name {name!r} is not a plain relative path; the manifest is malformed.")
    return name


def parse_manifest(blob: bytes) -> dict:
    """The manifest dict, after checking the fields every reader relies on."""
    try:
        manifest = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EcgEdgeError(f"{MANIFEST} is not valid JSON ({exc}); the bundle is damaged.") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        found = manifest.get("schema") if isinstance(manifest, dict) else type(manifest).__name__
        raise EcgEdgeError(f"{MANIFEST} has schema {found!r}, expected {SCHEMA!r}; build the bundle with this ecgedge version.")
    check_version(manifest.get("version"))
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise EcgEdgeError(f"{MANIFEST} lists no files; the bundle is malformed.")
    for name, entry in files.items():
        check_member_name(name)
        if name in (MANIFEST, SIGNATURE):
            raise EcgEdgeError(f"{MANIFEST} lists {name} among its own files; the bundle is malformed.")
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64 and isinstance(entry.get("size"), int) and entry["size"] >= 0):
            raise EcgEdgeError(f"{MANIFEST}: entry {name!r} needs a 64-hex 'sha256' and a 'size'; the bundle is malformed.")
    models = manifest.get("models")
    if not isinstance(models, list) or not models:
        raise EcgEdgeError(f"{MANIFEST} lists no model files; the bundle is malformed.")
    for m in models:
        if not isinstance(m, dict) or m.get("file") not in files:
            raise EcgEdgeError(f"{MANIFEST}: model entry {m!r} names no file of the bundle; the bundle is malformed.")
    if GOLDEN not in files:
        raise EcgEdgeError(f"{MANIFEST} lists no {GOLDEN}; the bundle has no golden vectors to self-test with.")
    return manifest
