"""Options and error handling shared by the command groups."""

import contextlib
import functools
import sys

import typer

from ecgedge.disk_errors import describe, is_user_fixable
from ecgedge.errors import EcgEdgeError

DataDirOption = typer.Option(
    None,
    "--data-dir",
    help="MIT-BIH directory (default: $ECGEDGE_DATA_DIR, else the user cache directory).",
    show_default=False,
)

# how to reach a target (ecgedge deploy and ecgedge validate): ecgedge.deploy.targets.spec.Access
IdentityOption = typer.Option(None, "--identity", help="SSH private key for the login to ssh:// targets (default: ssh's own choice).")
KnownHostsOption = typer.Option(None, "--known-hosts", help="known_hosts file holding the ssh:// target's host key (default: ssh's).")
SshOptionsOption = typer.Option(None, "--ssh-option", help="Extra `ssh -o KEY=VALUE` for ssh:// targets (repeatable).")
RemotePythonOption = typer.Option(None, "--remote-python", help="Python on ssh:// and local: targets that has ecgedge\\[gateway] (default: python3; local: this one).")


def user_errors(func):
    """Print an EcgEdgeError, or a full disk / read-only folder, as one line on stderr and exit 2, with no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except EcgEdgeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        except OSError as exc:
            if not is_user_fixable(exc):
                raise
            print(f"error: {describe(exc, 'a file', 'choose another location')}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper


def parse_records(records: str | None) -> tuple[str, ...] | None:
    from ecgedge.data.record_list import parse_record_list

    return parse_record_list(records)


@contextlib.contextmanager
def progress_bar():
    """A rich progress bar on stderr, so stdout stays machine-readable.

    When the block fails, the bars are dropped instead of drawn a last time: the error is then
    the one line the user sees.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    with progress:
        try:
            yield progress
        except BaseException:
            progress.console.quiet = True  # no last redraw (nor its blank line) before the error
            raise
