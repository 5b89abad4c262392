"""``python -m ecgedge.firmware_host``: the gateway's side of a deploy, with argparse only.

A gateway has no typer or rich (and no torch): ``ecgedge deploy`` runs these commands on the
target over SSH. Each prints one JSON object on stdout (``serve`` prints events or nothing,
``unit`` the unit file); a refusal prints ``error: ...`` (one line) on stderr and exits 2, like
the ``ecgedge`` command.

    python -m ecgedge.firmware_host install  --root DIR BUNDLE [--sha256 HEX] [--no-activate] [--remove-bundle]
    python -m ecgedge.firmware_host verify   --trusted-keys DIR BUNDLE
    python -m ecgedge.firmware_host rollback --root DIR
    python -m ecgedge.firmware_host restore  --root DIR [--current V] [--previous V] [--remove V]
    python -m ecgedge.firmware_host status   --root DIR
    python -m ecgedge.firmware_host serve    --root DIR [--listen HOST:PORT] [--stdin] [--events FILE|-] [--model NAME]
    python -m ecgedge.firmware_host health   --root DIR [--version V] [--max-age S]
    python -m ecgedge.firmware_host unit     --root DIR [--python PY] [--user U] [--listen HOST:PORT]

``serve`` is the long-running service (:mod:`.service`, its input :mod:`.protocol`), ``health``
checks it (:mod:`.health`; ``ecgedge deploy``'s default health check), ``unit`` prints the
systemd unit that runs it (:mod:`.systemd`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecgedge import jsonio
from ecgedge.disk_errors import describe, is_user_fixable
from ecgedge.errors import EcgEdgeError
from ecgedge.firmware_host.health import DEFAULT_MAX_AGE_S, INTERVAL_S, check_health


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ecgedge.firmware_host", description="Gateway side of `ecgedge deploy`.")
    sub = p.add_subparsers(dest="command", required=True)
    keys_help = "directory of trusted *.pub keys (default: ROOT/trusted_keys)"

    s = sub.add_parser("install", help="verify, extract, self-test and switch `current` to a bundle")
    s.add_argument("bundle", type=Path)
    s.add_argument("--root", type=Path, required=True)
    s.add_argument("--sha256", help="expected SHA-256 of the uploaded file (refuses an incomplete upload)")
    s.add_argument("--trusted-keys", type=Path, help=keys_help)
    s.add_argument("--no-activate", action="store_true", help="install and self-test only; leave `current` as it is")
    s.add_argument("--remove-bundle", action="store_true", help="delete the uploaded bundle file afterwards")

    s = sub.add_parser("verify", help="check a bundle's signature and checksums, writing nothing")
    s.add_argument("bundle", type=Path)
    s.add_argument("--trusted-keys", type=Path, required=True)

    for name, text in (("rollback", "make the previous version current"), ("status", "what is installed and current")):
        sub.add_parser(name, help=text).add_argument("--root", type=Path, required=True)

    s = sub.add_parser("restore", help="set `current` and `previous` exactly (undo of a failed deploy)")
    s.add_argument("--root", type=Path, required=True)
    s.add_argument("--current")
    s.add_argument("--previous")
    s.add_argument("--remove", help="a version directory to delete (a deploy that failed its health check)")

    s = sub.add_parser("serve", help="the gateway service: classify beats of ECG streams with ROOT/current's model")
    s.add_argument("--root", type=Path, required=True)
    s.add_argument("--listen", help="HOST:PORT to accept TCP senders on (default 127.0.0.1:9360 unless --stdin alone)")
    s.add_argument("--stdin", action="store_true", help="also read messages from stdin (alone: exit at its end)")
    s.add_argument("--events", help="JSON-lines file to append events to, '-' for stdout (default: a new ROOT/events/<start>-<version>.jsonl)")
    s.add_argument("--model", help="model file of the bundle to serve (default: the first the manifest lists)")
    s.add_argument("--threads", type=int, help="inference threads (default: the runtime's, all cores)")
    s.add_argument("--health-interval", type=float, default=INTERVAL_S, help="seconds between health file updates")

    s = sub.add_parser("health", help="exit 0 when the service runs ROOT/current's version (and --version), else say why")
    s.add_argument("--root", type=Path, required=True)
    s.add_argument("--version", help="the version it must run (ecgedge deploy passes the one it installed)")
    s.add_argument("--max-age", type=float, default=DEFAULT_MAX_AGE_S, help="seconds since the service's last update that still count as alive")

    s = sub.add_parser("unit", help="print the systemd unit that runs `serve` for ROOT")
    s.add_argument("--root", type=Path, required=True)
    s.add_argument("--python", help="the virtualenv's python (default: this one)")
    s.add_argument("--user", help="user the service runs as (default: the owner of ROOT)")
    s.add_argument("--listen", help="HOST:PORT for serve (default 127.0.0.1:9360)")
    return p


def run(argv: list[str]) -> dict | None:
    """The command's JSON answer (None: it wrote its own output)."""
    from ecgedge.firmware_host import install as gw

    a = _parser().parse_args(argv)
    if a.command == "serve":
        from ecgedge.firmware_host.service import serve  # numpy, scipy and the runtime: only here

        serve(a.root, listen=a.listen, use_stdin=a.stdin, events=a.events, model=a.model, threads=a.threads, health_interval_s=a.health_interval)
        return None
    if a.command == "health":
        return check_health(a.root, a.version, a.max_age)
    if a.command == "unit":
        from ecgedge.firmware_host.systemd import render_unit

        print(render_unit(a.root, a.python, a.user, a.listen), end="")
        return None
    if a.command == "install":
        return gw.install(a.root, a.bundle, sha256=a.sha256, activate=not a.no_activate, keys_dir=a.trusted_keys, remove_bundle=a.remove_bundle)
    if a.command == "verify":
        return gw.verify_only(a.bundle, a.trusted_keys)
    if a.command == "rollback":
        return gw.rollback(a.root)
    if a.command == "restore":
        return gw.restore(a.root, a.current, a.previous, a.remove)
    return gw.status(a.root)


def main(argv: list[str] | None = None) -> int:
    try:
        result = run(sys.argv[1:] if argv is None else argv)
    except EcgEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if not is_user_fixable(exc):
            raise
        print(f"error: {describe(exc, 'the gateway directory', 'choose another --root')}", file=sys.stderr)
        return 2
    if result is not None:
        print(jsonio.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
