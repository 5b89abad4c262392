"""Signed bundles: keys, what `ecgedge bundle` packs, and what the gateway accepts or refuses.

Built from a real export of a tiny model (tests/deploy_fixtures.py); the gateway side runs as a
user would run it on a gateway, ``python -m ecgedge.firmware_host``, or through its functions.
Every refused bundle must leave the gateway directory exactly as it was (compared file by file).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("cryptography")

from conftest import run_cli  # noqa: E402
from deploy_fixtures import export_dir, gateway_root, keys, rewrite_bundle, snapshot  # noqa: E402,F401 (fixtures)
from ecgedge.deploy.bundle import build_bundle, pack_bundle, stage_bundle  # noqa: E402
from ecgedge.errors import EcgEdgeError  # noqa: E402
from ecgedge.firmware_host import install as gw  # noqa: E402
from ecgedge.firmware_host.bundle_verify import verify_bundle  # noqa: E402
from ecgedge.firmware_host.runtime import load_runtime  # noqa: E402
from ecgedge.firmware_host.selftest import compare, tolerance_for  # noqa: E402
from ecgedge.firmware_host.signing import trusted_keys  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def bundle(export_dir, keys, tmp_path_factory, mitdb_dir):
    return build_bundle(export_dir, tmp_path_factory.mktemp("bundle") / "tiny.bundle", keys[0].private, data_dir=mitdb_dir, n_golden=120)


def _gateway(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "ecgedge.firmware_host", *args], capture_output=True, text=True, env=env, timeout=300)


def test_keys_generate_writes_a_private_key_only_the_owner_reads_and_never_overwrites(tmp_path):
    res = run_cli("keys", "generate", "-o", str(tmp_path / "k"))
    assert res.returncode == 0, res.stderr
    key, pub = tmp_path / "k" / "ecgedge.key", tmp_path / "k" / "ecgedge.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes() and b"PUBLIC KEY" in pub.read_bytes()
    before = key.read_bytes()
    again = run_cli("keys", "generate", "-o", str(tmp_path / "k"))
    assert again.returncode == 2 and "never overwritten" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert key.read_bytes() == before


def test_bundle_cli_packs_models_manifest_and_golden_vectors(export_dir, keys, mitdb_dir, tmp_path):
    out = tmp_path / "m.bundle"
    res = run_cli("bundle", str(export_dir), "-o", str(out), "--key", str(keys[0].private), "--data-dir", str(mitdb_dir), "--golden", "100")
    assert res.returncode == 0, res.stderr
    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
        assert all(m.isreg() for m in tar.getmembers())
    assert names[:2] == ["manifest.json", "manifest.sig"]
    assert manifest["schema"] == "ecgedge.bundle/1" and manifest["classes"] == ["N", "S", "V", "F", "Q"]
    assert set(names[2:]) == set(manifest["files"]) == {"golden.npz", "models/tiny-run-fp32.onnx"}
    assert manifest["preprocess"]["spectrogram"]["image_size"] == manifest["input_size"]
    (model,) = manifest["models"]
    assert model["format"] == "onnx" and model["precision"] == "fp32" and model["runtime"] == "onnxruntime"
    assert model["golden_tolerance"]["max_abs_logit_diff"] == 1e-4
    g = manifest["golden"]
    assert g["source"] == "MIT-BIH" and g["set"] == "DS2" and g["records"] == ["100"] and g["n"] + g["near_ties_left_out"] == 100
    assert manifest["toolkit"]["ecgedge"] and manifest["requires"]["runtimes"] == ["onnxruntime"]
    # what the model needs on a gateway: measured by the gateway's own check in a fresh interpreter
    need = model["needs"]
    assert need["size_bytes"] == manifest["files"]["models/tiny-run-fp32.onnx"]["size"]
    assert need["macs_per_beat"] > 0 and need["batch"] == 64
    assert 10 < need["peak_rss_mb"] < 2000 and manifest["requires"]["peak_rss_mb"] == need["peak_rss_mb"]
    assert manifest["requires"]["profile"] is None
    # the signature verifies with the public key, and the golden outputs are this host's, exactly
    gw_dir = tmp_path / "x"
    gw_dir.mkdir()
    verified = verify_bundle(out, trusted_keys(keys[0].public.parent), extract_to=gw_dir)
    assert verified.key_id == keys[0].key_id
    rt = load_runtime(gw_dir / "models" / "tiny-run-fp32.onnx")
    with np.load(gw_dir / "golden.npz") as z:
        assert z["images"].dtype == np.uint8 and len(z["images"]) == g["n"]
        assert set(z["labels"].tolist()) > {0}  # real beats of more than one class (record 100: N, S, V)
        np.testing.assert_array_equal(rt.predict(z["images"], z["rr"]), z["logits/models/tiny-run-fp32.onnx"])


def test_bundle_carries_host_metrics_when_the_export_has_them(export_dir, keys, tmp_path, mitdb_dir):
    import shutil

    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy)
    metrics = {"set": "DS2", "n": 1234, "accuracy": 0.9, "per_class": {"N": {"se": float("nan")}}, "model": "/host/path"}
    (copy / "tiny-run-fp32.onnx.metrics.json").write_text(json.dumps(metrics))
    r = build_bundle(copy, tmp_path / "b.bundle", keys[0].private, data_dir=mitdb_dir, n_golden=20)
    assert r.manifest["models"][0]["host_metrics"] == {"set": "DS2", "n": 1234, "accuracy": 0.9, "per_class": {"N": {"se": None}}}


def test_a_declared_profile_is_stated_and_a_model_that_cannot_fit_is_refused(export_dir, keys, tmp_path, mitdb_dir, monkeypatch):
    from ecgedge.deploy.targets import profiles

    r = build_bundle(export_dir, tmp_path / "b.bundle", keys[0].private, data_dir=mitdb_dir, n_golden=20, profile="pi-zero-2w")
    declared = r.manifest["requires"]["profile"]
    assert declared["name"] == "pi-zero-2w" and declared["ram_mb"] == 512 and declared["budget_mb"] == 512 - profiles.RESERVED_MB
    # a board whose budget is below what the host measured: refused before anything is written
    tiny = profiles.DeviceProfile("tiny", "a board with 200 MB", "cortex-a53", 200)
    monkeypatch.setitem(profiles.PROFILES, "tiny", tiny)
    out = tmp_path / "never.bundle"
    with pytest.raises(EcgEdgeError, match=r"peaks at \d+ MB on the host; the tiny profile .* leaves 8 MB"):
        build_bundle(export_dir, out, keys[0].private, data_dir=mitdb_dir, n_golden=20, profile="tiny")
    assert not out.exists()
    with pytest.raises(EcgEdgeError, match="unknown device profile 'pi7'"):
        build_bundle(export_dir, out, keys[0].private, data_dir=mitdb_dir, n_golden=20, profile="pi7")


def test_bundle_refuses_a_model_file_changed_after_export(export_dir, keys, tmp_path, mitdb_dir):
    import shutil

    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy)
    with open(copy / "tiny-run-fp32.onnx", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01")
    with pytest.raises(EcgEdgeError, match="does not match the SHA-256"):
        build_bundle(copy, tmp_path / "b.bundle", keys[0].private, data_dir=mitdb_dir, n_golden=20)
    assert not (tmp_path / "b.bundle").exists()


def test_without_mitdb_the_golden_beats_are_synthetic_and_say_so(export_dir, tmp_path):
    from ecgedge.deploy.golden import golden_vectors

    path = export_dir / "tiny-run-fp32.onnx"
    rt = load_runtime(path)
    meta = {**rt.metadata, "dataset": {**rt.metadata["dataset"], "data_dir": str(tmp_path / "absent")}}
    warnings = []
    g = golden_vectors([("models/m.onnx", path, rt)], meta, None, 30, warn=warnings.append)
    assert g.description["source"] == "synthetic" and "MIT-BIH not found" in warnings[0]
    assert g.images.shape[1:] == tuple(rt.input_size) and (g.labels == -1).all()
    np.testing.assert_array_equal(rt.predict(g.images, g.rr), g.logits["models/m.onnx"])


# ----------------------------------------------------------------------------- gateway refusals


def _install(root: Path, bundle: Path) -> dict:
    return gw.install(root, bundle)


@pytest.fixture
def live_root(tmp_path, keys, bundle):
    """A gateway directory with the bundle installed and current (what refusals must leave alone)."""
    root = gateway_root(tmp_path / "gw", keys[0].public)
    _install(root, bundle.path)
    return root


def _tampered_manifest(name, data):
    if name != "manifest.json":
        return data
    m = json.loads(data)
    m["classes"] = ["N", "S", "V", "Q", "F"]
    return json.dumps(m, indent=1).encode()


def _tampered_model(name, data):
    if not name.endswith(".onnx"):
        return data
    b = bytearray(data)
    b[len(b) // 2] ^= 0x01
    return bytes(b)


def _link(name: str, kind: bytes, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 3
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


REFUSALS = {
    "tampered manifest": (dict(edit=_tampered_manifest), "does not verify with trusted key"),
    "tampered model file": (dict(edit=_tampered_model), "does not match its SHA-256 in the signed manifest"),
    "unsigned": (dict(edit=lambda n, d: None if n == "manifest.sig" else d), "is not signed"),
    "dot-dot path": (dict(extra=[_file("../escaped.txt")]), "contains '..'"),
    "nested dot-dot": (dict(extra=[_file("models/../../escaped.txt")]), "contains '..'"),
    "absolute path": (dict(extra=[_file("/tmp/ecgedge-escaped.txt")]), "absolute path"),
    "symlink": (dict(extra=[_link("models/evil", tarfile.SYMTYPE, "/etc/passwd")]), "symbolic link"),
    "hard link": (dict(extra=[_link("models/evil", tarfile.LNKTYPE, "golden.npz")]), "hard link"),
    "device": (dict(extra=[_device("models/null")]), "device file"),
    "undeclared file": (dict(extra=[_file("models/extra.onnx")]), "which the signed manifest does not list"),
    "missing file": (dict(edit=lambda n, d: None if n == "golden.npz" else d), "which the archive lacks"),
    "duplicate member": (dict(extra=[_file("golden.npz")]), "appears twice"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_the_gateway_refuses_and_changes_nothing(case, bundle, live_root, tmp_path):
    changes, message = REFUSALS[case]
    bad = rewrite_bundle(bundle.path, tmp_path / "bad.bundle", **changes)
    before = snapshot(live_root)
    with pytest.raises(EcgEdgeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _install(live_root, bad)
    assert snapshot(live_root) == before
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/ecgedge-escaped.txt").exists()


def test_the_gateway_refuses_a_bundle_signed_by_an_untrusted_key(export_dir, keys, live_root, tmp_path, mitdb_dir):
    foreign = build_bundle(export_dir, tmp_path / "foreign.bundle", keys[1].private, data_dir=mitdb_dir, n_golden=20)
    before = snapshot(live_root)
    res = _gateway("install", "--root", str(live_root), str(foreign.path))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith("error: ") and len(res.stderr.strip().splitlines()) == 1
    assert f"signed by key {keys[1].key_id}, which is not a trusted key" in res.stderr
    assert snapshot(live_root) == before


def test_a_gateway_without_trusted_keys_accepts_nothing(bundle, tmp_path):
    root = tmp_path / "gw"
    root.mkdir()
    with pytest.raises(EcgEdgeError, match="no trusted public keys"):
        _install(root, bundle.path)
    assert not (root / "current").exists()


def test_a_failed_self_test_installs_nothing(export_dir, keys, live_root, tmp_path, mitdb_dir):
    """A validly signed bundle whose golden outputs the gateway's runtime does not reproduce."""
    staging = tmp_path / "staging"
    manifest = stage_bundle(export_dir, staging, data_dir=mitdb_dir, n_golden=20)
    with np.load(staging / "golden.npz") as z:
        arrays = dict(z)
    arrays["logits/models/tiny-run-fp32.onnx"][0, 0] += 1e-3  # 10x the fp32 tolerance, on one logit
    np.savez(staging / "golden.npz", **arrays)
    bad = pack_bundle(staging, manifest, keys[0].private, tmp_path / "bad.bundle")
    before = snapshot(live_root)
    res = _gateway("install", "--root", str(live_root), str(bad.path))
    assert res.returncode == 2 and "self-test failed on this gateway" in res.stderr and "max|dlogit| 0.001" in res.stderr
    assert snapshot(live_root) == before


def test_install_switches_current_atomically_and_keeps_the_previous(export_dir, keys, bundle, tmp_path, mitdb_dir):
    root = gateway_root(tmp_path / "gw", keys[0].public)
    first = _install(root, bundle.path)
    assert first["after"] == {"current": bundle.version, "previous": None} and first["self_test"][0]["passed"]
    assert os.readlink(root / "current") == f"versions/{bundle.version}"
    second = build_bundle(export_dir, tmp_path / "second.bundle", keys[0].private, data_dir=mitdb_dir, n_golden=40)
    res = _gateway("install", "--root", str(root), "--sha256", "0" * 64, str(second.path))
    assert res.returncode == 2 and "upload is incomplete" in res.stderr
    out = json.loads(_gateway("install", "--root", str(root), str(second.path)).stdout)
    assert out["after"] == {"current": second.version, "previous": bundle.version}
    assert sorted(p.name for p in (root / "versions").iterdir()) == sorted([bundle.version, second.version])
    back = json.loads(_gateway("rollback", "--root", str(root)).stdout)
    assert back["after"] == {"current": bundle.version, "previous": second.version}
    status = json.loads(_gateway("status", "--root", str(root)).stdout)
    assert status["current"]["version"] == bundle.version and status["current"]["models"][0]["format"] == "onnx"
    assert status["partial"] == [] and status["trusted_keys"] == ["ecgedge.pub"]


def test_leftovers_of_killed_installs_and_uploads_are_listed_and_removed_when_stale(bundle, keys, tmp_path):
    root = gateway_root(tmp_path / "gw", keys[0].public)
    (root / "versions" / ".partial-999999" / "models").mkdir(parents=True)  # as a killed extraction leaves it
    (root / "incoming").mkdir()
    for name, age_s in ((".partial-old.bundle", 7200), ("old.bundle", 7200), (".partial-new.bundle", 0)):
        (root / "incoming" / name).write_bytes(b"half a bundle")
        os.utime(root / "incoming" / name, (time.time() - age_s,) * 2)
    listed = ["incoming/.partial-new.bundle", "incoming/.partial-old.bundle", "incoming/old.bundle", "versions/.partial-999999"]
    assert gw.status(root)["partial"] == listed and gw.status(root)["current"] is None
    _install(root, bundle.path)
    assert gw.status(root)["partial"] == ["incoming/.partial-new.bundle"]  # may be another deploy's upload in flight


# ----------------------------------------------------------------------------- self-test arithmetic


def test_tolerances_follow_the_measured_arm_differences():
    assert tolerance_for("tflite", "int8")["max_abs_logit_diff"] == 0
    assert tolerance_for("onnx", "int8")["max_abs_logit_diff"] == 0.15
    assert tolerance_for("onnx", "int8", output_step=0.1)["max_abs_logit_diff"] == pytest.approx(0.2)
    assert tolerance_for("onnx", "fp32")["max_abs_logit_diff"] == 1e-4
    with pytest.raises(EcgEdgeError):
        tolerance_for("onnx", "int4")


def test_compare_demands_identity_at_zero_tolerance_and_equal_classes_always():
    ref = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]], np.float32)
    step = np.float32(0.074)
    assert compare("m", ref.copy(), ref, 0.0).passed
    one_lsb = ref.copy()
    one_lsb[0, 2] += step
    assert not compare("m", one_lsb, ref, 0.0).passed  # TFLite int8: one step off is a failure
    assert compare("m", one_lsb, ref, 0.15).passed  # ONNX int8: within tolerance
    flipped = ref.copy()
    flipped[1, 2] = 1.1  # within 0.6 of the reference but a different class
    c = compare("m", flipped, ref, 1.0)
    assert not c.passed and c.class_mismatches == 1
    assert not compare("m", ref[:1], ref, 1.0).passed  # wrong number of beats
