"""Targets and on-target validation without emulation: the check script, subsets, comparisons, profiles, the CLI.

The emulated aarch64 target itself is tested in tests/test_target_qemu.py (root, qemu, debootstrap).
The host target runs the real check script in a fresh interpreter, exactly as a Pi would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from ecgedge.errors import EcgEdgeError
from target_models import tiny_int8  # noqa: F401  (a fixture)

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def tiny_beats(mitdb_dir):
    from target_models import tiny_beats

    return tiny_beats(mitdb_dir)


# --------------------------------------------------------------------------- the check script


def _check(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "ecgedge.firmware_host.check", *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def test_check_script_writes_the_runtimes_logits_and_its_measurements(tiny_int8, tiny_beats, tmp_path):
    from ecgedge.firmware_host.runtime import load_runtime

    images, rr, _ = tiny_beats
    np.savez(tmp_path / "in.npz", images=images[:50], rr=rr[:50])
    for model in tiny_int8.values():
        out = tmp_path / f"{model.name}.npz"
        res = _check(model, "--inputs", tmp_path / "in.npz", "-o", out, "--batch", "16")
        assert res.returncode == 0, res.stderr
        report = json.loads(res.stdout.strip().splitlines()[-1])
        with np.load(out) as d:
            logits, classes, saved = d["logits"], d["classes"], json.loads(str(d["report"]))
        expected = load_runtime(model).predict(images[:50], rr[:50])
        np.testing.assert_array_equal(logits, expected)  # same runtime, same inputs: the same numbers
        np.testing.assert_array_equal(classes, expected.argmax(1))
        assert saved == report and report["beats"] == 50 and report["batch"] == 16 and report["precision"] == "int8"
        assert report["peak_rss_bytes"] >= report["peak_rss_after_load_bytes"] >= report["peak_rss_after_imports_bytes"] > 0
        assert report["inference_s"] > 0 and report["emulated_cpu"] is None


def test_check_script_measures_its_own_memory_not_its_launchers(tiny_int8, tiny_beats, tmp_path):
    """Linux starts a process's peak-memory counter at its launcher's size: the check measures in a fresh worker."""
    images, rr, _ = tiny_beats
    np.savez(tmp_path / "in.npz", images=images[:8], rr=rr[:8])
    ballast = np.ones(1 << 30, np.uint8)  # 1 GiB resident in this process, the launcher
    res = _check(tiny_int8["onnx"], "--inputs", tmp_path / "in.npz", "-o", tmp_path / "o.npz")
    assert res.returncode == 0 and ballast.all(), res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_bytes"] < 700 * 2**20  # a bare Python + numpy + runtime: ~150 MB


def test_check_script_refuses_bad_inputs_in_one_line(tiny_int8, tmp_path):
    model = tiny_int8["onnx"]
    np.savez(tmp_path / "float.npz", images=np.zeros((3, 32, 32), np.float32))
    res = _check(model, "--inputs", tmp_path / "float.npz", "-o", tmp_path / "o.npz")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "uint8" in res.stderr
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    res = _check(model, "--inputs", tmp_path / "junk.npz", "-o", tmp_path / "o.npz")
    assert res.returncode == 2 and "not an inputs file" in res.stderr
    assert not (tmp_path / "o.npz").exists()


# --------------------------------------------------------------------------- subsets, comparisons, profiles


def test_stratified_subset_is_deterministic_balanced_and_spread():
    from ecgedge.validate.on_target import stratified_subset

    labels = np.array([0] * 900 + [1] * 60 + [2] * 30 + [3] * 7 + [4] * 3)
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]
    pick = stratified_subset(labels, 60)
    assert np.array_equal(pick, stratified_subset(labels, 60)) and np.all(np.diff(pick) > 0)
    counts = np.bincount(labels[pick], minlength=5)
    # Q (3) and F (7) give their unused share to the others: 3 + 7 + 16 + 17 + 17
    assert counts.tolist() == [17, 17, 16, 7, 3]
    n_pos = np.flatnonzero(labels == 0)
    chosen = np.searchsorted(n_pos, pick[labels[pick] == 0])
    assert chosen.min() < 60 and chosen.max() > 840  # spread over the class, not its first beats
    assert np.array_equal(stratified_subset(labels, 5000), np.arange(len(labels)))
    with pytest.raises(EcgEdgeError, match="at least 1"):
        stratified_subset(labels, 0)


def _run(logits, name="t"):
    from ecgedge.validate.on_target import TargetRun

    return TargetRun({"target": name}, np.asarray(logits, np.float32), {}, 0.0)


def test_compare_states_differences_and_the_verdict():
    from ecgedge.validate.on_target import Tolerance, compare

    host = _run([[1.0, 0.0, 0.0], [0.0, 2.0, 1.9], [0.5, 0.4, 0.0]], "host")
    exact = compare(host, _run(host.logits), Tolerance(0.0, ""))
    assert exact["passed"] and exact["identical"] and exact["max_abs_logit_diff"] == 0 and exact["classes_equal"] == 3
    near = compare(host, _run(host.logits + np.float32(0.05)), Tolerance(0.1, ""))
    assert near["passed"] and not near["identical"] and near["beats_with_any_difference"] == 3
    assert not compare(host, _run(host.logits + np.float32(0.05)), Tolerance(0.0, ""))["passed"]
    flipped = host.logits.copy()
    flipped[1, 2] = 2.05  # within the tolerance, but the class changes: a failure
    res = compare(host, _run(flipped), Tolerance(0.2, ""))
    assert not res["passed"] and res["classes_equal"] == 2 and res["class_differences"] == [1]


def test_device_profiles_and_the_memory_verdict():
    from ecgedge.deploy.targets.profiles import PROFILES, RESERVED_MB, get_profile, memory_fit

    zero = get_profile("pi-zero-2w")
    assert zero.ram_mb == 512 and zero.cpu == "cortex-a53" and zero.budget_mb == 512 - RESERVED_MB
    assert [p.ram_mb for p in PROFILES.values()] == sorted(p.ram_mb for p in PROFILES.values())
    assert memory_fit(zero, zero.budget_mb * 1024 * 1024, "x")["fits"]
    assert not memory_fit(zero, (zero.budget_mb + 1) * 1024 * 1024, "x")["fits"]
    with pytest.raises(EcgEdgeError, match="pi-zero-2w"):
        get_profile("pi-zero")


def test_target_names():
    from ecgedge.deploy.targets.spec import parse_target, parse_targets

    assert parse_target("host").name == "host"
    t = parse_target("qemu-aarch64:cortex-a53")
    assert t.name == "qemu-aarch64:cortex-a53" and t.cpu == "cortex-a53"
    for bad, match in [("qemu-aarch64:cortex-a99", "cortex-a72"), ("qemu-aarch64", "name the emulated CPU"), ("pi4", "unknown target"), ("host:x", "no argument")]:
        with pytest.raises(EcgEdgeError, match=match):
            parse_target(bad)
    with pytest.raises(EcgEdgeError, match="twice"):
        parse_targets("host,host")
    # one parser for validating and deploying: a gateway directory only where deploying asks for one
    ts = parse_targets("host, ssh://pi@gateway:2222/opt/ecgedge/ ,local:/tmp/gw")
    assert [t.describe() for t in ts] == ["host", "ssh://pi@gateway:2222/opt/ecgedge", "local:/tmp/gw"]
    assert [t.kind for t in ts] == ["host", "ssh", "local"] and [t.root for t in ts] == [None, "/opt/ecgedge", "/tmp/gw"]
    assert parse_target("ssh://pi@gateway").root is None and parse_target("ssh://pi@gateway", remote_python="py3 -X utf8").python == ["py3", "-X", "utf8"]
    for bad, options, match in [
        ("ssh://pi@gateway", {"gateway": True}, "names no gateway directory"),
        ("host", {"gateway": True}, "names no gateway directory"),
        ("host", {"ssh_options": ["Port=2222"]}, "apply to ssh:// targets only"),
        ("host,qemu-aarch64:cortex-a72", {"remote_python": "python3"}, "applies to ssh:// and local: targets only"),
        ("ssh://pi@gateway:22x/opt", {}, "port is not a number"),
    ]:
        with pytest.raises(EcgEdgeError, match=match):
            parse_targets(bad, **options)


def test_emulated_targets_need_root_and_qemu_and_say_so(monkeypatch):
    from ecgedge.deploy.targets import qemu_rootfs

    monkeypatch.setattr(qemu_rootfs.os, "geteuid", lambda: 1000)
    with pytest.raises(EcgEdgeError, match="needs root"):
        qemu_rootfs.require_tools(build=True)
    monkeypatch.setattr(qemu_rootfs.os, "geteuid", lambda: 0)
    monkeypatch.setattr(qemu_rootfs.shutil, "which", lambda name: None if name == "debootstrap" else f"/usr/bin/{name}")
    with pytest.raises(EcgEdgeError, match="debootstrap.*apt-get install qemu-user-static binfmt-support debootstrap"):
        qemu_rootfs.require_tools(build=True)


def test_the_target_cache_lives_where_the_environment_says(monkeypatch, tmp_path):
    from ecgedge.deploy.targets import qemu_rootfs

    monkeypatch.setenv("ECGEDGE_TARGET_CACHE", str(tmp_path / "c"))
    assert qemu_rootfs.rootfs_dir() == tmp_path / "c" / "debian-bookworm-arm64"
    assert qemu_rootfs.read_state() == {}


def test_the_emulated_cpuinfo_is_written_inside_the_tree_only(tmp_path):
    """A first-stage debootstrap tree has ``proc -> /proc``: the fake cpuinfo must never go through a link."""
    from ecgedge.deploy.targets.qemu_rootfs import write_cpuinfo

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "proc").symlink_to(outside)
    with pytest.raises(EcgEdgeError, match="link or a mount point"):
        write_cpuinfo(root, "cortex-a72")
    assert list(outside.iterdir()) == []
    (root / "proc").unlink()
    write_cpuinfo(root, "cortex-a76")
    info = (root / "proc" / "cpuinfo").read_text()
    assert info.count("processor\t:") == 2 and "CPU part\t: 0xd0b" in info and "asimddp" in info


def test_chroot_commands_always_set_the_cpu(tmp_path):
    from ecgedge.deploy.targets.qemu_rootfs import chroot_command

    cmd, env = chroot_command(tmp_path, ["python3", "-V"], "cortex-a53")
    assert env["QEMU_CPU"] == "cortex-a53" and "QEMU_CPU=cortex-a53" in cmd
    assert cmd[:5] == ["chroot", str(tmp_path), "/usr/bin/env", "-i", cmd[4]] and cmd[-2:] == ["python3", "-V"]
    with pytest.raises(EcgEdgeError):
        chroot_command(tmp_path, ["true"], "max")


# --------------------------------------------------------------------------- validate on the host


def test_validate_on_the_host_scores_like_evaluate(tiny_int8, mitdb_dir, tmp_path):
    from ecgedge.deploy.targets.local import LocalTarget
    from ecgedge.evaluate import aami_metrics
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.validate.on_target import select_beats, validate_on_targets
    from ecgedge.validate.scoring import predict_model_file
    from ecgedge.validate.target_report import write_validation

    model = tiny_int8["tflite"]
    md = load_runtime(model).metadata
    full = predict_model_file(model, "DS2", mitdb_dir)
    beats = select_beats(model, md, "DS2", 40, mitdb_dir)
    assert len(beats.labels) == 40 and beats.set_size == len(full.labels) and "stratified" in beats.subset
    assert set(beats.index) <= set(full.index.tolist())
    result, runs = validate_on_targets(model, beats, [LocalTarget()], md)
    assert result["passed"] and [e["target"] for e in result["targets"]] == ["host"]
    host = result["targets"][0]
    pos = np.searchsorted(full.index, beats.index)
    np.testing.assert_array_equal(runs["host"].logits, full.logits[pos])  # the same beats, the same numbers as evaluate
    expected = aami_metrics(beats.labels, full.preds[pos])
    assert host["metrics"]["per_class"] == expected["per_class"] and host["metrics"]["format"] == "tflite"
    assert host["check"]["peak_rss_bytes"] > 0 and host["comparison"] is None
    paths = write_validation(tmp_path / "v", result, runs, beats)
    assert json.loads(paths[0].read_text())["beats"] == 40
    with np.load(paths[1]) as d:
        np.testing.assert_array_equal(d["logits/host"], runs["host"].logits)
    assert "| verdict | reference |" in paths[2].read_text()


def test_a_model_that_does_not_fit_the_profile_is_refused(tiny_int8, mitdb_dir, monkeypatch):
    from ecgedge.deploy.targets import profiles
    from ecgedge.deploy.targets.local import LocalTarget
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.validate.on_target import select_beats, validate_on_targets

    model = tiny_int8["onnx"]
    md = load_runtime(model).metadata
    beats = select_beats(model, md, "DS2", 10, mitdb_dir)
    monkeypatch.setitem(profiles.PROFILES, "tiny-board", profiles.DeviceProfile("tiny-board", "a board with 200 MB", "cortex-a53", 200))
    result, _ = validate_on_targets(model, beats, [LocalTarget()], md, profile="tiny-board")
    assert not result["passed"] and not result["profile"]["fits"] and result["profile"]["budget_mb"] == 8
    assert result["failures"] == [f"{model.name} peaks at {result['profile']['peak_mb']:.0f} MB on host; the tiny-board profile (a board with 200 MB, 200 MB) leaves 8 MB"]
    result, _ = validate_on_targets(model, beats, [LocalTarget()], md, profile="pi5")
    assert result["passed"] and result["profile"]["fits"]


def test_cli_validate(tiny_int8, mitdb_dir, tmp_path):
    model = tiny_int8["onnx"]
    res = run_cli("validate", str(model), "--subset", "20", "--data-dir", str(mitdb_dir), "-o", str(tmp_path / "v"), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["passed"] and out["beats"] == 20 and (tmp_path / "v" / "report.md").is_file()
    for args, match in [
        (["--target", "qemu-aarch64:cortex-a99"], "unknown CPU"),
        (["--target", "ssh-ish"], "unknown target"),
        (["--profile", "pi9"], "unknown device profile"),
        (["--subset", "0"], "at least 1"),
        (["-o", str(model)], "existing file"),
    ]:
        res = run_cli("validate", str(model), "--data-dir", str(mitdb_dir), *args)
        assert res.returncode == 2 and match in res.stderr and res.stderr.count("\n") == 1, (args, res.stderr)


# --------------------------------------------------------------------------- validate a bundle


@pytest.fixture(scope="module")
def tiny_bundle(tiny_int8, mitdb_dir, tmp_path_factory):
    """A signed bundle of the tiny int8 export, with the host's DS2 metrics of its ONNX file in the manifest."""
    from ecgedge.deploy.bundle import build_bundle
    from ecgedge.deploy.keys import generate_keys
    from ecgedge.validate.scoring import evaluate

    tmp = tmp_path_factory.mktemp("tiny-bundle")
    evaluate(tiny_int8["onnx"], "DS2", mitdb_dir)  # MODEL.metrics.json beside it: the manifest carries them
    pair = generate_keys(tmp / "keys", "signer")
    other = generate_keys(tmp / "other", "stranger")
    result = build_bundle(tiny_int8["onnx"].parent, tmp / "tiny.bundle", pair.private, data_dir=mitdb_dir, n_golden=40, profile="pi3")
    return {"path": result.path, "public": pair.public, "stranger": other.public, "manifest": result.manifest}


def test_validate_a_bundle_checks_it_as_the_gateway_does_then_each_model(tiny_bundle, tiny_int8, mitdb_dir, tmp_path):
    bundle = tiny_bundle["path"]
    res = run_cli("validate", str(bundle), "--public-key", str(tiny_bundle["public"]), "--data-dir", str(mitdb_dir), "-o", str(tmp_path / "v"), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["passed"] and out["bundle"]["version"] == tiny_bundle["manifest"]["version"]
    assert out["bundle"]["signature"].startswith("verified") and out["bundle"]["profile_used"] == "pi3" and out["bundle"]["profile_from"] == "bundle"
    files = sorted(Path(m["file"]).name for m in tiny_bundle["manifest"]["models"])
    assert sorted(v["model"].split(":", 1)[1].split("/")[-1] for v in out["validations"]) == files
    by_name = {v["model"].rsplit("/", 1)[1]: v for v in out["validations"]}
    onnx = by_name[tiny_int8["onnx"].name]
    # the whole set: the host's predictions are exactly those behind the manifest's metrics
    assert onnx["subset"] is None and onnx["manifest_host_metrics"] == {"compared": True, "equal": True, "what": "confusion matrix of the host's predictions vs the manifest's"}
    assert onnx["profile"]["name"] == "pi3" and onnx["profile"]["fits"] and onnx["needs"]["peak_rss_mb"] > 0
    tfl = by_name[tiny_int8["tflite"].name]
    assert tfl["manifest_host_metrics"]["compared"] is False  # no metrics file was written for it
    assert all(v["passed"] and len(v["targets"]) == 1 for v in out["validations"])
    report = (tmp_path / "v" / "report.md").read_text()
    assert report.startswith(f"# Bundle {out['bundle']['version']}") and "**All checks passed.**" in report
    assert {p.name for p in (tmp_path / "v").iterdir()} == {"validation.json", "report.md", *(f"predictions-{f}.npz" for f in files)}


def test_validate_refuses_a_bundle_it_cannot_trust_in_one_line(tiny_bundle, mitdb_dir, tmp_path):
    bundle = tiny_bundle["path"]
    tampered = tmp_path / "tampered.bundle"
    import tarfile

    with tarfile.open(bundle) as tar:
        member = next(m for m in tar.getmembers() if m.name.startswith("models/"))
    blob = bytearray(bundle.read_bytes())
    blob[member.offset_data + member.size // 2] ^= 0xFF  # one bit of a model file, after signing
    tampered.write_bytes(bytes(blob))
    cases = [
        ([str(bundle)], "give --public-key"),
        ([str(bundle), "--public-key", str(tiny_bundle["stranger"])], "key"),
        ([str(tampered), "--public-key", str(tiny_bundle["public"])], "refused"),
        ([str(bundle), "--public-key", str(tiny_bundle["public"]), "--model", "nope.onnx"], "holds no model 'nope.onnx'"),
        ([str(tiny_bundle["public"])], ""),  # a .pub file is neither a model file nor a bundle
    ]
    for args, match in cases:
        res = run_cli("validate", *args, "--subset", "10", "--data-dir", str(mitdb_dir))
        assert res.returncode == 2 and match in res.stderr and res.stderr.count("\n") == 1, (args, res.stderr)
