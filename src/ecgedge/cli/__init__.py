"""The ``ecgedge`` command: a thin layer that wires the stage functions together."""

import typer

from ecgedge import __version__
from ecgedge.cli import compress as compress_cmds
from ecgedge.cli import deploy as deploy_cmds
from ecgedge.cli import ec57 as ec57_cmds
from ecgedge.cli import export as export_cmds
from ecgedge.cli import target as target_cmds
from ecgedge.cli import train as train_cmds
from ecgedge.cli.data import data_app

app = typer.Typer(
    name="ecgedge",
    help="ECG heartbeat classification from MIT-BIH to a Pi-class gateway (AAMI EC57, inter-patient).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
app.add_typer(target_cmds.target_app, name="target")
app.command()(train_cmds.train)
app.command()(train_cmds.evaluate)
app.command()(train_cmds.report)
app.command()(train_cmds.pipeline)
app.command()(export_cmds.export)
app.command()(compress_cmds.compress)
app.command()(ec57_cmds.ec57)
app.add_typer(deploy_cmds.keys_app, name="keys")
app.command()(deploy_cmds.bundle)
app.command()(deploy_cmds.deploy)
app.command()(target_cmds.validate)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ecgedge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """ECG heartbeat classification from MIT-BIH to a Pi-class gateway."""


def main() -> None:
    app()
