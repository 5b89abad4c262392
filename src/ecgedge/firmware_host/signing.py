"""Ed25519 signatures of bundle manifests: the gateway's side (trusted keys, verification).

Why Ed25519 through ``cryptography``: small keys (32 bytes) and signatures (64 bytes), no
parameters to get wrong, deterministic signing, and ``cryptography`` is the maintained binding to
OpenSSL that pip ships as wheels for x86_64 and aarch64 (about 18 MB installed with cffi).

``manifest.sig`` is a small JSON document::

    {"schema": "ecgedge.signature/1", "algorithm": "ed25519", "key_id": "<16 hex>", "signature": "<base64>"}

``key_id`` (the first 16 hex digits of the SHA-256 of the raw 32-byte public key) only picks the
trusted key to check with; the signature itself decides. Trusted keys are PEM public key files
(``*.pub``, as ``ecgedge keys generate`` writes them) in a directory the gateway's operator fills
out of band: a deploy never installs keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path

from ecgedge.errors import EcgEdgeError

SIGNATURE_SCHEMA = "ecgedge.signature/1"
ALGORITHM = "ed25519"
PUBLIC_SUFFIX = ".pub"


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise EcgEdgeError("checking bundle signatures needs the cryptography package: pip install 'ecgedge[gateway]'") from None
    return serialization, ed25519


def raw_public_bytes(public_key) -> bytes:
    serialization, _ = _crypto()
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key) -> str:
    return hashlib.sha256(raw_public_bytes(public_key)).hexdigest()[:16]


def load_public_key(path: Path):
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (ValueError, TypeError) as exc:
        raise EcgEdgeError(f"{path} is not a PEM public key ({exc}); use the .pub file `ecgedge keys generate` wrote.") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise EcgEdgeError(f"{path} is a {type(key).__name__}, not an Ed25519 public key; use the .pub file `ecgedge keys generate` wrote.")
    return key


def trusted_keys(directory: Path) -> dict[str, object]:
    """``{key_id: public key}`` of every ``*.pub`` file in ``directory``; EcgEdgeError when there is none."""
    directory = Path(directory)
    files = sorted(directory.glob(f"*{PUBLIC_SUFFIX}")) if directory.is_dir() else []
    if not files:
        raise EcgEdgeError(
            f"no trusted public keys (*{PUBLIC_SUFFIX}) in {directory}: copy the public key of the bundles' signer there once "
            "(e.g. `scp ecgedge.pub GATEWAY:DIR/trusted_keys/`); the gateway accepts no unsigned bundle."
        )
    keys = {}
    for f in files:
        key = load_public_key(f)
        keys[key_id(key)] = key
    return keys


def signature_document(kid: str, signature: bytes) -> bytes:
    doc = {"schema": SIGNATURE_SCHEMA, "algorithm": ALGORITHM, "key_id": kid, "signature": base64.b64encode(signature).decode("ascii")}
    return (json.dumps(doc, indent=1) + "\n").encode()


def verify_manifest(manifest: bytes, signature_doc: bytes | None, keys: dict[str, object]) -> str:
    """The key id that signed ``manifest``; EcgEdgeError when unsigned, unknown key or a bad signature."""
    if signature_doc is None:
        raise EcgEdgeError("the bundle is not signed (it has no manifest.sig); build it with `ecgedge bundle ... --key KEY`.")
    try:
        doc = json.loads(signature_doc.decode("utf-8"))
        kid, algorithm = doc["key_id"], doc["algorithm"]
        signature = base64.b64decode(doc["signature"], validate=True)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, binascii.Error):
        raise EcgEdgeError("manifest.sig is not an ecgedge signature document; the bundle is damaged.") from None
    if algorithm != ALGORITHM:
        raise EcgEdgeError(f"manifest.sig uses {algorithm!r}; only {ALGORITHM} signatures are accepted.")
    key = keys.get(kid)
    if key is None:
        raise EcgEdgeError(
            f"the bundle is signed by key {kid}, which is not a trusted key of this gateway (trusted: {', '.join(sorted(keys))}); "
            "sign with a trusted key or add its .pub to the gateway's trusted keys."
        )
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(signature, manifest)
    except InvalidSignature:
        raise EcgEdgeError(f"the signature of manifest.json does not verify with trusted key {kid}: the manifest was changed after signing; refused.") from None
    return kid
