"""``ecgedge keys generate``, ``ecgedge bundle`` and ``ecgedge deploy``: wiring only (see ecgedge.deploy)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ecgedge import jsonio
from ecgedge.cli.common import IdentityOption, KnownHostsOption, RemotePythonOption, SshOptionsOption, user_errors

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
    profile: str = typer.Option(None, "--profile", help="Declare the smallest board the bundle is for (pi-zero-2w, pi3, pi4, pi5); refused when the host's measured peak memory already exceeds its budget."),
) -> None:
    """Pack exported model files, a signed manifest and golden vectors into one file for `ecgedge deploy`."""
    from ecgedge.deploy.bundle import build_bundle
    from ecgedge.errors import EcgEdgeError

    if output.expanduser().is_dir():
        raise EcgEdgeError(f"-o {output} is a directory; give a file name such as {output / 'model.bundle'}.")
    r = build_bundle(export_dir, output, key, models=models or None, data_dir=data_dir, n_golden=golden, profile=profile, warn=_stderr)
    g = r.manifest["golden"]
    typer.echo(f"{r.path}: bundle {r.version}, {r.size_bytes / 1e6:.2f} MB, signed by key {r.key_id}, {r.seconds:.1f} s")
    typer.echo(f"  golden vectors: {g['n']} {g['source']} beats ({g['near_ties_left_out']} near ties left out)")
    for m in r.manifest["models"]:
        tol = m["golden_tolerance"]["max_abs_logit_diff"]
        need = m["needs"]
        typer.echo(
            f"  {m['file']}: {m['format']} {m['precision']}, runtime {m['runtime']}, self-test tolerance {tol:g}; "
            f"peak {need['peak_rss_mb']:.0f} MB on the host, {(need['macs_per_beat'] or 0) / 1e6:.1f} M MACs per beat"
        )
    if r.manifest["requires"]["profile"]:
        p = r.manifest["requires"]["profile"]
        typer.echo(f"  meant for {p['board']} ({p['ram_mb']} MB, {p['budget_mb']} MB for the gateway)")


@user_errors
def deploy(
    bundle_file: Path = typer.Argument(None, metavar="[BUNDLE]", help="The bundle to deploy (not with --rollback / --status)."),
    target: str = typer.Option(..., "--target", help="ssh://[USER@]HOST[:PORT]/DIR (a gateway) or local:DIR (a gateway directory here)."),
    rollback: bool = typer.Option(False, "--rollback", help="Make the previous version current again."),
    status: bool = typer.Option(False, "--status", help="Show what is installed and current."),
    identity: Path = IdentityOption,
    known_hosts: Path = KnownHostsOption,
    ssh_options: list[str] = SshOptionsOption,
    remote_python: str = RemotePythonOption,
    unit: str = typer.Option("ecgedge-gateway.service", "--unit", help="systemd unit of the gateway service (`python -m ecgedge.firmware_host unit` writes it)."),
    restart_cmd: str = typer.Option(
        None, "--restart-cmd", help="Shell command on the target that restarts the service ({unit}, {root}, {version}, {python} filled in; default: sudo -n systemctl restart {unit})."
    ),
    health_cmd: str = typer.Option(
        None,
        "--health-cmd",
        help="Shell command on the target that exits 0 when the service is healthy (default: {python} -m ecgedge.firmware_host health --root {root} --version {version}: "
        "passes once the restarted service runs the new version).",
    ),
    health_timeout: float = typer.Option(30.0, "--health-timeout", help="Seconds the health check may take to pass before the deploy is rolled back."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Deploy a signed bundle to a gateway: upload, verify and self-test there, switch atomically, restart, roll back on failure."""
    from ecgedge.deploy import rollout
    from ecgedge.deploy.targets import parse_target
    from ecgedge.errors import EcgEdgeError

    if sum([bundle_file is not None, rollback, status]) != 1:
        raise EcgEdgeError("give exactly one of BUNDLE, --rollback or --status.")
    tgt = parse_target(target, gateway=True, identity=identity, known_hosts=known_hosts, ssh_options=ssh_options, remote_python=remote_python)
    commands = {k: v for k, v in (("restart", restart_cmd), ("health", health_cmd)) if v is not None}
    service = rollout.Service(unit=unit, health_timeout_s=health_timeout, **commands)
    log = None if as_json else _stderr
    if status:
        result = rollout.status(tgt)
        if as_json:
            typer.echo(jsonio.dumps(result))
            return
        for which in ("current", "previous"):
            v = result[which]
            models = ", ".join(f"{m['file']} ({m['format']} {m['precision']})" for m in v["models"]) if v and "models" in v else ""
            typer.echo(f"{which + ':':<10}{v['version'] + '  ' + models if v else '-'}")
        typer.echo(f"installed: {', '.join(result['versions']) or '-'}")
        if result["partial"]:
            typer.echo(f"left over: {', '.join(result['partial'])} (interrupted uploads/installs; removed by the next deploy)")
        return
    if rollback:
        result = rollout.rollback(tgt, service, log or (lambda _m: None))
        typer.echo(jsonio.dumps(result) if as_json else f"{tgt.describe()}: current is {result['after']['current']} (was {result['before']['current']})")
        return
    r = rollout.deploy_bundle(bundle_file, tgt, service, log or (lambda _m: None))
    if as_json:
        typer.echo(jsonio.dumps(r.__dict__))
        return
    checks = "; ".join(f"{c['file']}: max|dlogit| {c['max_abs_logit_diff']:.2g} <= {c['tolerance']:g}, classes equal on {c['n']}" for c in r.self_test)
    typer.echo(f"{r.target}: current is {r.version} (previous {r.previous or '-'}); self-test: {checks}")
