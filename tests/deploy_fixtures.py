"""Shared pieces of the bundle and deploy tests: a tiny real export, keys, bundle surgery, snapshots.

The export is the tiny residual CNN of :mod:`gateway_model` (ONNX fp32, rhythm features on),
trained briefly on records 106 and 119 (DS1) and 100 (DS2, so the golden beats are real DS2
beats), built once per test session (about 10 s) under pytest's base temp directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

RECORDS = ("100", "106", "119")


def tiny_export(mitdb_dir: Path, base: Path) -> Path:
    """The export directory (built on first use in this session's temp dir)."""
    from gateway_model import build_tiny_onnx
    from tiny_models import registered_tiny_arch

    out = base / "deploy-tiny"
    export_dir = out / "exports"
    if not (export_dir / "export.json").is_file():
        with registered_tiny_arch("test_tiny_deploy", width=8) as name:
            build_tiny_onnx(mitdb_dir, out, name, records=RECORDS)
    return export_dir


@pytest.fixture(scope="module")
def export_dir(mitdb_dir, tmp_path_factory):
    """Fixture: the tiny export (import it into a test module to use it)."""
    return tiny_export(mitdb_dir, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Fixture: (trusted pair, a second pair the gateways do not trust)."""
    d = tmp_path_factory.mktemp("signing")
    return keypair(d), keypair(d, "stranger")


def keypair(directory: Path, name: str = "ecgedge"):
    from ecgedge.deploy.keys import generate_keys

    return generate_keys(directory, name)


def gateway_root(path: Path, *public_keys: Path) -> Path:
    """An empty gateway directory trusting ``public_keys``."""
    (path / "trusted_keys").mkdir(parents=True)
    for k in public_keys:
        (path / "trusted_keys" / k.name).write_bytes(k.read_bytes())
    return path


def rewrite_bundle(src: Path, dst: Path, edit: Callable[[str, bytes], bytes | None] = lambda _n, b: b, extra: list[tarfile.TarInfo] = ()) -> Path:
    """Copy a bundle member by member: ``edit(name, data)`` returns new bytes or None (drop); then ``extra`` members."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w:", format=tarfile.PAX_FORMAT) as tout:
        for m in tin.getmembers():
            data = edit(m.name, tin.extractfile(m).read())
            if data is None:
                continue
            info = tarfile.TarInfo(m.name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
        for info in extra:
            tout.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return dst


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything under ``root``: links with their targets, files with their SHA-256, directories."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return out
