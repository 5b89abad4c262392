"""`ecgedge deploy --target local:DIR`: the deploy logic of the SSH target, minus the network.

Runs where no sshd is installed too; the SSH cases (refusals, rollback, interrupted upload) are in
tests/test_deploy_ssh.py.
"""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("cryptography")

from conftest import run_cli  # noqa: E402
from deploy_fixtures import gateway_root, keypair, tiny_export  # noqa: E402
from ecgedge.deploy import rollout  # noqa: E402
from ecgedge.deploy.bundle import build_bundle  # noqa: E402
from ecgedge.deploy.targets import parse_target  # noqa: E402
from ecgedge.errors import EcgEdgeError  # noqa: E402


@pytest.fixture(scope="module")
def signed(mitdb_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("local-deploy")
    pair = keypair(d)
    bundle = build_bundle(tiny_export(mitdb_dir, tmp_path_factory.getbasetemp()), d / "m.bundle", pair.private, data_dir=mitdb_dir, n_golden=40)
    return pair, bundle


def test_local_deploy_and_status(signed, tmp_path):
    pair, bundle = signed
    root = gateway_root(tmp_path / "gw", pair.public)
    marker = tmp_path / "restarted"
    res = run_cli("deploy", str(bundle.path), "--target", f"local:{root}", "--restart-cmd", f"readlink {{root}}/current > {marker}", "--health-cmd", "true")
    assert res.returncode == 0, res.stderr
    assert marker.read_text().strip() == f"versions/{bundle.version}" == os.readlink(root / "current")
    status = run_cli("deploy", "--status", "--target", f"local:{root}", "--json")
    assert status.returncode == 0, status.stderr
    s = json.loads(status.stdout)
    assert s["current"]["version"] == bundle.version and s["previous"] is None and s["versions"] == [bundle.version]


def test_a_first_deploy_that_fails_its_health_check_leaves_no_model_and_says_so(signed, tmp_path):
    pair, bundle = signed
    root = gateway_root(tmp_path / "gw", pair.public)
    service = rollout.Service(restart="true", health="false", health_timeout_s=0)
    with pytest.raises(EcgEdgeError, match="health check failed.*there was no previous version"):
        rollout.deploy_bundle(bundle.path, parse_target(f"local:{root}"), service)
    assert not (root / "current").exists() and not os.listdir(root / "versions")


def test_a_gateway_directory_that_is_not_set_up_gets_nothing(signed, tmp_path):
    res = run_cli("deploy", str(signed[1].path), "--target", f"local:{tmp_path / 'typo'}")
    assert res.returncode == 2 and "no trusted public keys" in res.stderr and "nothing was uploaded" in res.stderr
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--target", "local:/tmp/x"], "give exactly one of BUNDLE, --rollback or --status"),
        (["--status", "--target", "ftp://gw/x"], "unknown target 'ftp://gw/x'"),
        (["--status", "--target", "local:/tmp/x", "--identity", "k"], "apply to ssh:// targets only"),
        (["--status", "--target", "ssh://pi@gw"], "expected ssh://[USER@]HOST[:PORT]/ABSOLUTE/DIR"),
        (["--status", "--target", "ssh://-oProxyCommand=x/opt"], "is not a host name"),
        (["--rollback", "--target", "local:/tmp/ecgedge-no-such-gateway", "--restart-cmd", "true"], "is not a gateway directory"),
    ],
)
def test_bad_deploy_options_are_one_line(args, message):
    res = run_cli("deploy", *args)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
