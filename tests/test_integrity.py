"""Issue 9, integrity and fail-clean: one regression test per fault class.

Most tests use the synthetic WFDB fixture (tests/synthetic_wfdb.py), not MIT-BIH. CLI tests run the
command as a user would and require: exit code 2, exactly one ``error:`` line on stderr, no
traceback, and nothing half-written. Faults that cannot be produced from outside (a full disk, a
read-only folder when the tests run as root) are injected into the child process by patching one
function before the CLI starts.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb

import ecgedge.data.dataset as dataset_mod
from conftest import run_cli
from ecgedge import jsonio
from ecgedge.atomic import atomic_path
from ecgedge.data.annotation_check import check_annotation_values
from ecgedge.data.dataset import META_FILE, prepare_dataset
from ecgedge.data.record_list import parse_record_list
from ecgedge.errors import DataError, EcgEdgeError
from ecgedge.preflight import removed_on_failure
from ecgedge.preprocess import get_preset
from ecgedge.model_files import sha256_sidecar, verify_model_file, write_sha256_sidecar

RECORDS = "101,106"  # both DS1


def assert_user_error(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.splitlines()  # not stripped: a blank line before the error counts too
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in res.stderr, (needle, res.stderr)


def run_cli_patched(patch: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``ecgedge ARGS`` in a child process that first runs ``patch`` (to inject a fault)."""
    code = f"{patch}\nimport sys\nfrom ecgedge.cli import main\nsys.argv = ['ecgedge', *{list(args)!r}]\nmain()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)


def strict_json(text: str):
    """Parse as a strict JSON parser would: NaN / Infinity are errors."""

    def reject(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=reject)


def prepared_entries(cache: Path) -> list[Path]:
    root = cache / "prepared"
    return sorted(root.iterdir()) if root.is_dir() else []


# --- record lists --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["summary", "prepare"])
def test_a_repeated_record_is_refused(synthetic_mitdb, tmp_path, command):
    d = synthetic_mitdb()
    cache = tmp_path / "cache"
    res = run_cli("data", command, "--data-dir", str(d), "--records", "101,106,106", env={"ECGEDGE_CACHE_DIR": str(cache)})
    assert_user_error(res, "106 more than once", "list each record once")
    assert prepared_entries(cache) == []


@pytest.mark.parametrize("records", [",", "", " , "])
def test_an_empty_record_list_is_refused(synthetic_mitdb, tmp_path, records):
    d = synthetic_mitdb()
    res = run_cli("data", "prepare", "--data-dir", str(d), "--records", records, env={"ECGEDGE_CACHE_DIR": str(tmp_path / "c")})
    assert_user_error(res, "names no record")


def test_record_lists_are_normalised_in_the_library_too(synthetic_mitdb, tmp_path):
    assert parse_record_list(" 101, 106 ") == ("101", "106") and parse_record_list(None) is None
    with pytest.raises(DataError, match="101 more than once"):
        prepare_dataset(synthetic_mitdb(), get_preset("edge"), ("101", "106", "101"), cache_root=tmp_path, workers=1)


def test_ds2_only_records_in_the_inter_patient_summary(synthetic_mitdb):
    d = synthetic_mitdb(("100", "103"))  # both DS2
    res = run_cli("data", "summary", "--data-dir", str(d), "--records", "100,103", "--split", "inter-patient")
    assert_user_error(res, "DS1", "--split intra-patient")
    ok = run_cli("data", "summary", "--data-dir", str(d), "--records", "100,103", "--split", "intra-patient", "--json")
    assert ok.returncode == 0, ok.stderr


# --- records and annotations ---------------------------------------------------------------------


def test_a_sampling_rate_of_zero(synthetic_mitdb):
    d = synthetic_mitdb()
    hea = d / "101.hea"
    lines = hea.read_text().splitlines()
    first = lines[0].split()
    first[2] = "0"
    hea.write_text("\n".join([" ".join(first), *lines[1:]]) + "\n")
    res = run_cli("data", "summary", "--data-dir", str(d), "--records", RECORDS)
    assert_user_error(res, str(hea), "sampling rate of 0")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: b"", "is empty"),
        (lambda raw: raw[: len(raw) // 2 + 1], "is truncated"),  # cut mid-word
        (lambda raw: raw[: (len(raw) // 4) * 2], "is truncated"),  # cut between words: no end marker
    ],
    ids=["empty", "odd-cut", "even-cut"],
)
def test_a_damaged_annotation_file_names_the_file(synthetic_mitdb, tmp_path, damage, message):
    d = synthetic_mitdb()
    atr = d / "106.atr"
    atr.write_bytes(damage(atr.read_bytes()))
    cache = tmp_path / "cache"
    for command in ("summary", "prepare"):
        res = run_cli("data", command, "--data-dir", str(d), "--records", RECORDS, env={"ECGEDGE_CACHE_DIR": str(cache)})
        assert_user_error(res, str(atr), message, "ecgedge data download")
    assert prepared_entries(cache) == []


def test_annotations_outside_the_record_or_out_of_order(synthetic_mitdb):
    d = synthetic_mitdb()
    header = wfdb.rdheader(str(d / "101"))
    ann = wfdb.rdann(str(d / "101"), "atr")
    sample, symbol = np.asarray(ann.sample), np.asarray(ann.symbol)
    check_annotation_values(d / "101.atr", sample, symbol, header.sig_len, "fix")  # the intact file passes
    # an annotation past the end of the signal, written as a real file
    wfdb.wrann("101", "atr", np.append(sample, header.sig_len + 10), np.append(symbol, "N"), write_dir=str(d))
    res = run_cli("data", "summary", "--data-dir", str(d), "--records", RECORDS)
    assert_user_error(res, "101.atr", "outside the record")
    with pytest.raises(DataError, match="not strictly increasing"):
        check_annotation_values(d / "101.atr", sample[[0, 2, 1, 3]], symbol[:4], header.sig_len, "fix")
    with pytest.raises(DataError, match="no beat annotation"):
        check_annotation_values(d / "101.atr", sample[:3], np.array(["+", "~", "|"]), header.sig_len, "fix")


# --- the prepared-dataset cache ------------------------------------------------------------------


def test_cache_arrays_are_verified_by_content(synthetic_mitdb, tmp_path, monkeypatch):
    d = synthetic_mitdb()
    cfg = get_preset("edge")
    ds = prepare_dataset(d, cfg, ("101", "106"), cache_root=tmp_path, workers=1)
    meta = json.loads((ds.path / META_FILE).read_text())
    assert meta["integrity"]["algorithm"] == "sha256"
    assert set(meta["integrity"]["files"]) == {"images.npy", "windows.npy", "labels.npy", "records.npy", "samples.npy", "rr.npy"}
    good_labels = np.array(ds.labels)
    del ds

    # one byte of the labels changed, size unchanged: refused, with the rebuild command
    path = next((tmp_path / "prepared").iterdir())
    raw = bytearray((path / "labels.npy").read_bytes())
    raw[-1] ^= 0x01
    (path / "labels.npy").write_bytes(raw)
    with pytest.raises(DataError, match=r"corrupt: labels.npy does not match its sha256.*--rebuild.*or delete"):
        prepare_dataset(d, cfg, ("101", "106"), cache_root=tmp_path, workers=1)
    # the command-line user sees the same, in one line
    res = run_cli("data", "prepare", "--data-dir", str(d), "--records", RECORDS, env={"ECGEDGE_CACHE_DIR": str(tmp_path)})
    assert_user_error(res, "is corrupt", f"ecgedge data prepare --preset edge --records {RECORDS} --data-dir {d} --rebuild")
    # and the fix it names works
    again = prepare_dataset(d, cfg, ("101", "106"), cache_root=tmp_path, workers=1, rebuild=True)
    assert np.array_equal(again.labels, good_labels)
    assert prepare_dataset(d, cfg, ("101", "106"), cache_root=tmp_path, workers=1).path == again.path


def test_a_cache_without_hashes_is_rebuilt_not_trusted(synthetic_mitdb, tmp_path, monkeypatch):
    d = synthetic_mitdb()
    cfg = get_preset("edge")
    ds = prepare_dataset(d, cfg, ("101",), cache_root=tmp_path, workers=1)
    meta = json.loads((ds.path / META_FILE).read_text())
    del meta["integrity"]  # as written before content hashes existed
    (ds.path / META_FILE).write_text(json.dumps(meta))
    calls = []
    real = dataset_mod._write_dataset
    monkeypatch.setattr(dataset_mod, "_write_dataset", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = prepare_dataset(d, cfg, ("101",), cache_root=tmp_path, workers=1)
    assert calls == [1] and "integrity" in again.meta


def test_a_full_disk_while_preparing(synthetic_mitdb, tmp_path, monkeypatch):
    d = synthetic_mitdb()

    def no_space(file, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(file))

    monkeypatch.setattr(dataset_mod.np, "save", no_space)
    with pytest.raises(DataError, match="No space left on device.*free disk space there or set ECGEDGE_CACHE_DIR"):
        prepare_dataset(d, get_preset("edge"), ("101", "106"), cache_root=tmp_path, workers=1)
    assert prepared_entries(tmp_path) == []  # no half cache
    monkeypatch.undo()
    assert len(prepare_dataset(d, get_preset("edge"), ("101", "106"), cache_root=tmp_path, workers=1)) == 600  # the retry works


def test_a_full_disk_on_the_command_line(synthetic_mitdb, tmp_path):
    d = synthetic_mitdb()
    cache = tmp_path / "cache"
    patch = (
        "import errno, numpy\n"
        "def no_space(file, *a, **k):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device', str(file))\n"
        "numpy.save = no_space\n"
    )
    args = ("data", "prepare", "--data-dir", str(d), "--records", RECORDS, "--workers", "1")
    res = run_cli_patched(patch, *args, env={"ECGEDGE_CACHE_DIR": str(cache)})
    assert_user_error(res, "No space left on device", "ECGEDGE_CACHE_DIR")
    assert prepared_entries(cache) == []
    assert run_cli(*args, env={"ECGEDGE_CACHE_DIR": str(cache)}).returncode == 0


def test_a_read_only_cache_dir(synthetic_mitdb, tmp_path):
    d = synthetic_mitdb()
    cache = tmp_path / "cache"
    # chmod does not stop root, so the refusal is injected where the cache folder is created
    patch = (
        "import errno, os\n"
        f"CACHE = {str(cache)!r}\n"
        "real = os.mkdir\n"
        "def read_only(path, *a, **k):\n"
        "    if str(path).startswith(CACHE):\n"
        "        raise PermissionError(errno.EROFS, 'Read-only file system', str(path))\n"
        "    return real(path, *a, **k)\n"
        "os.mkdir = read_only\n"
    )
    res = run_cli_patched(patch, "data", "prepare", "--data-dir", str(d), "--records", RECORDS, env={"ECGEDGE_CACHE_DIR": str(cache)})
    assert_user_error(res, "Read-only file system", "set ECGEDGE_CACHE_DIR")


# --- options, checked before anything is written -------------------------------------------------


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "gpu"], "--device 'gpu' is not a device"),
        pytest.param(["--device", "cuda"], "no CUDA GPU", marks=pytest.mark.skipif("not _no_gpu()")),
        (["--lr", "nan"], "--lr is nan"),
        (["--lr", "-1"], "--lr is -1.0"),
        (["--seed", "-1"], "--seed is -1"),
        (["--weights", "no-such-file.pth"], "no such file"),
    ],
    ids=["device-gpu", "device-cuda", "lr-nan", "lr-negative", "seed-negative", "weights-missing"],
)
def test_bad_train_options_fail_before_the_run_directory_exists(args, message, synthetic_mitdb, tmp_path):
    out = tmp_path / "run"
    res = run_cli("train", *args, "--data-dir", str(synthetic_mitdb()), "-o", str(out))
    assert_user_error(res, message)
    assert not out.exists()


@pytest.mark.parametrize(
    "command",
    [["train"], ["compress", "RUN", "--prune", "0.5"], ["export", "RUN"], ["pipeline"]],
    ids=lambda c: c[0],
)
def test_output_naming_an_existing_file(command, tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    args = [str(tmp_path / "run") if a == "RUN" else a for a in command]
    res = run_cli(*args, "-o", str(target))
    assert_user_error(res, str(target), "existing file")
    assert target.read_text() == "not a directory"


def test_negative_seed_of_the_intra_patient_split(synthetic_mitdb):
    res = run_cli("data", "summary", "--data-dir", str(synthetic_mitdb()), "--records", RECORDS, "--split", "intra-patient", "--seed", "-2")
    assert_user_error(res, "--seed is -2")


def _truncated_checkpoint(path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"w": torch.zeros(1000)}, "epoch": 1}, path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def test_a_truncated_checkpoint_for_evaluate_and_resume(tmp_path):
    run = tmp_path / "run"
    (run).mkdir()
    (run / "config.json").write_text("{}")
    assert_user_error(run_cli("evaluate", str(run)), "holds no training settings")
    (run / "config.json").write_text('{"train": {}}')
    _truncated_checkpoint(run / "checkpoints" / "best.pt")
    res = run_cli("evaluate", str(run))
    assert_user_error(res, "best.pt is not a loadable checkpoint", "train")
    _truncated_checkpoint(run / "checkpoints" / "last.pt")
    res = run_cli("train", "-o", str(run), "--resume")
    assert_user_error(res, "last.pt is not a loadable checkpoint", "restore the file")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]  # nothing changed


_LATE_FAILURE = """
from pathlib import Path
import ecgedge.train.stage as stage
from ecgedge.errors import EcgEdgeError
def train_run(config, data_dir, run_dir, resume=False, progress=None):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text("{{}}")
    if {checkpoint}:
        (run_dir / "checkpoints").mkdir()
        (run_dir / "checkpoints" / "last.pt").write_bytes(b"state")
    raise EcgEdgeError("late failure")
stage.train_run = train_run
"""


def test_a_late_train_failure_leaves_nothing_that_blocks_a_retry(tmp_path):
    out = tmp_path / "run"
    res = run_cli_patched(_LATE_FAILURE.format(checkpoint=False), "train", "-o", str(out))
    assert_user_error(res, "late failure")
    assert not out.exists()  # a plain retry is not told "already holds a run"
    # once a checkpoint exists, the run stays, so that --resume can continue it
    res = run_cli_patched(_LATE_FAILURE.format(checkpoint=True), "train", "-o", str(out))
    assert_user_error(res, "late failure")
    assert (out / "checkpoints" / "last.pt").is_file()


def test_removed_on_failure_keeps_what_was_there(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    (d / "old.txt").write_text("keep")
    with pytest.raises(KeyboardInterrupt), removed_on_failure(d):
        (d / "new.txt").write_text("half")
        (d / "sub").mkdir()
        raise KeyboardInterrupt
    assert sorted(p.name for p in d.iterdir()) == ["old.txt"]


# --- JSON and model files ------------------------------------------------------------------------


def test_json_never_holds_nan_or_infinity(tmp_path):
    from ecgedge import run_dirs

    obj = {"ppv": float("nan"), "max": np.float32("inf"), "neg": -float("inf"), "list": [1.0, np.nan], "arr": np.array([0.5, np.inf]), "n": np.int64(3)}
    expected = {"ppv": None, "max": None, "neg": None, "list": [1.0, None], "arr": [0.5, None], "n": 3}
    assert strict_json(jsonio.dumps(obj)) == expected
    run_dirs.write_json(tmp_path / "m.json", obj)
    assert strict_json((tmp_path / "m.json").read_text()) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left


def test_json_output_of_the_command_line_is_strict(synthetic_mitdb):
    res = run_cli("data", "summary", "--data-dir", str(synthetic_mitdb()), "--records", RECORDS, "--json")
    assert res.returncode == 0, res.stderr
    assert strict_json(res.stdout)["sets"]["DS1"]["N"] > 0


def test_an_interrupted_write_leaves_no_file(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous, complete")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".onnx"
        tmp.write_bytes(b"half of a new mod")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"previous, complete"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_model_file_sha256_sidecar(tmp_path, capsys):
    import hashlib

    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3" * 100)
    assert verify_model_file(model) is False and "has no m.tflite.sha256" in capsys.readouterr().err
    write_sha256_sidecar(model, hashlib.sha256(model.read_bytes()).hexdigest())
    assert sha256_sidecar(model).read_text().split() == [hashlib.sha256(model.read_bytes()).hexdigest(), "m.tflite"]
    assert verify_model_file(model) is True
    raw = bytearray(model.read_bytes())
    raw[7] ^= 0x10  # same size, one bit
    model.write_bytes(raw)
    os.utime(model, ns=(1, 1))  # a new mtime, as any rewrite has
    with pytest.raises(EcgEdgeError, match="does not match the SHA-256 in m.tflite.sha256"):
        verify_model_file(model)
