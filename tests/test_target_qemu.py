"""The emulated Raspberry-Pi-class target: a cached arm64 Debian root file system run by qemu-user.

Needs root, qemu-user-static (registered with binfmt_misc) and debootstrap; skips with the reason
where they are missing (CI runs as root and installs them: .ci/run). The root file system is built
once per machine (about 15 minutes on two shared cores) and cached outside the repository
(``$ECGEDGE_TARGET_CACHE`` or ``~/.cache/ecgedge/targets``); a changed checkout only reinstalls
the ecgedge wheel (about a minute). A tiny int8 model exported to ONNX and TFLite then runs on
60 stratified DS2 beats under an emulated Cortex-A72 and must match the host.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecgedge.errors import EcgEdgeError
from target_models import tiny_int8  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow
CPU = "cortex-a72"


@pytest.fixture(scope="session")
def emulated_target():
    from ecgedge.deploy.targets import qemu_rootfs
    from ecgedge.deploy.targets.qemu import QemuTarget

    cached = (qemu_rootfs.rootfs_dir() / "root" / "usr" / "bin" / "python3").is_file()
    try:
        qemu_rootfs.require_tools(build=not cached)
    except EcgEdgeError as exc:
        pytest.skip(f"emulated aarch64 target unavailable: {exc}")
    target = QemuTarget(CPU)
    target.prepare(log=print)  # built when absent, refreshed when this checkout changed
    return target


def test_the_target_runs_this_checkout_with_the_slim_gateway_install(emulated_target):
    from ecgedge.deploy.targets import qemu_rootfs

    state = qemu_rootfs.read_state()
    assert state["source_digest"] == qemu_rootfs.source_digests(qemu_rootfs.checkout_dir())[0]
    names = {p.split("==")[0].split(" @ ")[0].lower() for p in state["packages"]}
    assert {"numpy", "scipy", "onnxruntime", "ai-edge-litert", "ecgedge"} <= names
    assert not names & {"wfdb", "pandas", "matplotlib", "typer", "rich", "torch", "requests", "soundfile"}
    res = emulated_target.run([*emulated_target.python, "-c", "import platform, os; print(platform.machine(), os.environ['QEMU_CPU'])"])
    assert res.returncode == 0 and res.stdout.split() == ["aarch64", CPU], res.stderr
    res = emulated_target.run(["ecgedge", "--version"])  # the host command line is not there: one line says so
    assert res.returncode == 2 and "pip install 'ecgedge[cli]'" in res.stderr and "Traceback" not in res.stderr


def test_the_runtimes_see_the_emulated_pis_cpu(emulated_target, tiny_int8):
    """LiteRT's XNNPACK (what a Pi runs) needs a /proc/cpuinfo it can parse; without it LiteRT falls back to other kernels."""
    with emulated_target.workdir() as wd:
        emulated_target.put(tiny_int8["tflite"], f"{wd}/m.tflite")
        code = f"from ai_edge_litert.interpreter import Interpreter; Interpreter(model_path='{wd}/m.tflite').allocate_tensors()"
        res = emulated_target.run([*emulated_target.python, "-c", code])
    assert res.returncode == 0, res.stderr
    assert "XNNPACK delegate" in res.stderr and "Error in cpuinfo" not in res.stderr, res.stderr


def test_int8_models_on_an_emulated_cortex_a72_match_the_host(emulated_target, tiny_int8, mitdb_dir, tmp_path):
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.validate.on_target import select_beats, validate_on_targets
    from ecgedge.validate.target_report import write_validation

    for fmt, model in tiny_int8.items():
        md = load_runtime(model).metadata
        beats = select_beats(model, md, "DS2", 60, mitdb_dir)
        assert len(beats.labels) == 60 and len(np.unique(beats.labels)) >= 3
        result, runs = validate_on_targets(model, beats, [emulated_target], md, profile="pi4")
        host, qemu = result["targets"]
        assert result["passed"], result["failures"]
        assert qemu["target"] == f"qemu-aarch64:{CPU}" and qemu["check"]["machine"] == "aarch64" and qemu["check"]["emulated_cpu"] == CPU
        assert qemu["comparison"]["classes_equal"] == 60
        if fmt == "tflite":
            assert qemu["comparison"]["identical"]
            np.testing.assert_array_equal(runs[qemu["target"]].logits, runs["host"].logits)
        assert qemu["metrics"]["per_class"] == host["metrics"]["per_class"]
        assert result["profile"]["measured_on"] == qemu["target"] and result["profile"]["fits"]
        report = write_validation(tmp_path / fmt, result, runs, beats)[2].read_text()
        assert f"`qemu-aarch64:{CPU}`" in report and "**pass**" in report
