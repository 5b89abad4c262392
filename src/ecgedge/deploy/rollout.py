"""``ecgedge deploy``: put a signed bundle on a gateway so that it never ends up without a working model.

Steps, each on the target through :class:`~ecgedge.deploy.targets.Target`:

1. ``status``: the gateway runtime answers, trusts at least one key, and what is current now (to return to);
2. upload to ``incoming/.partial-SHA.bundle``, renamed to ``incoming/SHA.bundle`` once complete;
3. ``install`` by the target's own ``python -m ecgedge.firmware_host``: SHA-256 of the upload,
   signature against the gateway's trusted keys, every checksum, safe extraction into a new
   version directory, golden-vector self-test by the gateway's runtime, then the atomic switch of
   ``current`` (the previous target becomes ``previous``);
4. restart the gateway service and health-check it (both commands configurable, see
   :class:`Service`);
5. on a failed restart or health check: ``restore`` the links found in step 1, remove the new
   version, restart and health-check the old one, and report.

Steps 1-3 change nothing the service reads until the switch, so any failure there (a refused
bundle, an interrupted upload, a failed self-test) leaves the running version untouched.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ecgedge.atomic import sha256_file
from ecgedge.deploy.targets import GatewayRefused, Target, last_line
from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.bundle_verify import read_manifest
from ecgedge.firmware_host.systemd import UNIT_NAME as DEFAULT_UNIT

_PLACEHOLDER = re.compile(r"\{(unit|root|version|python)\}")


@dataclass(frozen=True)
class Service:
    """How the gateway's service is restarted and checked.

    ``{unit}``, ``{root}``, ``{version}`` (the one just switched to) and ``{python}`` (the
    target's python, as for the gateway commands) are filled in, shell-quoted. The restart drives
    the systemd unit of ``python -m ecgedge.firmware_host unit`` (``sudo -n``: the deploy user
    needs a NOPASSWD sudoers rule for that one command). The health check passes when the command
    exits 0 within ``health_timeout_s`` (tried every ``health_interval_s``); the default asks the
    service's own health file (:mod:`ecgedge.firmware_host.health`), which passes only once the
    restarted process has loaded *this* version and its golden vectors passed, where
    ``systemctl is-active`` would pass as soon as any process of the unit runs.
    """

    unit: str = DEFAULT_UNIT
    restart: str = "sudo -n systemctl restart {unit}"
    health: str = "{python} -m ecgedge.firmware_host health --root {root} --version {version}"
    health_timeout_s: float = 30.0
    health_interval_s: float = 2.0

    def command(self, template: str, target: Target, version: str | None) -> str:
        q = shlex.quote
        values = {"unit": q(self.unit), "root": q(target.root), "version": q(version or ""), "python": " ".join(q(p) for p in target.python)}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)  # one pass: a value is never re-expanded


@dataclass
class DeployResult:
    target: str
    version: str
    previous: str | None
    reused: bool
    self_test: list[dict]
    seconds: dict[str, float] = field(default_factory=dict)


def restart_and_check(target: Target, service: Service, version: str | None) -> str | None:
    """Restart the service and wait for its health check; None when healthy, else why not."""
    res = target.shell(service.command(service.restart, target, version), timeout=120)
    if res.returncode != 0:
        return f"restart command failed (exit {res.returncode}): {last_line(res.stderr) or last_line(res.stdout)}"
    deadline = time.monotonic() + service.health_timeout_s
    while True:
        res = target.shell(service.command(service.health, target, version), timeout=60)
        if res.returncode == 0:
            return None
        if time.monotonic() >= deadline:
            return f"health check failed (exit {res.returncode}){': ' + last_line(res.stderr) if res.stderr.strip() else ''}"
        time.sleep(service.health_interval_s)


def _restore_args(root: str, current: str | None, previous: str | None, remove: str | None) -> list[str]:
    args = ["restore", "--root", root]
    for flag, value in (("--current", current), ("--previous", previous), ("--remove", remove)):
        if value:
            args += [flag, value]
    return args


def _undo(target: Target, service: Service, links: dict, remove: str | None, why: str, log: Callable[[str], None]) -> EcgEdgeError:
    """Restore ``links`` after a failed switch; the error to raise, saying what the gateway runs now."""
    old = links["current"]
    log(f"{why}; rolling back to {old or 'no model (there was none before)'}")
    target.gateway(*_restore_args(target.root, old, links["previous"], remove))
    if old is None:
        return EcgEdgeError(f"{target.describe()}: {why}; there was no previous version, so the gateway has no current model now.")
    again = restart_and_check(target, service, old)
    state = "its service is healthy again" if again is None else f"but the service is still unhealthy there ({again})"
    return EcgEdgeError(f"{target.describe()}: {why}; rolled back to {old}, {state}.")


def _recover(target: Target, service: Service, links: dict, why: str, log: Callable[[str], None]) -> EcgEdgeError:
    """After an install that gave no answer: put the links back if they moved (best effort)."""
    try:
        now = target.gateway("status", "--root", target.root)
    except EcgEdgeError as exc:
        return EcgEdgeError(f"{why}; the gateway could not be asked what it runs now ({exc}); check with `ecgedge deploy --status`.")
    if (now.get("current") or {}).get("version") == links["current"]:
        return EcgEdgeError(f"{why}; current is unchanged ({links['current'] or 'none'}).")
    return _undo(target, service, links, None, why, log)


def deploy_bundle(bundle: Path, target: Target, service: Service = Service(), log: Callable[[str], None] = lambda _m: None) -> DeployResult:
    """Steps 1-5 of the module docstring; EcgEdgeError (after any rollback) when the bundle does not go live."""
    bundle = Path(bundle).expanduser()
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    version = read_manifest(bundle)["version"]  # unverified: names the bundle; the gateway does the checking
    before = target.gateway("status", "--root", target.root)
    if not before["trusted_keys"]:  # also catches a mistyped DIR before the upload would create it
        raise EcgEdgeError(
            f"{target.describe()}: no trusted public keys in {target.path('trusted_keys')}/ (or no such directory); set the gateway up first "
            "(copy the signer's .pub there, see README 'Deploying to a gateway'); nothing was uploaded."
        )
    links = {"current": (before.get("current") or {}).get("version"), "previous": (before.get("previous") or {}).get("version")}
    seconds["status"] = time.perf_counter() - t

    t = time.perf_counter()
    digest = sha256_file(bundle)
    log(f"upload {bundle.name} ({bundle.stat().st_size / 1e6:.2f} MB) to {target.describe()}")
    remote = target.upload(bundle, f"{digest}.bundle")
    seconds["upload"] = time.perf_counter() - t

    t = time.perf_counter()
    log(f"verify and self-test {version} on the target")
    try:
        installed = target.gateway("install", "--root", target.root, "--sha256", digest, "--remove-bundle", remote)
    except GatewayRefused:
        raise  # refused before any switch: nothing the service reads has changed
    except EcgEdgeError as exc:  # no answer (link lost, crash): the switch may or may not have happened
        raise _recover(target, service, links, str(exc), log) from None
    seconds["install"] = time.perf_counter() - t
    result = DeployResult(target.describe(), installed["version"], installed["after"]["previous"], bool(installed["reused"]), installed["self_test"], seconds)
    if links["current"] == installed["version"]:
        log(f"{installed['version']} was already current; nothing switched")
        return result

    t = time.perf_counter()
    log(f"switched current to {installed['version']}; restarting {service.unit}")
    why = restart_and_check(target, service, installed["version"])
    seconds["restart_health"] = time.perf_counter() - t
    if why is not None:
        raise _undo(target, service, links, None if installed["reused"] else installed["version"], why, log)
    return result


def rollback(target: Target, service: Service = Service(), log: Callable[[str], None] = lambda _m: None) -> dict:
    """Make the previous version current, restart, health-check; undone again if the check fails."""
    switched = target.gateway("rollback", "--root", target.root)
    log(f"switched current from {switched['before']['current']} to {switched['after']['current']}; restarting {service.unit}")
    why = restart_and_check(target, service, switched["after"]["current"])
    if why is not None:
        raise _undo(target, service, switched["before"], None, f"{switched['after']['current']}: {why}", log)
    return switched


def status(target: Target) -> dict:
    return target.gateway("status", "--root", target.root)
