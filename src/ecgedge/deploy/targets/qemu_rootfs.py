"""The emulated Raspberry-Pi-class gateway: an arm64 Debian bookworm root file system, built once and cached.

``ecgedge target build`` (root) makes it with debootstrap and runs it with qemu-user through
binfmt_misc: Debian's python3, a virtualenv at :data:`VENV` and ``pip install ecgedge[gateway]``
from a wheel of *this* checkout, so the target runs exactly the code being validated.

* Cache: ``$ECGEDGE_TARGET_CACHE``, else the user cache (``~/.cache/ecgedge/targets``); outside
  the repository. Built in a ``.partial`` directory and renamed when complete; rebuilt when absent.
* The root file system does not depend on the CPU: :func:`chroot_command` sets ``QEMU_CPU`` on
  every call (cortex-a53 = Pi 3 / Zero 2 W, cortex-a72 = Pi 4, cortex-a76 = Pi 5). qemu's
  default ``max`` CPU has features no Pi has; optimised TFLite int8 kernels gave other outputs
  under it, so no call goes without a CPU.
* The ecgedge package inside is refreshed when the checkout's sources changed (a digest of
  ``pyproject.toml`` and ``src/``), and the virtualenv made afresh when the declared
  dependencies changed, so it never keeps a package the checkout no longer declares.

Pitfalls found on this setup (``shared/notes/edge-toolchain.md``): no /sys bind mount
(onnxruntime crashed with it); instead ``sys/devices/system/cpu/{possible,present}`` hold ``0-1``
(TFLite's CPU detection reads them and picked other kernels without); pip in the chroot uses the
host's CA bundle and a clean environment (``env -i``). And /proc is not mounted: the runtimes' CPU
detection (pytorch/cpuinfo, in both LiteRT's XNNPACK and onnxruntime) parses ``/proc/cpuinfo``,
and qemu 7.2 (bookworm) shows the host's x86 one there. Then cpuinfo fails ("failed to parse
processor information"), LiteRT silently runs without XNNPACK, and the outputs are those of other
kernels than a Pi runs (measured: up to 3 LSB apart on 88 of 100 beats). So every run writes a
``proc/cpuinfo`` file of the emulated Pi's CPU (:func:`write_cpuinfo`); a newer qemu that
emulates /proc/cpuinfo itself takes precedence over the file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ecgedge.deploy.targets.base import Log
from ecgedge.errors import EcgEdgeError

__all__ = [
    "CPUS",
    "SUITE",
    "VENV",
    "cache_root",
    "rootfs_dir",
    "require_tools",
    "chroot_command",
    "ensure_rootfs",
    "read_state",
    "rootfs_lock",
]

@dataclass(frozen=True)
class EmulatedCpu:
    """A Pi's CPU as ``/proc/cpuinfo`` shows it (MIDR fields), for the runtimes' CPU detection."""

    board: str
    part: int
    variant: int
    revision: int
    features: str

    def cpuinfo(self, n_cpus: int) -> str:
        block = (
            "processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {f}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
            "CPU variant\t: {v:#x}\nCPU part\t: {p:#05x}\nCPU revision\t: {r}\n"
        )
        return "\n".join(block.format(i=i, f=self.features, v=self.variant, p=self.part, r=self.revision) for i in range(n_cpus))


#: QEMU_CPU names and the Raspberry Pi boards that carry them (revisions and features as on the boards)
CPUS = {
    "cortex-a53": EmulatedCpu("Raspberry Pi 3 / Zero 2 W", 0xD03, 0x0, 4, "fp asimd evtstrm crc32 cpuid"),
    "cortex-a72": EmulatedCpu("Raspberry Pi 4", 0xD08, 0x0, 3, "fp asimd evtstrm crc32 cpuid"),
    "cortex-a76": EmulatedCpu(
        "Raspberry Pi 5", 0xD0B, 0x4, 1, "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
    ),
}
SUITE = "bookworm"  # Raspberry Pi OS 12 is bookworm too: the same Python (3.11) and glibc
ARCH = "arm64"
VENV = "/opt/ecgedge/venv"
HOST_CA = "/etc/ecgedge/host-ca.pem"
N_CPUS = 2  # what the fake CPU lists and cpuinfo show: a Pi has 4 cores, this host 2
FAKE_CPUS = f"0-{N_CPUS - 1}\n"
STATE = "state.json"
INSTALL_HINT = "apt-get install qemu-user-static binfmt-support debootstrap"
# build steps run under emulation at 15-80x slower than native: generous limits, but limits
STEP_TIMEOUT_S = 3600
# what a clean environment inside the chroot may inherit from the host (network access for pip)
PASS_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "PIP_INDEX_URL", "PIP_DEFAULT_TIMEOUT")


def cache_root() -> Path:
    env = os.environ.get("ECGEDGE_TARGET_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("ecgedge")) / "targets"


def rootfs_dir() -> Path:
    """The cached target: ``root/`` (the file system) and ``state.json`` (what is installed)."""
    return cache_root() / f"debian-{SUITE}-{ARCH}"


def read_state() -> dict:
    path = rootfs_dir() / STATE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_state(state: dict) -> None:
    from ecgedge.jsonio import write_json

    write_json(rootfs_dir() / STATE, state)


def check_cpu(cpu: str) -> str:
    if cpu not in CPUS:
        raise EcgEdgeError(f"unknown CPU {cpu!r}; choose one of {', '.join(f'{c} ({b})' for c, b in CPUS.items())}.")
    return cpu


# --------------------------------------------------------------------------- host tools


def require_tools(build: bool = False) -> None:
    """Root, qemu-user-static (registered with binfmt_misc) and, to build, debootstrap; else one line."""
    what = "`ecgedge target build`" if build else "an emulated target"
    if os.geteuid() != 0:
        raise EcgEdgeError(f"{what} needs root (chroot); run it as root, e.g. with sudo.")
    missing = [tool for tool in ("qemu-aarch64-static", "chroot") + (("debootstrap",) if build else ()) if shutil.which(tool) is None]
    if missing:
        raise EcgEdgeError(f"{what} needs {', '.join(missing)}, not found: {INSTALL_HINT}")
    _ensure_binfmt()


BINFMT = Path("/proc/sys/fs/binfmt_misc")


def _ensure_binfmt() -> None:
    """Register qemu-aarch64 with binfmt_misc when it is not (a container without systemd)."""
    entry = BINFMT / "qemu-aarch64"
    if not (BINFMT / "status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True)
    if not entry.exists() or "enabled" not in entry.read_text().split("\n", 1)[0]:
        if shutil.which("update-binfmts"):
            subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True)
    if not entry.exists() or "enabled" not in entry.read_text().split("\n", 1)[0]:
        raise EcgEdgeError(f"qemu-aarch64 is not registered with binfmt_misc ({entry}); {INSTALL_HINT}, then update-binfmts --enable qemu-aarch64")


def _interpreter_inside(root: Path) -> None:
    """Without binfmt's F flag the kernel looks for qemu inside the chroot: put it there."""
    text = (BINFMT / "qemu-aarch64").read_text()
    fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    if "F" in fields.get("flags:", ""):
        return
    dest = root / fields["interpreter"].lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("qemu-aarch64-static"), dest)


# --------------------------------------------------------------------------- running inside


def chroot_command(root: Path, argv: Sequence[str], cpu: str, extra_env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """(command, environment) running ``argv`` in ``root`` under ``QEMU_CPU=cpu`` with a clean environment.

    ``QEMU_CPU`` goes into both environments: the host's, for the ``env`` binary the chroot starts,
    and the clean one, for the program ``env`` starts (each exec is a new emulator).
    """
    inner = {
        "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "QEMU_CPU": check_cpu(cpu),
        **(extra_env or {}),
    }
    cmd = ["chroot", str(root), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in inner.items()), *argv]
    return cmd, {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "QEMU_CPU": cpu}


def _write_inside(root: Path, rel: str, text: str) -> None:
    """Write ``root/rel``, refusing a link or a mount on the way: a first-stage debootstrap tree has
    ``proc -> /proc``, and writing through it would write to the host."""
    path = root
    for part in Path(rel).parts:
        path = path / part
        if path.is_symlink() or os.path.ismount(path):
            raise EcgEdgeError(f"{path} is a link or a mount point in the emulated target's tree; remove or unmount it: umount {path}")
        if path != root / rel:
            path.mkdir(exist_ok=True)
    path.write_text(text)


def write_cpuinfo(root: Path, cpu: str) -> None:
    """``/proc/cpuinfo`` of the emulated CPU in the (unmounted) ``proc`` of ``root``; see the module docstring."""
    _write_inside(root, "proc/cpuinfo", CPUS[check_cpu(cpu)].cpuinfo(N_CPUS))


def _chroot(root: Path, argv: Sequence[str], cpu: str, what: str, extra_env: dict[str, str] | None = None, cpuinfo: bool = True) -> str:
    if cpuinfo:
        write_cpuinfo(root, cpu)
    cmd, env = chroot_command(root, argv, cpu, extra_env)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=STEP_TIMEOUT_S)
    if res.returncode != 0:
        tail = " | ".join((res.stderr or res.stdout).strip().splitlines()[-3:])
        raise EcgEdgeError(f"{what} failed in the emulated target (exit {res.returncode}): {tail}")
    return res.stdout


@contextmanager
def rootfs_lock() -> Iterator[None]:
    """One at a time: builds, refreshes and runs (each run writes its own CPU's cpuinfo)."""
    lock = cache_root() / f".{rootfs_dir().name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- building


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/mounts") as fh:
        points = [line.split()[1].replace("\\040", " ") for line in fh]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def _remove_tree(path: Path) -> None:
    """Remove a (partial) root file system, unmounting first what a killed debootstrap left mounted."""
    if not path.exists():
        return
    for point in _mounts_below(path):
        subprocess.run(["umount", "-l", point], capture_output=True)
    if _mounts_below(path):
        raise EcgEdgeError(f"{path} still has file systems mounted below it; unmount them, then retry.")
    shutil.rmtree(path)


def _debootstrap(part: Path, cpu: str, log: Log) -> None:
    mirror = os.environ.get("ECGEDGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    log(f"debootstrap {SUITE} {ARCH} from {mirror} (first stage, native)")
    res = subprocess.run(
        ["debootstrap", f"--arch={ARCH}", "--foreign", "--variant=minbase", "--include=python3,python3-venv", SUITE, str(part), mirror],
        capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
    )
    if res.returncode != 0:
        raise EcgEdgeError(f"debootstrap failed (exit {res.returncode}): {' | '.join(res.stdout.strip().splitlines()[-2:])}; check the mirror {mirror} (ECGEDGE_DEBIAN_MIRROR)")
    _interpreter_inside(part)
    log(f"debootstrap second stage (emulated {cpu})")
    try:
        _chroot(part, ["/debootstrap/debootstrap", "--second-stage"], cpu, "debootstrap --second-stage", cpuinfo=False)
    finally:
        for point in _mounts_below(part):  # it mounts /proc and /sys itself; a failure leaves them
            subprocess.run(["umount", "-l", point], capture_output=True)


def _fake_cpu_lists(root: Path) -> None:
    for name in ("possible", "present", "online"):
        _write_inside(root, f"sys/devices/system/cpu/{name}", FAKE_CPUS)


def _host_ca_bundle() -> Path:
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise EcgEdgeError("no CA bundle found on the host for pip in the emulated target; set PIP_CERT=FILE.")


def _pip_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in PASS_ENV if os.environ.get(k)}
    env.update({"PIP_CERT": HOST_CA, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_ROOT_USER_ACTION": "ignore"})
    return env


def _build_rootfs(cpu: str, log: Log) -> None:
    final = rootfs_dir() / "root"
    part = rootfs_dir() / "root.partial"
    _remove_tree(part)
    part.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    _debootstrap(part, cpu, log)
    _fake_cpu_lists(part)
    _remove_tree(final)
    os.replace(part, final)
    _write_state({"suite": SUITE, "arch": ARCH, "python": _python_version(final, cpu), "debootstrap_s": round(time.monotonic() - t0, 1)})


def _python_version(root: Path, cpu: str) -> str:
    return _chroot(root, ["python3", "-c", "import platform; print(platform.python_version())"], cpu, "python3").strip()


# --------------------------------------------------------------------------- this checkout


def checkout_dir() -> Path:
    """The source checkout of the running ecgedge (what the target gets installed)."""
    import ecgedge

    root = Path(ecgedge.__file__).resolve().parents[2]
    py = root / "pyproject.toml"
    if not (py.is_file() and 'name = "ecgedge"' in py.read_text()):
        raise EcgEdgeError(f"ecgedge runs from {root}, not from a source checkout; the emulated target installs a checkout (pip install -e CHECKOUT).")
    return root


def _source_files(root: Path) -> list[Path]:
    files = [root / "pyproject.toml", root / "README.md"]
    for path in sorted((root / "src").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc" and ".egg-info" not in str(path):
            files.append(path)
    return [f for f in files if f.is_file()]


def source_digests(root: Path) -> tuple[str, str]:
    """(digest of the sources that go into the wheel, digest of pyproject.toml: the dependencies)."""
    h = hashlib.sha256()
    for path in _source_files(root):
        h.update(str(path.relative_to(root)).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest(), hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()


def _build_wheel(root: Path, dest: Path) -> Path:
    """A wheel of the checkout, built from a copy so the checkout gets no build/ or egg-info."""
    from importlib.metadata import PackageNotFoundError, version

    with tempfile.TemporaryDirectory(prefix="ecgedge-wheel-src-") as tmp:
        for path in _source_files(root):
            target = Path(tmp) / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        try:  # the host's own setuptools when new enough: no download
            isolated = int(version("setuptools").split(".")[0]) < 77
        except (PackageNotFoundError, ValueError):
            isolated = True
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest), tmp]
        res = subprocess.run(cmd + ([] if isolated else ["--no-build-isolation"]), capture_output=True, text=True)
        if res.returncode != 0:
            raise EcgEdgeError(f"building a wheel of {root} failed: {' | '.join(res.stderr.strip().splitlines()[-2:])}")
    wheels = sorted(dest.glob("ecgedge-*.whl"))
    if len(wheels) != 1:
        raise EcgEdgeError(f"building a wheel of {root} gave {len(wheels)} wheels")
    return wheels[0]


def _install_package(root: Path, cpu: str, fresh_venv: bool, log: Log) -> list[str]:
    """Install this checkout's wheel with its gateway extra; returns ``pip freeze`` of the venv."""
    with tempfile.TemporaryDirectory(prefix="ecgedge-wheel-", dir=root / "tmp") as tmp:
        wheel = _build_wheel(checkout_dir(), Path(tmp))
        inside = "/" + str(wheel.relative_to(root))
        (root / HOST_CA.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_host_ca_bundle(), root / HOST_CA.lstrip("/"))
        pip = [f"{VENV}/bin/python", "-m", "pip", "install", "-q"]
        if fresh_venv:
            _remove_tree(root / VENV.lstrip("/"))
            log(f"python3 -m venv {VENV}; pip install ecgedge[gateway] (emulated {cpu}; minutes)")
            _chroot(root, ["python3", "-m", "venv", VENV], cpu, "python3 -m venv")
            _chroot(root, [*pip, f"{inside}[gateway]"], cpu, "pip install ecgedge[gateway]", _pip_env())
        else:
            log(f"pip install {wheel.name} (sources changed; dependencies unchanged)")
            _chroot(root, [*pip, "--no-deps", "--force-reinstall", inside], cpu, "pip install ecgedge", _pip_env())
    _chroot(root, [f"{VENV}/bin/python", "-c", "import ecgedge.firmware_host.check"], cpu, "importing ecgedge.firmware_host")
    return _chroot(root, [f"{VENV}/bin/python", "-m", "pip", "freeze"], cpu, "pip freeze").splitlines()


def _disk_usage(path: Path) -> int:
    """Bytes on disk below ``path``, as ``du`` counts them (allocated blocks, hard links once)."""
    seen, total = set(), 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total + os.lstat(path).st_blocks * 512


def is_built(root: Path | None = None) -> bool:
    """Whether the root file system (default: the cached one) has its Python: debootstrap finished."""
    return ((root or rootfs_dir() / "root") / "usr" / "bin" / "python3").is_file()


def ensure_rootfs(cpu: str = "cortex-a72", force: bool = False, log: Log | None = None) -> dict:
    """Build the target when absent (or ``force``), refresh its ecgedge when the checkout changed.

    Returns the state (``state.json``): versions, sizes, build times, the installed packages.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    check_cpu(cpu)
    require_tools(build=force or not is_built())
    with rootfs_lock():
        root = rootfs_dir() / "root"
        built = force or not is_built(root) or not read_state().get("python")
        if built:
            _build_rootfs(cpu, log)
        state = read_state()
        sources, deps = source_digests(checkout_dir())
        venv_ok = (root / VENV.lstrip("/") / "bin" / "python").exists()
        if built or state.get("source_digest") != sources or not venv_ok:
            fresh = built or not venv_ok or state.get("deps_digest") != deps
            t0 = time.monotonic()
            freeze = _install_package(root, cpu, fresh, log)
            state.update(
                {
                    "source_digest": sources,
                    "deps_digest": deps,
                    "packages": freeze,
                    "venv": VENV,
                    "venv_bytes": _disk_usage(root / VENV.lstrip("/")),
                    "install_s" if fresh else "refresh_s": round(time.monotonic() - t0, 1),
                    "installed_from": str(checkout_dir()),
                }
            )
            _write_state(state)
        return {**state, "root": str(root), "rebuilt": built}
