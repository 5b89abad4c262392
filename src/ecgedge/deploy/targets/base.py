"""What every target is: a machine where commands run and files come and go, through one primitive.

A :class:`Target` implements only :meth:`Target._sh`: one POSIX shell command line run there,
stdin optionally fed from a local file, stdout optionally written (binary) to a local file. Every
other verb is built on it here, once:

* for any use: :meth:`~Target.run` (an argv), :meth:`~Target.put` / :meth:`~Target.get` (files),
  :meth:`~Target.workdir` (a temporary directory, always removed) and :func:`run_module`
  (``python -m MODULE`` with the target's Python, its failure as one line);
* for deploying: a gateway directory :attr:`~Target.root`, :meth:`~Target.upload` into its
  ``incoming/`` and :meth:`~Target.gateway` (``python -m ecgedge.firmware_host ...``, JSON back).

Targets whose files lie on this machine's disk (the host, a chroot) copy them directly instead of
piping them through a shell: :class:`LocalFiles`.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePosixPath

import ecgedge.deploy.targets.probe as probe
from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.install import INCOMING, PARTIAL

__all__ = ["GATEWAY_MODULE", "GatewayRefused", "LocalFiles", "Log", "Target", "json_answer", "last_line", "run_module", "run_process"]

Log = Callable[[str], None]

#: what the target's Python must be able to import (hint for the error when it cannot)
GATEWAY_MODULE = "ecgedge.firmware_host"
#: temporary directories on targets: ``mktemp`` template, so a leftover one is recognisable
WORKDIR_PREFIX = "ecgedge-target-"


class GatewayRefused(EcgEdgeError):
    """The target's Python ran the command and refused it (exit 2, one ``error:`` line): it changed nothing."""


def run_process(
    argv: list[str], stdin: Path | None = None, timeout: float | None = None, stdout: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """``argv`` with stdin from a file (binary) or nothing; stdout to a file (binary) or decoded as text, stderr as text."""
    with ExitStack() as files:
        fin = files.enter_context(open(stdin or "/dev/null", "rb"))
        fout = files.enter_context(open(stdout, "wb")) if stdout is not None else subprocess.PIPE
        res = subprocess.run(argv, stdin=fin, stdout=fout, stderr=subprocess.PIPE, timeout=timeout, env=env)
    text = res.stdout.decode(errors="replace") if res.stdout is not None else ""
    return subprocess.CompletedProcess(argv, res.returncode, text, res.stderr.decode(errors="replace"))


def json_answer(stdout: str):
    """The JSON object on the last line of ``stdout``, read whole (:func:`last_line` cuts lines for messages); ValueError if none."""
    lines = stdout.strip().splitlines()
    return json.loads(lines[-1] if lines else "")


def last_line(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else ""


class Target(ABC):
    """A machine that runs ``python -m ecgedge.firmware_host...``; see the module docstring.

    ``name`` is how the user writes it (``host``, ``qemu-aarch64:cortex-a72``, ``local:DIR``,
    ``ssh://...``), and what :meth:`describe` gives for messages; :meth:`facts` describes the
    machine for reports. ``python`` is the interpreter there (an argv prefix). ``root``, an
    absolute directory other than ``/``, is the gateway directory: only deploying needs it.
    """

    #: what kind of target, for reports: host, local, ssh, qemu-aarch64
    kind: str

    def __init__(self, name: str, python: list[str], root: str | None = None):
        if root is not None and (not root.startswith("/") or root.rstrip("/") == ""):
            raise EcgEdgeError(f"gateway directory {root!r} must be an absolute path other than '/'.")
        self.name, self.python = name, python
        self.root = str(PurePosixPath(root)) if root is not None else None

    # ------------------------------------------------------------------ the primitive

    @abstractmethod
    def _sh(self, command: str, *, stdin: Path | None = None, stdout: Path | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run ``command`` with ``/bin/sh`` semantics on the target; stdout to the file ``stdout`` when given, else as text."""

    def _connection_problem(self, res: subprocess.CompletedProcess) -> str | None:
        """A message when the command could not run at all (not: ran and failed); None here."""
        return None

    def _why(self, res: subprocess.CompletedProcess) -> str:
        return self._connection_problem(res) or last_line(res.stderr) or f"exit {res.returncode}"

    # ------------------------------------------------------------------ what the target is

    def describe(self) -> str:
        return self.name

    def preflight(self) -> None:
        """Raise EcgEdgeError now when the target cannot be used (no login, no gateway runtime)."""
        res = self.run([*self.python, "-c", f"import {GATEWAY_MODULE}"], timeout=120)
        if res.returncode != 0:
            raise module_error(self, GATEWAY_MODULE, res)

    def prepare(self, log: Log | None = None) -> None:
        """Make the target ready to run this checkout's gateway code (a no-op but for built targets)."""

    def facts(self) -> dict:
        """The machine, for reports: ``target``, ``kind``, ``machine``, ``cpu``, ``emulated``, Python and runtime versions."""
        return {"target": self.name, "kind": self.kind, "emulated": False, **self._probe()}

    def _probe(self) -> dict:
        res = self.run([*self.python, "-c", probe.source()], timeout=120)
        if res.returncode != 0:
            raise module_error(self, "the machine probe", res)
        return json_answer(res.stdout)

    # ------------------------------------------------------------------ built on _sh

    def shell(self, command: str, timeout: float | None = 600) -> subprocess.CompletedProcess:
        """``command`` on the target; EcgEdgeError when it could not run at all, else its result."""
        res = self._sh(command, timeout=timeout)
        problem = self._connection_problem(res)
        if problem:
            raise EcgEdgeError(problem)
        return res

    def run(self, argv: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run ``argv`` on the target; stdout and stderr as text; no exception when it ran and failed."""
        return self.shell(shlex.join(argv), timeout=timeout)

    def put(self, local: Path, remote: str) -> None:
        """Copy the local file ``local`` to the path ``remote`` on the target (its directory made when absent)."""
        why = self._copy_to(Path(local), remote)
        if why:
            raise EcgEdgeError(f"copying {Path(local).name} to {self.describe()} failed ({why}).")

    def _copy_to(self, local: Path, remote: str) -> str | None:
        """Copy ``local`` to ``remote``: None, or why it failed."""
        q = shlex.quote
        res = self._sh(f"mkdir -p {q(str(PurePosixPath(remote).parent))} && cat > {q(remote)}", stdin=local, timeout=None)
        return None if res.returncode == 0 else self._why(res)

    def get(self, remote: str, local: Path) -> None:
        """Copy the file ``remote`` of the target to the local path ``local`` (written atomically)."""
        from ecgedge.atomic import atomic_path

        with atomic_path(Path(local)) as tmp:
            res = self._sh(f"cat {shlex.quote(remote)}", stdout=tmp, timeout=None)
            if res.returncode != 0:
                raise EcgEdgeError(f"copying {remote} from {self.describe()} failed ({self._why(res)}).")

    @contextmanager
    def workdir(self) -> Iterator[str]:
        """A fresh directory on the target (its path there), removed when the block ends, also on failure."""
        res = self.shell(f'mktemp -d "${{TMPDIR:-/tmp}}/{WORKDIR_PREFIX}XXXXXX"', timeout=60)
        path = res.stdout.strip()
        if res.returncode != 0 or not path.startswith("/") or WORKDIR_PREFIX not in path or "\n" in path:
            raise EcgEdgeError(f"{self.describe()}: could not make a temporary directory ({last_line(res.stderr) or path!r}).")
        try:
            yield path
        finally:
            self._sh(f"rm -rf {shlex.quote(path)}", timeout=60)  # best effort: the link may be gone

    # ------------------------------------------------------------------ the gateway directory (deploy)

    def path(self, *parts: str) -> str:
        if self.root is None:
            raise EcgEdgeError(f"{self.describe()} names no gateway directory.")
        return str(PurePosixPath(self.root, *parts))

    def upload(self, local: Path, name: str) -> str:
        """Copy ``local`` to ``ROOT/incoming/name``: streamed under a ``.partial-`` name, renamed once complete.

        An interrupted transfer leaves only the ``.partial-`` file, which nothing on the gateway
        reads; the rename runs only after the transfer command succeeded.
        """
        partial, final = self.path(INCOMING, f"{PARTIAL}{name}"), self.path(INCOMING, name)
        q = shlex.quote
        why = self._copy_to(Path(local), partial)
        if why:
            self._sh(f"rm -f {q(partial)}", timeout=60)  # best effort: the link may be gone
            raise EcgEdgeError(f"upload of {Path(local).name} to {self.describe()} failed ({why}); the running version is untouched.")
        res = self.shell(f"mv -f {q(partial)} {q(final)}", timeout=60)
        if res.returncode != 0:
            raise EcgEdgeError(f"{self.describe()}: could not rename the upload into place ({last_line(res.stderr)}); the running version is untouched.")
        return final

    def gateway(self, *args: str, timeout: float | None = 900) -> dict:
        """Run ``python -m ecgedge.firmware_host ARGS`` on the target; its JSON answer, or EcgEdgeError."""
        res = run_module(self, GATEWAY_MODULE, args, timeout=timeout)
        try:
            return json_answer(res.stdout)
        except json.JSONDecodeError:
            raise EcgEdgeError(f"{self.describe()}: {GATEWAY_MODULE} {args[0]} printed no JSON answer: {last_line(res.stdout)!r}") from None


def run_module(target: Target, module: str, args: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    """``python -m module args`` on the target; a failure becomes one EcgEdgeError line (GatewayRefused for a refusal)."""
    res = target.run([*target.python, "-m", module, *args], timeout=timeout)
    if res.returncode != 0:
        raise module_error(target, module, res)
    return res


def module_error(target: Target, module: str, res: subprocess.CompletedProcess) -> EcgEdgeError:
    """The one line for a failed ``python ... module``: refused, cannot run at all, or failed."""
    err = last_line(res.stderr)
    if res.returncode == 2 and err.startswith("error: "):
        return GatewayRefused(f"{target.describe()}: {err[len('error: '):]}")
    if "No module named" in err or res.returncode == 127:
        return EcgEdgeError(
            f"{target.describe()}: {' '.join(target.python)} cannot run {module} ({err}); install the gateway runtime there "
            "(pip install 'ecgedge[gateway]') or pass --remote-python."
        )
    return EcgEdgeError(f"{target.describe()}: {module} failed (exit {res.returncode}): {err}")


class LocalFiles(Target):
    """A target whose file system this machine sees under :attr:`fs_root`: files are copied, not piped.

    ``/`` for this machine itself, the root file system's directory for a chroot; a target path
    must be absolute and free of ``..``, so nothing lands outside ``fs_root``.
    """

    fs_root: Path = Path("/")
    #: where :meth:`workdir` makes its directories (a path on the target)
    tmp_dir: str = "/tmp"

    def _here(self, remote: str) -> Path:
        """The path of ``remote`` (a path on the target) on this machine."""
        rel = PurePosixPath(remote)
        if not rel.is_absolute() or ".." in rel.parts:
            raise EcgEdgeError(f"{remote!r}: paths on {self.name} must be absolute, without '..'")
        return Path(self.fs_root) / rel.relative_to("/")

    def _copy_to(self, local: Path, remote: str) -> str | None:
        dest = self._here(remote)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, dest)
        except OSError as exc:
            return f"{exc.strerror or exc}: {exc.filename or dest}"
        return None

    def get(self, remote: str, local: Path) -> None:
        from ecgedge.atomic import atomic_path

        with atomic_path(Path(local)) as tmp:
            shutil.copyfile(self._here(remote), tmp)

    @contextmanager
    def workdir(self) -> Iterator[str]:
        here = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=self._here(self.tmp_dir)))
        try:
            yield "/" + str(here.relative_to(self.fs_root))
        finally:
            shutil.rmtree(here, ignore_errors=True)
