"""What every target shares: a gateway root, a way to run shell commands there, and what is built on it.

:class:`Target` needs only :meth:`Target._sh`; uploading and running the gateway's
``python -m ecgedge.firmware_host`` are built on it here, once for all targets.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath

from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.install import INCOMING, PARTIAL

#: what the target's Python must be able to import (hint for the error when it cannot)
GATEWAY_MODULE = "ecgedge.firmware_host"


class GatewayRefused(EcgEdgeError):
    """The gateway ran the command and refused it (exit 2, one ``error:`` line): it changed nothing."""


def run_process(argv: list[str], stdin: Path | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``argv`` with stdin from a file (binary) or nothing; stdout and stderr decoded as text."""
    with open(stdin, "rb") if stdin is not None else open("/dev/null", "rb") as fh:
        res = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=fh)
    return subprocess.CompletedProcess(argv, res.returncode, res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace"))


def last_line(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else ""


class Target(ABC):
    """A gateway directory ``root`` (absolute POSIX path on the target) and how to run commands there."""

    def __init__(self, root: str, python: list[str]):
        if not root.startswith("/") or root.rstrip("/") == "":
            raise EcgEdgeError(f"gateway directory {root!r} must be an absolute path other than '/'.")
        self.root = str(PurePosixPath(root))
        self.python = python

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def _sh(self, command: str, *, stdin: Path | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run ``command`` with ``/bin/sh`` semantics on the target (stdout/stderr as text)."""

    def path(self, *parts: str) -> str:
        return str(PurePosixPath(self.root, *parts))

    def _connection_problem(self, res: subprocess.CompletedProcess) -> str | None:
        """A message when the command could not run at all (not: ran and failed); None here."""
        return None

    def shell(self, command: str, timeout: float | None = 600) -> subprocess.CompletedProcess:
        res = self._sh(command, timeout=timeout)
        problem = self._connection_problem(res)
        if problem:
            raise EcgEdgeError(problem)
        return res

    def upload(self, local: Path, name: str) -> str:
        """Copy ``local`` to ``ROOT/incoming/name``: streamed under a ``.partial-`` name, renamed once complete.

        An interrupted transfer leaves only the ``.partial-`` file, which nothing on the gateway
        reads; the rename runs only after the transfer command succeeded.
        """
        incoming = self.path(INCOMING)
        partial, final = self.path(INCOMING, f"{PARTIAL}{name}"), self.path(INCOMING, name)
        q = shlex.quote
        res = self._sh(f"mkdir -p {q(incoming)} && cat > {q(partial)}", stdin=Path(local), timeout=None)
        if res.returncode != 0:
            self._sh(f"rm -f {q(partial)}", timeout=60)  # best effort: the link may be gone
            why = self._connection_problem(res) or last_line(res.stderr) or f"exit {res.returncode}"
            raise EcgEdgeError(f"upload of {Path(local).name} to {self.describe()} failed ({why}); the running version is untouched.")
        res = self.shell(f"mv -f {q(partial)} {q(final)}", timeout=60)
        if res.returncode != 0:
            raise EcgEdgeError(f"{self.describe()}: could not rename the upload into place ({last_line(res.stderr)}); the running version is untouched.")
        return final

    def gateway(self, *args: str, timeout: float | None = 900) -> dict:
        """Run ``python -m ecgedge.firmware_host ARGS`` on the target; its JSON answer, or EcgEdgeError."""
        argv = [*self.python, "-m", GATEWAY_MODULE, *args]
        res = self.shell(" ".join(shlex.quote(a) for a in argv), timeout=timeout)
        if res.returncode == 0:
            lines = res.stdout.strip().splitlines()
            try:
                return json.loads(lines[-1] if lines else "")
            except json.JSONDecodeError:
                raise EcgEdgeError(f"{self.describe()}: {GATEWAY_MODULE} {args[0]} printed no JSON answer: {last_line(res.stdout)!r}") from None
        err = last_line(res.stderr)
        if res.returncode == 2 and err.startswith("error: "):
            raise GatewayRefused(f"{self.describe()}: {err[len('error: '):]}")
        if "No module named" in err or res.returncode == 127:
            raise EcgEdgeError(
                f"{self.describe()}: {' '.join(self.python)} cannot run {GATEWAY_MODULE} ({err}); install the gateway runtime there "
                "(pip install 'ecgedge[gateway]') or pass --remote-python."
            )
        raise EcgEdgeError(f"{self.describe()}: {GATEWAY_MODULE} {args[0]} failed (exit {res.returncode}): {err}")
