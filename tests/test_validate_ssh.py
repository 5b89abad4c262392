"""`ecgedge validate --target ssh://...`: the gateway runtime on a machine reached over SSH, compared with the host.

The machine is this one behind a real loopback OpenSSH server (:mod:`ssh_fixtures`), its Python
this interpreter, so the SSH target must give exactly the host's logits, describe the machine it
ran on, and leave no temporary directory in its ``TMPDIR``. The model is the tiny ONNX export of
:mod:`deploy_fixtures`.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from conftest import run_cli  # noqa: E402
from deploy_fixtures import export_dir  # noqa: E402,F401 (a fixture)
from ecgedge.errors import EcgEdgeError  # noqa: E402
from ssh_fixtures import sshd  # noqa: E402,F401 (a fixture)

MODEL = "tiny-run-fp32.onnx"


def _work_dirs(sshd) -> list[Path]:
    return sorted(sshd.remote_tmp.glob("ecgedge-target-*"))


def test_validate_over_ssh_gives_the_hosts_logits_and_describes_the_machine(sshd, export_dir, mitdb_dir, tmp_path):
    url = sshd.url("/opt/ecgedge")  # the gateway directory is named, as for deploy; validating only needs the login
    res = run_cli("validate", str(export_dir / MODEL), "--target", f"host,{url}", *sshd.access_args(), "--subset", "30",
                  "--data-dir", str(mitdb_dir), "-o", str(tmp_path / "v"), "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    host, remote = result["targets"]
    assert result["passed"] and host["target"] == "host" and remote["target"] == url and result["beats"] == 30
    assert remote["kind"] == "ssh" and remote["emulated"] is False
    assert remote["machine"] == platform.machine() and remote["python"] == platform.python_version() and remote["cpu"] == host["cpu"]
    assert any(p.startswith("onnxruntime==") for p in remote["packages"])
    assert remote["comparison"]["identical"] and remote["comparison"]["classes_equal"] == 30
    assert remote["check"]["backend"] == "onnxruntime" and remote["check"]["peak_rss_bytes"] > 0
    with np.load(tmp_path / "v" / "predictions.npz") as d:
        assert d[f"logits/{url}"].shape == (30, 5)
        np.testing.assert_array_equal(d[f"logits/{url}"], d["logits/host"])
    assert f"`{url}`" in (tmp_path / "v" / "report.md").read_text()
    assert _work_dirs(sshd) == []  # gone from the target (onnxruntime itself leaves a .ses file in TMPDIR)


def test_the_ssh_work_directory_holds_binary_files_and_is_removed_also_on_failure(sshd, tmp_path):
    target = sshd.target()  # no gateway directory: what validating needs
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(300_000))  # every byte value, more than one pipe buffer
    with pytest.raises(RuntimeError, match="the check failed"), target.workdir() as wd:
        assert Path(wd).parent == sshd.remote_tmp and Path(wd).is_dir()
        target.put(blob, f"{wd}/sub/blob.bin")
        target.get(f"{wd}/sub/blob.bin", tmp_path / "back.bin")
        assert (tmp_path / "back.bin").read_bytes() == blob.read_bytes()
        with pytest.raises(EcgEdgeError, match=f"copying {wd}/missing.npz from {sshd.url()} failed .*No such file"):
            target.get(f"{wd}/missing.npz", tmp_path / "missing.npz")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["back.bin", "blob.bin"]  # no partial file
        raise RuntimeError("the check failed")
    assert not Path(wd).exists() and _work_dirs(sshd) == []


def test_ssh_validation_problems_are_one_line_before_any_work(sshd, export_dir, mitdb_dir, tmp_path):
    model, out = str(export_dir / MODEL), tmp_path / "v"
    common = ["--data-dir", str(mitdb_dir), "-o", str(out), "--target", f"host,{sshd.url()}", "--known-hosts", str(sshd.known_hosts)]
    cases = [
        (["--identity", str(sshd.directory / "host_key")], "Permission denied"),  # a key the server does not accept
        (["--identity", str(sshd.identity), "--remote-python", "/nonexistent/python3"], "cannot run ecgedge.firmware_host"),
        (["--identity", str(tmp_path / "no-such-key")], "no such file"),
    ]
    for args, message in cases:
        res = run_cli("validate", model, *common, *args)
        assert res.returncode == 2 and message in res.stderr and res.stderr.count("\n") == 1, (args, res.stderr)
        assert not out.exists()
    res = run_cli("validate", model, "--data-dir", str(mitdb_dir), "--target", "host", "--identity", str(sshd.identity))
    assert res.returncode == 2 and "apply to ssh:// targets only" in res.stderr
    assert _work_dirs(sshd) == []
