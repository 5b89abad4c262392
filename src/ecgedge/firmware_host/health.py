"""The gateway service's health file, and the check that ``ecgedge deploy`` runs against it.

The service (:mod:`.service`) writes ``ROOT/run/health.json`` atomically once its model is loaded
and has passed the golden vectors, then every few seconds while it runs, and marks it
``"status": "stopped"`` when it exits. :func:`check_health` passes only when that file says
*running*, its process is alive, it was updated within ``max_age_s`` and the version it runs is
the one ``ROOT/current`` points at (and the one the caller expects): so after a deploy's restart
it fails until the new process has loaded the new version, where ``systemctl is-active`` passes as
soon as any process runs.

Standard library only (``python -m ecgedge.firmware_host health`` starts in ~0.1 s).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ecgedge import jsonio
from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.install import CURRENT, linked_version

HEALTH_FILE = Path("run") / "health.json"
SCHEMA = "ecgedge.health/1"
#: the service rewrites the file this often; a check accepts files up to DEFAULT_MAX_AGE_S old
#: (six missed updates: a long inference batch on a Pi 3 blocks the writer for a moment)
INTERVAL_S = 5.0
DEFAULT_MAX_AGE_S = 30.0


def health_path(root: Path) -> Path:
    return Path(root) / HEALTH_FILE


def utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def write_health(root: Path, state: dict) -> None:
    """``state`` plus the schema and the time of writing, replacing the file in one rename."""
    now = time.time()
    path = health_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonio.write_json(path, {"schema": SCHEMA, **state, "updated_utc": utc(now), "updated_unix": round(now, 3)})


def read_health(root: Path) -> dict | None:
    try:
        return json.loads(health_path(root).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EcgEdgeError(f"{health_path(root)} is unreadable ({exc}); restart the gateway service.") from None


def mark_stopped(root: Path, pid: int, state: dict) -> None:
    """Say this process stopped, unless a newer process already owns the file (a restart)."""
    try:
        owner = (read_health(root) or {}).get("pid")
    except EcgEdgeError:
        owner = pid
    if owner in (None, pid):
        write_health(root, {**state, "status": "stopped", "stopped_utc": utc(time.time())})


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, run by another user (the service's own, when the deploy user asks)
        return True
    return True


def check_health(root: Path, version: str | None = None, max_age_s: float = DEFAULT_MAX_AGE_S) -> dict:
    """The health file with its age when the service is healthy; else EcgEdgeError saying why not."""
    root = Path(root)
    path = health_path(root)
    h = read_health(root)
    if h is None:
        raise EcgEdgeError(f"{path} does not exist: the gateway service has not started (or not yet loaded its model).")
    if h.get("schema") != SCHEMA:
        raise EcgEdgeError(f"{path} has schema {h.get('schema')!r}, expected {SCHEMA!r}; restart the gateway service.")
    if h.get("status") != "running":
        raise EcgEdgeError(f"the gateway service is {h.get('status')} (pid {h.get('pid')}, since {h.get('stopped_utc') or h.get('updated_utc')}).")
    if not pid_alive(h.get("pid")):
        raise EcgEdgeError(f"the gateway service (pid {h.get('pid')}) is not running, but {path} says it is: it was killed.")
    age = time.time() - float(h.get("updated_unix") or 0)
    if abs(age) > max_age_s:
        raise EcgEdgeError(f"{path} was last updated {age:.0f} s ago (more than {max_age_s:g} s): the service (pid {h['pid']}) is stuck.")
    current = linked_version(root, CURRENT)
    if h.get("version") != current:
        raise EcgEdgeError(f"the gateway service runs {h.get('version')}, but current is {current}: it has not been restarted since the switch.")
    if version is not None and h.get("version") != version:
        raise EcgEdgeError(f"the gateway service runs {h.get('version')}, not {version}.")
    return {**h, "age_s": round(age, 3)}
