"""A run directory: everything needed to trace and reproduce a result lives next to it."""

import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from ecgedge import __version__, jsonio
from ecgedge.errors import EcgEdgeError

CONFIG = "config.json"
VERSIONS = "versions.json"
HISTORY = "history.json"
METRICS = "metrics.json"
CHECKPOINTS = "checkpoints"
BEST = "best.pt"
LAST = "last.pt"

_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "wfdb", "onnx", "onnxruntime", "nncf", "ai-edge-litert")


def write_json(path: Path, obj) -> None:
    """Write strict JSON atomically (non-finite floats become null; see :mod:`ecgedge.jsonio`)."""
    jsonio.write_json(path, obj)


def read_json(path: Path):
    if not path.is_file():
        raise EcgEdgeError(f"{path} not found: is {path.parent} a run directory made by `ecgedge train`?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise EcgEdgeError(f"{path} is not valid JSON ({exc}); the run directory is damaged.") from None


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of ``names`` (packages that are not installed are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def versions() -> dict:
    return {
        "ecgedge": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        **package_versions(*_PACKAGES),
    }
