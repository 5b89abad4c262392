"""What accompanies an exported model file on disk: written by export, read by the gateway and report.

* ``METADATA_KEY``: the name of the ``ecgedge`` metadata entry inside ONNX / TFLite files;
  :func:`sidecar_path`: the ``MODEL.json`` sidecar that holds it when the file cannot
  (readers: :mod:`ecgedge.firmware_host.metadata`; writer: :mod:`ecgedge.export.metadata`).
* The SHA-256 an exported model file carries beside it, written at export and checked before use.

A model's own metadata cannot hold the hash of the file it is part of, so the hash goes into a
sidecar ``MODEL.sha256`` in ``sha256sum`` format (``<hex>  <name>``): ``sha256sum -c`` on a gateway
checks it without ecgedge. ``evaluate FILE``, ``report`` and (later) ``deploy`` refuse a file whose
bytes no longer match; a file without a sidecar (exported before sidecars existed, or copied alone)
is used with a warning, since nothing can be checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ecgedge.atomic import atomic_path, sha256_file
from ecgedge.errors import EcgEdgeError

METADATA_KEY = "ecgedge"


def sidecar_path(path: Path) -> Path:
    """``MODEL.json``: the metadata sidecar, used when the model file itself has no ``ecgedge`` entry."""
    return Path(f"{path}.json")


def sha256_sidecar(model: Path) -> Path:
    return Path(f"{model}.sha256")


def write_sha256_sidecar(model: Path, digest: str) -> Path:
    """Write ``MODEL.sha256`` for the file that will be (or is) at ``model``."""
    side = sha256_sidecar(model)
    with atomic_path(side) as tmp:
        tmp.write_text(f"{digest}  {Path(model).name}\n")
    return side


def read_sha256_sidecar(model: Path) -> str | None:
    side = sha256_sidecar(model)
    if not side.is_file():
        return None
    fields = side.read_text(errors="replace").split()
    if not fields or len(fields[0]) != 64 or any(c not in "0123456789abcdef" for c in fields[0].lower()):
        raise EcgEdgeError(f"{side} is not a 'sha256  name' line; export {model.name} again with `ecgedge export`.")
    return fields[0].lower()


def verify_model_file(model: Path, warn=None) -> bool:
    """True when ``model`` matches its sidecar; False (and a warning) when it has none.

    Raises EcgEdgeError when the bytes differ from the recorded SHA-256.
    """
    model = Path(model)
    side = sha256_sidecar(model)
    key = (str(model.resolve()), *_stamp(model), *_stamp(side))
    if key in _checked:  # evaluate and report may ask twice in one process; hash once
        return _checked[key]
    expected = read_sha256_sidecar(model)
    if expected is None:
        (warn or _stderr)(f"warning: {model} has no {sha256_sidecar(model).name}; its bytes cannot be checked (export it again to get one).")
        _checked[key] = False
        return False
    if sha256_file(model) != expected:
        raise EcgEdgeError(
            f"{model} does not match the SHA-256 in {sha256_sidecar(model).name}: its bytes changed after export; "
            "export it again with `ecgedge export RUN -o DIR` or restore the file."
        )
    _checked[key] = True
    return True


_checked: dict[tuple, bool] = {}


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
