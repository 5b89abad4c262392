"""`ecgedge deploy` against a real OpenSSH server on loopback, started here with its own keys.

The server is :mod:`ssh_fixtures`' (its own host and user keys, root logins by key only, the host
key checked against a known_hosts file written from it). The "gateway service" is a stand-in shell script (there is no systemd here): ``restart`` records which version
``current`` points at, ``health`` fails for versions listed in a ``broken`` file. The gateway side
runs as on a real gateway: ``python -m ecgedge.firmware_host`` started by the SSH session.

Every refusal must leave the gateway directory exactly as it was (compared file by file).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("cryptography")

from conftest import run_cli  # noqa: E402
from deploy_fixtures import export_dir, gateway_root, keys, rewrite_bundle, snapshot  # noqa: E402,F401 (fixtures)
from ssh_fixtures import sshd  # noqa: E402,F401 (a fixture)
from ecgedge.deploy import rollout  # noqa: E402
from ecgedge.deploy.bundle import build_bundle, pack_bundle, stage_bundle  # noqa: E402
from ecgedge.deploy.targets import GatewayRefused  # noqa: E402
from ecgedge.errors import EcgEdgeError  # noqa: E402
from ecgedge.firmware_host.install import install  # noqa: E402

SERVICE = """#!/bin/sh
# stand-in for `systemctl restart` / `systemctl is-active` of the gateway service
root=$2 state=$3
case "$1" in
  restart) readlink "$root/current" > "$state/running" ;;
  health) v=$(cat "$state/running") && [ "$v" = "$(readlink "$root/current")" ] && ! grep -qxF "$v" "$state/broken" ;;
esac
"""

#: a ProxyCommand that relays the SSH connection and drops it after LIMIT bytes from the client
RELAY = """import os, select, socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
limit, sent = int(sys.argv[3]), 0
while True:
    ready, _, _ = select.select([0, sock], [], [])
    if 0 in ready:
        data = os.read(0, 65536)
        if not data:
            break
        sent += len(data)
        if sent > limit:
            os._exit(0)  # the link dies mid-transfer
        sock.sendall(data)
    if sock in ready:
        data = sock.recv(65536)
        if not data:
            break
        os.write(1, data)
"""


@pytest.fixture(scope="module")
def bundles(export_dir, keys, mitdb_dir, tmp_path_factory):
    """Two versions of the same model (different golden sets), signed by the trusted key."""
    d = tmp_path_factory.mktemp("bundles")
    return [build_bundle(export_dir, d / f"v{i}.bundle", keys[0].private, data_dir=mitdb_dir, n_golden=n) for i, n in ((1, 60), (2, 80))]


def stand_in_service(tmp_path: Path) -> tuple[Path, rollout.Service]:
    """The SERVICE script's state directory and the deploy options that drive it."""
    state = tmp_path / "service"
    state.mkdir()
    (state / "broken").write_text("")
    script = tmp_path / "service.sh"
    script.write_text(SERVICE)
    return state, rollout.Service(restart=f"sh {script} restart {{root}} {state}", health=f"sh {script} health {{root}} {state}", health_timeout_s=0)


@pytest.fixture
def gateway(tmp_path, keys, bundles, sshd):
    """A gateway directory running v1, its stand-in service, and the deploy options.

    v1 is installed in-process (as a first deploy would leave it; that deploy over SSH is
    ``test_deploy_over_ssh_switches_restarts_and_reports``), which saves seconds per test.
    """
    root = gateway_root(tmp_path / "gateway", keys[0].public)
    state, service = stand_in_service(tmp_path)
    install(root, bundles[0].path)
    (root / "incoming").mkdir()
    subprocess.run(service.command(service.restart, sshd.target(root), None), shell=True, check=True)
    return root, state, service


def _running(state: Path) -> str:
    return (state / "running").read_text().strip()


def test_deploy_over_ssh_switches_restarts_and_reports(sshd, keys, bundles, tmp_path):
    root = gateway_root(tmp_path / "gateway", keys[0].public)
    state, service = stand_in_service(tmp_path)
    first = rollout.deploy_bundle(bundles[0].path, sshd.target(root), service)
    assert first.version == bundles[0].version and first.previous is None and first.self_test[0]["passed"]
    assert os.readlink(root / "current") == f"versions/{bundles[0].version}" and _running(state) == f"versions/{bundles[0].version}"
    res = run_cli("deploy", str(bundles[1].path), *sshd.cli_args(root), "--restart-cmd", service.restart, "--health-cmd", service.health, "--health-timeout", "0")
    assert res.returncode == 0, res.stderr
    assert f"current is {bundles[1].version} (previous {bundles[0].version})" in res.stdout and "classes equal on" in res.stdout
    assert os.readlink(root / "current") == f"versions/{bundles[1].version}" and os.readlink(root / "previous") == f"versions/{bundles[0].version}"
    assert _running(state) == f"versions/{bundles[1].version}"
    assert sorted(os.listdir(root / "incoming")) == []  # the upload is removed once installed

    status = run_cli("deploy", "--status", *sshd.cli_args(root))
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith(f"current:  {bundles[1].version}") and "tiny-run-fp32.onnx (onnx fp32)" in lines[0]
    assert lines[1].startswith(f"previous: {bundles[0].version}")


def test_rollback_over_ssh(gateway, sshd, bundles):
    root, state, service = gateway
    rollout.deploy_bundle(bundles[1].path, sshd.target(root), service)
    res = run_cli("deploy", "--rollback", *sshd.cli_args(root), "--restart-cmd", service.restart, "--health-cmd", service.health, "--health-timeout", "0")
    assert res.returncode == 0, res.stderr
    assert f"current is {bundles[0].version} (was {bundles[1].version})" in res.stdout
    assert _running(state) == f"versions/{bundles[0].version}" and os.readlink(root / "previous") == f"versions/{bundles[1].version}"


def _tamper_model(name: str, data: bytes) -> bytes:
    if not name.endswith(".onnx"):
        return data
    return data[:-1] + bytes([data[-1] ^ 1])


def _tamper_manifest(name: str, data: bytes) -> bytes:
    return data.replace(b'"fp32"', b'"int8"', 1) if name == "manifest.json" else data


def _traversal():
    import tarfile

    info = tarfile.TarInfo("../../escaped.txt")
    info.size = 3
    return [info]


@pytest.mark.parametrize(
    "case, change, message",
    [
        ("tampered manifest", dict(edit=_tamper_manifest), "does not verify with trusted key"),
        ("tampered model file", dict(edit=_tamper_model), "does not match its SHA-256 in the signed manifest"),
        ("unsigned", dict(edit=lambda n, d: None if n == "manifest.sig" else d), "is not signed"),
    ],
)
def test_refused_bundles_change_nothing_on_the_target(case, change, message, gateway, sshd, bundles, tmp_path):
    root, state, service = gateway
    bad = rewrite_bundle(bundles[1].path, tmp_path / "bad.bundle", **change)
    before = snapshot(root)
    res = run_cli("deploy", str(bad), *sshd.cli_args(root), "--restart-cmd", service.restart, "--health-cmd", service.health)
    assert res.returncode == 2, res.stdout
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0] and sshd.url(root) in errors[0]
    assert snapshot(root) == before and _running(state) == f"versions/{bundles[0].version}"


def test_a_path_traversal_archive_is_refused_by_the_host_and_by_the_gateway(gateway, sshd, bundles, tmp_path):
    root, state, service = gateway
    bad = rewrite_bundle(bundles[1].path, tmp_path / "bad.bundle", extra=_traversal())
    before = snapshot(root)
    res = run_cli("deploy", str(bad), *sshd.cli_args(root))
    assert res.returncode == 2 and "archive member '../../escaped.txt' contains '..'" in res.stderr  # before any upload
    assert snapshot(root) == before
    target = sshd.target(root)  # a host that does not look: the gateway itself refuses
    remote = target.upload(bad, "bad.bundle")
    with pytest.raises(GatewayRefused, match="contains '..' and would land outside the bundle directory"):
        target.gateway("install", "--root", target.root, "--remove-bundle", remote)
    assert snapshot(root) == before and _running(state) == f"versions/{bundles[0].version}"
    assert not (root.parent / "escaped.txt").exists() and not (root.parent.parent / "escaped.txt").exists()


def test_a_bundle_signed_by_an_untrusted_key_is_refused(gateway, sshd, export_dir, keys, mitdb_dir, tmp_path):
    root, _, service = gateway
    foreign = build_bundle(export_dir, tmp_path / "foreign.bundle", keys[1].private, data_dir=mitdb_dir, n_golden=20)
    before = snapshot(root)
    with pytest.raises(GatewayRefused, match=f"signed by key {keys[1].key_id}, which is not a trusted key"):
        rollout.deploy_bundle(foreign.path, sshd.target(root), service)
    assert snapshot(root) == before


def test_a_failed_self_test_keeps_the_running_version(gateway, sshd, export_dir, keys, mitdb_dir, bundles, tmp_path):
    """Signed by the trusted key, but its golden outputs are not what the target's runtime computes."""
    import numpy as np

    root, state, service = gateway
    staging = tmp_path / "staging"
    manifest = stage_bundle(export_dir, staging, data_dir=mitdb_dir, n_golden=30)
    with np.load(staging / "golden.npz") as z:
        arrays = dict(z)
    arrays["logits/models/tiny-run-fp32.onnx"][:, 0] += 0.01
    np.savez(staging / "golden.npz", **arrays)
    bad = pack_bundle(staging, manifest, keys[0].private, tmp_path / "bad.bundle")
    before = snapshot(root)
    with pytest.raises(GatewayRefused, match="self-test failed on this gateway"):
        rollout.deploy_bundle(bad.path, sshd.target(root), service)
    assert snapshot(root) == before and _running(state) == f"versions/{bundles[0].version}"


def test_a_failed_health_check_rolls_back_to_the_previous_version(gateway, sshd, bundles):
    root, state, service = gateway
    (state / "broken").write_text(f"versions/{bundles[1].version}\n")  # the new version "crashes" the service
    before = snapshot(root)
    with pytest.raises(EcgEdgeError, match=f"health check failed.*rolled back to {bundles[0].version}, its service is healthy again"):
        rollout.deploy_bundle(bundles[1].path, sshd.target(root), service)
    assert snapshot(root) == before  # links restored, the failed version removed
    assert _running(state) == f"versions/{bundles[0].version}"


def test_an_interrupted_upload_leaves_the_running_version_untouched(gateway, sshd, bundles, tmp_path):
    root, state, service = gateway
    relay = tmp_path / "relay.py"
    relay.write_text(RELAY)
    size = bundles[1].path.stat().st_size
    assert size // 2 > 50_000  # a login and a gateway command send ~10 kB: only the upload reaches the cut
    cut = f"ProxyCommand={sys.executable} {relay} 127.0.0.1 {sshd.port} {size // 2}"
    before = snapshot(root)
    with pytest.raises(EcgEdgeError, match="upload of v2.bundle .* failed .*the running version is untouched"):
        rollout.deploy_bundle(bundles[1].path, sshd.target(root, ssh_options=[cut]), service)
    assert snapshot(root) == before and _running(state) == f"versions/{bundles[0].version}"
    # a transfer that died before its clean-up could run leaves only a .partial- file: listed, never read
    (root / "incoming" / ".partial-deadbeef.bundle").write_bytes(bundles[1].path.read_bytes()[: size // 2])
    status = rollout.status(sshd.target(root))
    assert status["partial"] == ["incoming/.partial-deadbeef.bundle"] and status["current"]["version"] == bundles[0].version
    result = rollout.deploy_bundle(bundles[1].path, sshd.target(root), service)
    assert result.version == bundles[1].version and _running(state) == f"versions/{bundles[1].version}"


def test_ssh_failures_are_one_clear_line(sshd, tmp_path):
    root = tmp_path / "gw"
    wrong_host_key = tmp_path / "known_hosts"
    wrong_host_key.write_text(f"[127.0.0.1]:{sshd.port} {(sshd.directory / 'user_key.pub').read_text()}")  # not the server's key
    res = run_cli("deploy", "--status", "--target", sshd.url(root), "--identity", str(sshd.identity), "--known-hosts", str(wrong_host_key))
    assert res.returncode == 2 and "Host key verification failed" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = run_cli("deploy", "--status", *sshd.cli_args(root)[:-2], "--remote-python", "/nonexistent/python3")
    assert res.returncode == 2 and "cannot run ecgedge.firmware_host" in res.stderr
    res = run_cli("deploy", "--status", "--target", "ssh://pi@gateway:22x/opt/ecgedge")
    assert res.returncode == 2 and "port is not a number" in res.stderr
