"""The gateway package imports and classifies with none of the host packages (torch, wfdb, typer, rich, ...).

A fresh interpreter gets an import hook (a ``sys.meta_path`` finder) that raises ImportError for
those packages and their submodules, as on a gateway install where they are absent. (A
``sys.modules[name] = None`` entry is not the same: scipy probes for torch itself and breaks on it.)
It then imports :mod:`ecgedge.firmware_host` and every module in it, and loads and runs a small
ONNX model built here with :mod:`onnx.helper` through :func:`load_runtime` and through the
on-target check script (:mod:`ecgedge.firmware_host.check`). The blocked packages are those that
``ecgedge[gateway]`` does not install (pyproject.toml).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

SRC = Path(__file__).resolve().parents[1] / "src"
BLOCKED = ("torch", "torchvision", "wfdb", "typer", "rich", "click", "pandas", "matplotlib", "soundfile", "requests", "platformdirs", "threadpoolctl")

GATEWAY = r"""
import importlib, json, pkgutil, sys

BLOCKED = {blocked!r}


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked: not installed on a gateway")
        return None


sys.meta_path.insert(0, Blocker())

import numpy as np

import ecgedge.firmware_host as fh

names = [m.name for m in pkgutil.walk_packages(fh.__path__, fh.__name__ + ".")]
for name in names:
    importlib.import_module(name)

from ecgedge.firmware_host import load_runtime

rt = load_runtime({model!r})
images = np.arange(3 * 32 * 32, dtype=np.int64).reshape(3, 32, 32) % 256
logits = rt.predict(images.astype(np.uint8))
from ecgedge.firmware_host.check import run_check

np.savez({inputs!r}, images=images.astype(np.uint8))
run_check({model!r}, {inputs!r}, {outputs!r})
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
checked = np.load({outputs!r})["logits"].tolist()
print(json.dumps({{"modules": names, "shape": list(logits.shape), "logits": logits.tolist(), "classes": list(rt.classes), "leaked": leaked, "checked": checked}}))
"""


def _tiny_onnx(path: Path) -> np.ndarray:
    """``image`` [B, 1, 32, 32] -> mean over pixels -> * w + b -> logits [B, 5]; returns w."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.linspace(-1.0, 1.0, 5, dtype=np.float32).reshape(1, 5)
    b = np.arange(5, dtype=np.float32) / 10
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["m"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Reshape", ["m", "shape"], ["m2"]),
            helper.make_node("MatMul", ["m2", "w"], ["y"]),
            helper.make_node("Add", ["y", "b"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 1, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", 5])],
        initializer=[
            numpy_helper.from_array(np.array([-1, 1], np.int64), "shape"),
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(b, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    meta = model.metadata_props.add()
    meta.key, meta.value = "ecgedge", json.dumps({"format": "onnx", "precision": "fp32", "classes": ["N", "S", "V", "F", "Q"]})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return w[0], b


def test_firmware_host_imports_and_predicts_without_host_packages(tmp_path):
    model = tmp_path / "tiny.onnx"
    w, b = _tiny_onnx(model)
    code = GATEWAY.format(blocked=BLOCKED, model=str(model), inputs=str(tmp_path / "in.npz"), outputs=str(tmp_path / "out.npz"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert {"ecgedge.firmware_host.runtime", "ecgedge.firmware_host.metadata", "ecgedge.firmware_host.latency", "ecgedge.firmware_host.qrs"} <= set(out["modules"])
    assert out["leaked"] == []
    assert out["shape"] == [3, 5] and out["classes"] == ["N", "S", "V", "F", "Q"]
    images = (np.arange(3 * 32 * 32).reshape(3, 32, 32) % 256).astype(np.float32) / 255
    expected = images.mean(axis=(1, 2))[:, None] * w[None] + b
    np.testing.assert_allclose(out["logits"], expected, rtol=1e-5, atol=1e-5)
    assert out["checked"] == out["logits"]  # the check script: the same runtime, the same numbers


def test_the_blocker_blocks(tmp_path):
    """The hook really makes those imports fail (so the test above proves something)."""
    code = GATEWAY.split("import numpy as np", 1)[0] + "\ntry:\n    import torch\nexcept ImportError as e:\n    print('blocked', e)\n"
    res = subprocess.run([sys.executable, "-c", code.format(blocked=BLOCKED, model="")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "blocked" in res.stdout, res.stderr[-2000:]
