"""A real OpenSSH server on loopback, for the tests of ssh:// targets (deploy and validate).

The module fixture :func:`sshd` runs ``sshd -D -f CONFIG`` on a free port of 127.0.0.1 with a host
key, a user key and an ``authorized_keys`` made in a temporary directory (root logins by key only,
as CI runs as root); the client checks the host key against a known_hosts file written from it.
The target's Python is this interpreter with this checkout's sources (:data:`REMOTE_PYTHON`), and
its sessions get ``TMPDIR`` = :attr:`Sshd.remote_tmp`, so a test sees every temporary directory a
target makes. Skips where the OpenSSH server or client is missing.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

#: the target's Python: this interpreter with this checkout's sources (a gateway has `pip install ecgedge[gateway]`)
REMOTE_PYTHON = f"env PYTHONPATH={SRC} {sys.executable}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    def __init__(self, directory: Path, port: int, user: str, identity: Path, known_hosts: Path):
        self.directory, self.port, self.user, self.identity, self.known_hosts = directory, port, user, identity, known_hosts
        self.remote_tmp = directory / "remote-tmp"  # TMPDIR of every session

    def url(self, root: Path | str = "") -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{root}"

    def target(self, root: Path | str = "", **options):
        from ecgedge.deploy.targets import parse_target

        return parse_target(self.url(root), identity=self.identity, known_hosts=self.known_hosts, remote_python=REMOTE_PYTHON, **options)

    def access_args(self) -> list[str]:
        """The CLI options that log in and name the target's Python (``--remote-python`` last)."""
        return ["--identity", str(self.identity), "--known-hosts", str(self.known_hosts), "--remote-python", REMOTE_PYTHON]

    def cli_args(self, root: Path) -> list[str]:
        return ["--target", self.url(root), *self.access_args()]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if not Path(SSHD).is_file() or not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        pytest.skip("OpenSSH server or client not installed (apt-get install openssh-server openssh-client); the loopback SSH tests need both")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    shutil.copy(d / "user_key.pub", d / "authorized_keys")
    (d / "remote-tmp").mkdir()
    port, user = _free_port(), getpass.getuser()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nAllowUsers {user}\nPermitRootLogin prohibit-password\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nMaxStartups 100\nLogLevel ERROR\n"  # StrictModes: the keys live under a world-writable /tmp
        f"SetEnv TMPDIR={d / 'remote-tmp'}\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory (Debian's service makes it)
    check = subprocess.run([SSHD, "-t", "-f", str(d / "sshd_config")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    log = open(d / "sshd.log", "wb")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=subprocess.STDOUT)
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {(d / 'host_key.pub').read_text()}")
    server = Sshd(d, port, user, d / "user_key", d / "known_hosts")
    probe = ["ssh", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={d / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
             "-i", str(d / "user_key"), "-p", str(port), f"{user}@127.0.0.1", "true"]  # fmt: skip
    deadline = time.monotonic() + 20
    while subprocess.run(probe, capture_output=True).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            pytest.fail(f"sshd did not accept a login: {(d / 'sshd.log').read_text()[-2000:]}")
        time.sleep(0.2)
    yield server
    proc.terminate()
    proc.wait(timeout=10)
    log.close()
