"""The gateway's model directory: verified versions side by side, ``current`` switched atomically.

Layout under the gateway root (``ROOT``)::

    trusted_keys/*.pub        public keys whose bundles this gateway accepts (put there by its operator)
    incoming/                 uploads: .partial-NAME while a transfer runs, NAME once it completed
    versions/VERSION/         installed bundles: verified, self-tested, never changed afterwards
    versions/.partial-...     a bundle being extracted and self-tested (removed if it fails)
    current -> versions/V     what the gateway service loads
    previous -> versions/W    what ``rollback`` returns to

A version directory appears under its final name only after its signature, every checksum and the
golden-vector self-test passed (extracted under ``.partial-*`` and renamed, one atomic step);
``current`` and ``previous`` are switched by renaming a new symlink over the old one, so a reader
sees the old or the new target, never none. Operations that change links hold an exclusive lock
(``ROOT/.lock``), so two deploys cannot interleave. A killed install leaves at most a
``.partial-*`` entry (or an upload in ``incoming/``), which :func:`status` lists and a later install
removes (extractions at once, uploads after an hour: another deploy may still be sending one).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ecgedge.atomic import sha256_file
from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.bundle_format import MANIFEST, check_version, parse_manifest
from ecgedge.firmware_host.bundle_verify import VerifiedBundle, verify_bundle
from ecgedge.firmware_host.signing import trusted_keys

CURRENT, PREVIOUS = "current", "previous"
VERSIONS, INCOMING, TRUSTED = "versions", "incoming", "trusted_keys"
PARTIAL = ".partial-"
#: an upload this old is from a transfer (or a deploy) that died
STALE_UPLOAD_S = 3600


@contextmanager
def locked(root: Path) -> Iterator[None]:
    if not root.is_dir():
        raise EcgEdgeError(f"{root} is not a gateway directory (it does not exist); create it with a trusted_keys/ directory holding the signer's .pub.")
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def linked_version(root: Path, name: str) -> str | None:
    """The version ``ROOT/name`` points at, or None when the link is absent."""
    try:
        target = os.readlink(Path(root) / name)
    except FileNotFoundError:
        return None
    except OSError:
        raise EcgEdgeError(f"{Path(root) / name} is not a symbolic link; the gateway directory was changed by hand.") from None
    return check_version(Path(target).name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_link(root: Path, name: str, version: str | None) -> None:
    """Point ``ROOT/name`` at ``versions/version`` (or remove it for None) in one atomic rename."""
    root = Path(root)
    if version is None:
        (root / name).unlink(missing_ok=True)
    else:
        check_version(version)
        if not (root / VERSIONS / version).is_dir():
            raise EcgEdgeError(f"version {version} is not installed in {root / VERSIONS}.")
        tmp = root / f".{name}.tmp-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(f"{VERSIONS}/{version}", tmp)
        os.replace(tmp, root / name)
    _fsync_dir(root)


def _remove_stale(root: Path, keep: Path) -> None:
    """Leftovers of killed installs (we hold the lock, so no install is running) and dead uploads."""
    for d in (root / VERSIONS).glob(f"{PARTIAL}*"):
        shutil.rmtree(d, ignore_errors=True)
    now = time.time()
    for f in (root / INCOMING).glob("*"):  # .partial- uploads, and uploads whose install never ran
        try:
            if now - f.stat().st_mtime > STALE_UPLOAD_S and not f.samefile(keep):
                f.unlink()
        except FileNotFoundError:
            pass


def _check_upload(bundle: Path, sha256: str | None) -> None:
    if not bundle.is_file():
        raise EcgEdgeError(f"{bundle} not found on the gateway.")
    if sha256 and sha256_file(bundle) != sha256.lower():
        raise EcgEdgeError(f"{bundle} does not have the SHA-256 the host sent ({sha256[:12]}...): the upload is incomplete or damaged; deploy again.")


def install(
    root: Path, bundle: Path, *, sha256: str | None = None, activate: bool = True, keys_dir: Path | None = None, remove_bundle: bool = False
) -> dict:
    """Verify, extract, self-test and (``activate``) switch ``current`` to ``bundle``'s version.

    Any failure raises EcgEdgeError and leaves ``versions/``, ``current`` and ``previous`` as they were.
    ``remove_bundle``: delete the uploaded file afterwards, whatever the outcome.
    """
    # here, not at the top: status, rollback and restore then start without the runtime (scipy, ~1 s)
    from ecgedge.firmware_host.selftest import as_dicts, failure_message, self_test

    root, bundle = Path(root), Path(bundle)
    try:
        with locked(root):
            _check_upload(bundle, sha256)
            keys = trusted_keys(keys_dir or root / TRUSTED)
            (root / VERSIONS).mkdir(exist_ok=True)
            _remove_stale(root, keep=bundle)
            work = root / VERSIONS / f"{PARTIAL}{os.getpid()}"
            work.mkdir()
            try:
                verified = verify_bundle(bundle, keys, extract_to=work)
                final = root / VERSIONS / verified.version
                reused = final.is_dir()
                if reused and (final / MANIFEST).read_bytes() != verified.manifest_bytes:
                    raise EcgEdgeError(f"a different bundle with version {verified.version} is already installed in {final}; build the bundle again (a new version).")
                results = self_test(final if reused else work, verified.manifest)
                problem = failure_message(results)
                if problem:
                    raise EcgEdgeError(f"self-test failed on this gateway, bundle {verified.version} not installed ({problem}).")
                if not reused:
                    os.rename(work, final)
                    _fsync_dir(root / VERSIONS)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            before = _links(root)
            if activate and before[CURRENT] != verified.version:
                set_link(root, PREVIOUS, before[CURRENT])
                set_link(root, CURRENT, verified.version)
            return {**_summary(verified), "reused": reused, "self_test": as_dicts(results), "before": before, "after": _links(root)}
    finally:
        if remove_bundle:
            bundle.unlink(missing_ok=True)


def verify_only(bundle: Path, keys_dir: Path) -> dict:
    """Signature and checksums of ``bundle``, writing nothing."""
    return _summary(verify_bundle(Path(bundle), trusted_keys(keys_dir)))


def _summary(v: VerifiedBundle) -> dict:
    return {"version": v.version, "key_id": v.key_id, "models": [m["file"] for m in v.manifest["models"]]}


def _links(root: Path) -> dict:
    return {CURRENT: linked_version(root, CURRENT), PREVIOUS: linked_version(root, PREVIOUS)}


def restore(root: Path, current: str | None, previous: str | None, remove: str | None = None) -> dict:
    """Set both links exactly (an automatic rollback restores what a deploy found); drop ``remove``."""
    root = Path(root)
    with locked(root):
        set_link(root, PREVIOUS, previous)
        set_link(root, CURRENT, current)
        if remove and remove not in (current, previous):
            shutil.rmtree(root / VERSIONS / check_version(remove), ignore_errors=True)
        return _links(root)


def rollback(root: Path) -> dict:
    """Make ``previous`` current (and the current one previous, so a second rollback undoes it)."""
    root = Path(root)
    with locked(root):
        links = _links(root)
        if links[PREVIOUS] is None:
            raise EcgEdgeError(f"{root} has no previous version to roll back to.")
        set_link(root, PREVIOUS, links[CURRENT])
        set_link(root, CURRENT, links[PREVIOUS])
        return {"before": links, "after": _links(root)}


def _describe(root: Path, version: str | None) -> dict | None:
    if version is None:
        return None
    try:
        m = parse_manifest((root / VERSIONS / version / MANIFEST).read_bytes())
    except (OSError, EcgEdgeError) as exc:
        return {"version": version, "problem": str(exc)}
    return {
        "version": version,
        "name": m.get("name"),
        "created_utc": m.get("created_utc"),
        "ecgedge_version": (m.get("toolkit") or {}).get("ecgedge"),
        "models": [{k: x.get(k) for k in ("file", "format", "precision", "quantization")} for x in m["models"]],
    }


def status(root: Path) -> dict:
    root = Path(root)
    links = _links(root) if root.is_dir() else {CURRENT: None, PREVIOUS: None}
    versions = sorted(p.name for p in (root / VERSIONS).glob("*") if p.is_dir() and not p.name.startswith(".")) if (root / VERSIONS).is_dir() else []
    # left over by interrupted uploads and installs: nothing reads them; install removes them when stale
    partial = sorted(str(p.relative_to(root)) for d, pattern in ((VERSIONS, f"{PARTIAL}*"), (INCOMING, "*")) for p in (root / d).glob(pattern)) if root.is_dir() else []
    return {
        "root": str(root),
        CURRENT: _describe(root, links[CURRENT]),
        PREVIOUS: _describe(root, links[PREVIOUS]),
        "versions": versions,
        "partial": partial,
        "trusted_keys": sorted(p.name for p in (root / TRUSTED).glob("*.pub")) if (root / TRUSTED).is_dir() else [],
    }
