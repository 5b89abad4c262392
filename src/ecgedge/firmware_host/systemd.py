"""The systemd unit that runs the gateway service: ``python -m ecgedge.firmware_host unit --root DIR``.

Choices, each for a reason:

* ``User=``: by default the owner of ROOT, the account ``ecgedge deploy`` logs in as (it owns the
  versions it installs), so the service can write ``ROOT/run`` and ``ROOT/events`` and nothing runs
  as root;
* ``Type=notify``: the service says ``READY=1`` once its model passed the golden vectors and it
  listens, so ``systemctl restart`` (what ``ecgedge deploy`` runs) waits for that and fails when
  the new version cannot start, and the deploy rolls back at once instead of after its health
  timeout; ``TimeoutStartSec=120`` leaves a Pi 3 time to load a ResNet-18 and run its golden beats;
* ``Restart=on-failure`` with ``RestartPreventExitStatus=2``: a crash is retried every 5 s, but a
  refusal (exit 2: no current version, a model file that fails its SHA-256 or golden vectors) is
  not; restarting cannot fix it, and the next deploy restarts the unit anyway;
* ``TimeoutStopSec=30``: SIGTERM classifies the pending beats before the process exits.
"""

from __future__ import annotations

import os
import pwd
import re
import sys
from pathlib import Path

from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.protocol import DEFAULT_LISTEN, parse_listen

UNIT_NAME = "ecgedge-gateway.service"
#: ExecStart= has its own quoting, % specifiers and $ expansion: accept only paths that need none
_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./\[\]-]+")

TEMPLATE = """\
# {unit_name}: the ecgedge gateway service (written by `python -m ecgedge.firmware_host unit`)
# Install: sudo cp THIS_FILE /etc/systemd/system/{unit_name} && sudo systemctl daemon-reload && sudo systemctl enable --now {unit_name}
[Unit]
Description=ecgedge gateway: classifies ECG beats with the model in {root}/current
After=network.target

[Service]
Type=notify
TimeoutStartSec=120
User={user}
WorkingDirectory={root}
ExecStart={python} -m ecgedge.firmware_host serve --root {root} --listen {listen}
Restart=on-failure
RestartSec=5
RestartPreventExitStatus=2
TimeoutStopSec=30
Environment=PYTHONUNBUFFERED=1

[Install]
WantedBy=multi-user.target
"""


def _plain(what: str, value: str) -> str:
    if not _PLAIN.fullmatch(value):
        raise EcgEdgeError(f"{what} {value!r} holds characters a systemd unit would need quoted (spaces, quotes, % or $); use a plain path.")
    return value


def render_unit(root: Path, python: str | None = None, user: str | None = None, listen: str | None = None) -> str:
    """The unit's text; ROOT must exist (its owner is the default user)."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise EcgEdgeError(f"{root} does not exist; create the gateway directory (with trusted_keys/) first.")
    python = python or sys.executable
    if not Path(python).is_absolute():
        raise EcgEdgeError(f"--python {python}: give the absolute path of the virtualenv's python (e.g. /opt/ecgedge/venv/bin/python).")
    listen = listen or DEFAULT_LISTEN
    parse_listen(listen)
    if user is None:
        try:
            user = pwd.getpwuid(os.stat(root).st_uid).pw_name
        except KeyError:
            raise EcgEdgeError(f"the owner of {root} has no user name; pass --user.") from None
    return TEMPLATE.format(
        unit_name=UNIT_NAME, root=_plain("--root", str(root)), python=_plain("--python", python), user=_plain("--user", user), listen=_plain("--listen", listen)
    )
