"""``ssh://[USER@]HOST[:PORT][/DIR]``: a machine (a gateway at ``DIR``) reached with the system's OpenSSH client.

Why the ``ssh`` program rather than paramiko or asyncssh: it is what operators already use and
debug with, so the user's ``~/.ssh/config`` (aliases, ``ProxyJump``, per-host keys), agent and
``known_hosts`` apply unchanged; host keys are checked by OpenSSH's own code; and the host needs
no extra Python dependency. Every call runs with ``BatchMode=yes`` (never a password or host-key
prompt: an unknown host key fails instead of being trusted) and keepalives, so a dead link ends
the command instead of hanging it. Files travel as ``ssh HOST 'cat > FILE'`` with the local file
on stdin, which needs nothing on the gateway beyond a POSIX shell (no sftp subsystem).

Each call is a fresh connection (no ControlMaster): a deploy makes about six, a validation about
ten, and a dropped one never takes a shared master connection down with it. ``DIR`` (the gateway
directory) is what deploying needs; validating runs in a temporary directory and needs none.
"""

from __future__ import annotations

import shlex
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from ecgedge.deploy.targets.base import Target, last_line, run_process
from ecgedge.errors import EcgEdgeError

USAGE = "expected ssh://[USER@]HOST[:PORT]/ABSOLUTE/DIR, e.g. ssh://pi@gateway.local/opt/ecgedge."
SSH_FAILED = 255  # ssh's own exit status: no connection, authentication or host-key failure
DEFAULT_PYTHON = "python3"


class SshTarget(Target):
    kind = "ssh"

    def __init__(self, host: str, root: str | None = None, *, user: str | None = None, port: int | None = None, identity: Path | None = None,
                 known_hosts: Path | None = None, options: list[str] | None = None, python: str | None = None):  # fmt: skip
        if not host or host.startswith("-"):
            raise EcgEdgeError(f"ssh target host {host!r} is not a host name.")
        if user is not None and (not user or user.startswith("-")):
            raise EcgEdgeError(f"ssh target user {user!r} is not a user name.")
        self.host, self.user, self.port = host, user, port
        root = str(PurePosixPath(root)) if root else None
        who = f"{user}@" if user else ""
        bracketed = f"[{host}]" if ":" in host else host
        super().__init__(f"ssh://{who}{bracketed}{f':{port}' if port else ''}{root or ''}", shlex.split(python or DEFAULT_PYTHON), root)
        self.identity = Path(identity).expanduser() if identity else None
        if self.identity and not self.identity.is_file():
            raise EcgEdgeError(f"--identity {self.identity}: no such file; give the private key that may log in to {host}.")
        self.known_hosts = Path(known_hosts).expanduser() if known_hosts else None
        if self.known_hosts and not self.known_hosts.is_file():
            raise EcgEdgeError(f"--known-hosts {self.known_hosts}: no such file.")
        self.options = list(options or [])
        for o in self.options:
            if "=" not in o:
                raise EcgEdgeError(f"--ssh-option {o!r} must be KEY=VALUE (as ssh -o takes it).")

    @classmethod
    def from_url(cls, url: str, **kwargs) -> SshTarget:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise EcgEdgeError(f"{url}: the port is not a number in 1..65535.") from None
        if not parts.hostname or parts.query or parts.fragment:
            raise EcgEdgeError(f"{url}: {USAGE}")
        root = unquote(parts.path) if parts.path not in ("", "/") else None
        return cls(parts.hostname, root, user=unquote(parts.username) if parts.username else None, port=port, **kwargs)

    def ssh_argv(self, command: str) -> list[str]:
        argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.identity:
            argv += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
        for o in self.options:
            argv += ["-o", o]
        if self.user:
            argv += ["-l", self.user]
        return [*argv, "--", self.host, command]  # "--": a host name can never be read as an option

    def _sh(self, command, *, stdin=None, stdout=None, timeout=None):
        try:
            return run_process(self.ssh_argv(command), stdin, timeout, stdout)
        except FileNotFoundError as exc:
            if exc.filename != "ssh":
                raise
            raise EcgEdgeError("the OpenSSH client `ssh` is not installed on this machine (apt-get install openssh-client).") from None

    def _connection_problem(self, res):
        if res.returncode != SSH_FAILED:
            return None
        err = last_line(res.stderr)
        hint = ""
        if "Host key verification failed" in err:
            hint = " Add the gateway's host key to known_hosts first (ssh to it once, or --known-hosts FILE)."
        elif "Permission denied" in err:
            hint = " Give a key that may log in (--identity KEY, or ssh-agent)."
        return f"ssh to {self.describe()} failed: {(err or 'exit 255').rstrip('.')}.{hint}"
