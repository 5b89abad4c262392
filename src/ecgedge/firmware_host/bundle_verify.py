"""Accept a bundle only when it is exactly what a trusted key signed; extract it safely.

:func:`verify_bundle` runs these checks in order and stops at the first failure with one line
that names it; nothing is written before the last structural check passed, and what it extracts
goes only into the fresh directory the caller gives:

1. the archive is an uncompressed tar whose every member is a regular file with a plain relative
   name: absolute paths, ``..``, symlinks, hard links, devices, FIFOs, directories and duplicate
   names are refused (checked here explicitly rather than by ``tarfile``'s ``filter='data'``,
   which Python 3.11 has only from 3.11.4 on, and Debian bookworm's python3 is 3.11.2);
2. ``manifest.sig`` verifies over ``manifest.json`` with one of the trusted keys;
3. the archive holds exactly the files the signed manifest lists, with the listed sizes;
4. each file's SHA-256, computed while it is copied out, equals the manifest's.

Files are created with ``O_EXCL | O_NOFOLLOW`` under directories this module makes, so even a
bug in the name checks could not follow a link out of the target directory. ``tarfile`` only
parses headers here; it never extracts.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.bundle_format import MANIFEST, MAX_MANIFEST_BYTES, SIGNATURE, check_member_name, parse_manifest
from ecgedge.firmware_host.signing import verify_manifest

_CHUNK = 1 << 20


@dataclass(frozen=True)
class VerifiedBundle:
    manifest: dict
    manifest_bytes: bytes
    signature_bytes: bytes
    key_id: str

    @property
    def version(self) -> str:
        return self.manifest["version"]


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a FIFO"
    if member.isdir():
        return "a directory entry"
    return "not a regular file"


def check_members(members: list[tarfile.TarInfo], where: str) -> dict[str, tarfile.TarInfo]:
    """``{name: member}`` after refusing anything that could write outside the bundle directory."""
    out: dict[str, tarfile.TarInfo] = {}
    for m in members:
        name = m.name
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise EcgEdgeError(f"{where}: archive member {name!r} is an absolute path; refused (nothing was extracted).")
        if ".." in name.replace("\\", "/").split("/"):
            raise EcgEdgeError(f"{where}: archive member {name!r} contains '..' and would land outside the bundle directory; refused (nothing was extracted).")
        if not m.isreg():
            raise EcgEdgeError(f"{where}: archive member {name!r} is {_kind(m)}; a bundle holds regular files only; refused (nothing was extracted).")
        try:
            check_member_name(name)
        except EcgEdgeError:
            raise EcgEdgeError(f"{where}: archive member {name!r} is not a plain relative file name; refused (nothing was extracted).") from None
        if name in out:
            raise EcgEdgeError(f"{where}: archive member {name!r} appears twice; refused (nothing was extracted).")
        out[name] = m
    return out


@contextmanager
def open_archive(path: Path) -> Iterator[tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]]:
    """The open tar (read-only, uncompressed) and its checked members."""
    path = Path(path)
    if not path.is_file():
        raise EcgEdgeError(f"{path} not found.")
    try:
        tar = tarfile.open(path, mode="r:")
    except tarfile.TarError as exc:
        raise EcgEdgeError(f"{path} is not a bundle (an uncompressed tar archive): {exc}; build it with `ecgedge bundle`.") from None
    with tar:
        try:
            members = tar.getmembers()
        except tarfile.TarError as exc:
            raise EcgEdgeError(f"{path}: the archive is truncated or damaged ({exc}); upload the bundle again.") from None
        yield tar, check_members(members, str(path))


def _read_small(tar: tarfile.TarFile, member: tarfile.TarInfo | None) -> bytes | None:
    if member is None:
        return None
    if member.size > MAX_MANIFEST_BYTES:
        raise EcgEdgeError(f"{member.name} is {member.size} bytes, more than a manifest can be ({MAX_MANIFEST_BYTES}); refused.")
    fh = tar.extractfile(member)
    return fh.read() if fh is not None else b""


def read_manifest(path: Path) -> dict:
    """The manifest of a bundle, *unverified*: for the host to name what it is about to upload."""
    with open_archive(path) as (tar, members):
        blob = _read_small(tar, members.get(MANIFEST))
        if blob is None:
            raise EcgEdgeError(f"{path} has no {MANIFEST}; it is not a bundle made by `ecgedge bundle`.")
        return parse_manifest(blob)


def verify_bundle(path: Path, keys: dict[str, object], extract_to: Path | None = None) -> VerifiedBundle:
    """Check ``path`` against ``keys`` (see module docstring); with ``extract_to``, copy its files there.

    ``extract_to`` must be an empty directory the caller created; on failure its contents are
    undefined and the caller removes it.
    """
    path = Path(path)
    with open_archive(path) as (tar, members):
        manifest_bytes = _read_small(tar, members.get(MANIFEST))
        if manifest_bytes is None:
            raise EcgEdgeError(f"{path} has no {MANIFEST}; it is not a bundle made by `ecgedge bundle`.")
        signature = _read_small(tar, members.get(SIGNATURE))
        kid = verify_manifest(manifest_bytes, signature, keys)
        manifest = parse_manifest(manifest_bytes)
        files = manifest["files"]
        payload = {n: m for n, m in members.items() if n not in (MANIFEST, SIGNATURE)}
        extra = sorted(set(payload) - set(files))
        if extra:
            raise EcgEdgeError(f"{path}: the archive holds {extra[0]!r}, which the signed manifest does not list; refused.")
        missing = sorted(set(files) - set(payload))
        if missing:
            raise EcgEdgeError(f"{path}: the signed manifest lists {missing[0]!r}, which the archive lacks (incomplete upload?); refused.")
        for name, member in payload.items():
            if member.size != files[name]["size"]:
                raise EcgEdgeError(f"{path}: {name} is {member.size} bytes, the signed manifest says {files[name]['size']}: the file was changed after signing; refused.")
        for name in sorted(payload):
            digest = _copy_member(tar, payload[name], None if extract_to is None else Path(extract_to))
            if digest != files[name]["sha256"]:
                raise EcgEdgeError(f"{path}: {name} does not match its SHA-256 in the signed manifest: the file was changed after signing; refused.")
        if extract_to is not None:
            for name, blob in ((MANIFEST, manifest_bytes), (SIGNATURE, signature)):
                _write_new(Path(extract_to) / name, blob)
    return VerifiedBundle(manifest, manifest_bytes, signature, kid)


def _write_new(path: Path, blob: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(blob)


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path | None) -> str:
    """SHA-256 of the member's bytes; with ``dest``, also written to ``dest/<name>`` (new file)."""
    digest = hashlib.sha256()
    src = tar.extractfile(member)
    out = None
    if dest is not None:
        target = dest
        for part in member.name.split("/")[:-1]:
            target = target / part
            try:
                mode = os.lstat(target).st_mode
            except FileNotFoundError:
                target.mkdir()
                continue
            if not stat.S_ISDIR(mode):  # a link (never made here) or a file: do not write through it
                raise EcgEdgeError(f"{member.name}: {part} is not a directory in the extraction directory; refused.")
        fd = os.open(target / member.name.split("/")[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        out = os.fdopen(fd, "wb")
    try:
        while block := src.read(_CHUNK):
            digest.update(block)
            if out is not None:
                out.write(block)
    finally:
        if out is not None:
            out.close()
    return digest.hexdigest()
