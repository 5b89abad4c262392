"""``ecgedge keys generate`` and ``ecgedge bundle``: wiring only (see ecgedge.deploy)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ecgedge import jsonio
from ecgedge.cli.common import user_errors

keys_app = typer.Typer(help="Ed25519 keys that sign model bundles.", no_args_is_help=True)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@keys_app.command()
@user_errors
def generate(
    output: Path = typer.Option(..., "-o", "--output", help="Directory for NAME.key (private, mode 0600) and NAME.pub."),
    name: str = typer.Option("ecgedge", "--name", help="File name stem of the pair."),
) -> None:
    """Make a signing key pair; copy NAME.pub into each gateway's trusted_keys/ directory."""
    from ecgedge.deploy.keys import generate_keys
    from ecgedge.preflight import check_output_dir

    check_output_dir(output)
    pair = generate_keys(output, name)
    typer.echo(f"key {pair.key_id}: private {pair.private} (keep it secret), public {pair.public} (copy to GATEWAY_DIR/trusted_keys/)")


@user_errors
def bundle(
    export_dir: Path = typer.Argument(..., help="A directory written by `ecgedge export` (export.json + model files)."),
    output: Path = typer.Option(..., "-o", "--output", help="The bundle file to write (e.g. model.bundle)."),
    key: Path = typer.Option(..., "--key", help="Private signing key (from `ecgedge keys generate`)."),
    models: list[str] = typer.Option(None, "--model", help="Model file of the export to include (repeatable; default: all)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="MIT-BIH directory for the golden beats (default: the one the model was trained on)."),
    golden: int = typer.Option(300, "--golden", help="Golden beats (DS2, class-stratified) whose host outputs the gateway must reproduce."),
) -> None:
    """Pack exported model files, a signed manifest and golden vectors into one file for `ecgedge deploy`."""
    from ecgedge.deploy.bundle import build_bundle
    from ecgedge.errors import EcgEdgeError

    if output.expanduser().is_dir():
        raise EcgEdgeError(f"-o {output} is a directory; give a file name such as {output / 'model.bundle'}.")
    r = build_bundle(export_dir, output, key, models=models or None, data_dir=data_dir, n_golden=golden, warn=_stderr)
    g = r.manifest["golden"]
    typer.echo(f"{r.path}: bundle {r.version}, {r.size_bytes / 1e6:.2f} MB, signed by key {r.key_id}, {r.seconds:.1f} s")
    typer.echo(f"  golden vectors: {g['n']} {g['source']} beats ({g['near_ties_left_out']} near ties left out)")
    for m in r.manifest["models"]:
        tol = m["golden_tolerance"]["max_abs_logit_diff"]
        typer.echo(f"  {m['file']}: {m['format']} {m['precision']}, runtime {m['runtime']}, self-test tolerance {tol:g}")
