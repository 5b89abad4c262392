"""Signing keys for bundles: ``ecgedge keys generate`` and the signature ``ecgedge bundle`` writes.

An Ed25519 pair: ``NAME.key`` (PKCS#8 PEM, unencrypted, mode 0600: keep it on the build machine)
and ``NAME.pub`` (PEM public key: copy it into each gateway's ``trusted_keys/``). Verification and
the signature document live with the gateway, in :mod:`ecgedge.firmware_host.signing`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ecgedge.atomic import atomic_path
from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.signing import PUBLIC_SUFFIX, key_id, signature_document

PRIVATE_SUFFIX = ".key"


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    key_id: str


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise EcgEdgeError("signing bundles needs the cryptography package: pip install cryptography") from None
    return serialization, ed25519


def generate_keys(out_dir: Path, name: str = "ecgedge") -> KeyPair:
    """Write a new pair ``out_dir/name.key`` + ``out_dir/name.pub``; refuses to overwrite either."""
    serialization, ed25519 = _crypto()
    out_dir = Path(out_dir).expanduser()
    private, public = out_dir / f"{name}{PRIVATE_SUFFIX}", out_dir / f"{name}{PUBLIC_SUFFIX}"
    for p in (private, public):
        if p.exists():
            raise EcgEdgeError(f"{p} exists; a key is never overwritten (bundles signed with it would no longer verify). Choose another -o or --name.")
    out_dir.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with atomic_path(private) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    pub = key.public_key()
    with atomic_path(public) as tmp:
        tmp.write_bytes(pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return KeyPair(private, public, key_id(pub))


def load_private_key(path: Path):
    serialization, ed25519 = _crypto()
    path = Path(path).expanduser()
    if not path.is_file():
        raise EcgEdgeError(f"signing key {path} not found; make one with `ecgedge keys generate -o DIR`.")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise EcgEdgeError(f"{path} is not an unencrypted PEM private key ({exc}); use the .key file `ecgedge keys generate` wrote.") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise EcgEdgeError(f"{path} is a {type(key).__name__}, not an Ed25519 key; use the .key file `ecgedge keys generate` wrote.")
    return key


def sign(manifest: bytes, key_path: Path) -> tuple[bytes, str]:
    """(``manifest.sig`` bytes, key id) for the exact bytes of ``manifest.json``."""
    key = load_private_key(key_path)
    kid = key_id(key.public_key())
    return signature_document(kid, key.sign(manifest)), kid
