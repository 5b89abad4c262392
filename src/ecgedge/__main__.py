"""``ecgedge`` / ``python -m ecgedge``: the command line, which needs the host tools (``ecgedge[cli]``).

A gateway install (``ecgedge[gateway]``) has no typer: it gets one line saying what to install,
instead of an ImportError traceback.
"""

import sys


def main() -> None:
    try:
        from ecgedge.cli import main as cli_main
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("typer", "rich", "click"):
            raise
        print(
            f"error: the ecgedge command needs the host tools ({exc.name} is missing): pip install 'ecgedge[cli]'. "
            "A gateway install runs python -m ecgedge.firmware_host.check.",
            file=sys.stderr,
        )
        sys.exit(2)
    cli_main()


if __name__ == "__main__":
    main()
