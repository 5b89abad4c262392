import pytest

from conftest import run_cli
from ecgedge import __version__

COMMANDS = [[], ["data"], ["data", "download"], ["data", "verify"], ["data", "summary"], ["data", "prepare"], ["data", "look"], ["validate"], ["deploy"]]


def test_version():
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"ecgedge {__version__}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command):
    res = run_cli(*command, "--help")
    assert res.returncode == 0, res.stderr
    assert "Usage" in res.stdout


def test_look_writes_a_png(mitdb_dir, tmp_path):
    out = tmp_path / "look.png"
    res = run_cli("data", "look", "--data-dir", str(mitdb_dir), "--records", "208,209", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [(["--prune", "1.5"], "--prune / compress.prune must be in (0, 1)"), (["--compress-epochs", "0"], "--compress-epochs / compress.epochs must be at least 1")])
def test_pipeline_rejects_bad_compress_options_before_training(args, message, mitdb_dir, tmp_path):
    res = run_cli("pipeline", *args, "--data-dir", str(mitdb_dir), "-o", str(tmp_path / "p"))
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "p").exists()  # nothing prepared, trained or written
