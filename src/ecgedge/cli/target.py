"""``ecgedge target build`` (the emulated Pi) and ``ecgedge validate MODEL --target ...``."""

from pathlib import Path

import typer

from ecgedge.cli.common import user_errors

target_app = typer.Typer(help="Emulated Raspberry-Pi-class targets (qemu-user, arm64 Debian bookworm; root).", no_args_is_help=True)


@target_app.command("build")
@user_errors
def build(
    cpu: str = typer.Option("cortex-a72", "--cpu", help="CPU for the build's smoke test: cortex-a53 (Pi 3 / Zero 2 W), cortex-a72 (Pi 4), cortex-a76 (Pi 5); every CPU runs on the same build."),
    force: bool = typer.Option(False, "--force", help="Rebuild the root file system even when one is cached."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Build (or refresh) the cached arm64 root file system with this checkout's ecgedge[gateway] (needs root, qemu-user-static, debootstrap)."""
    from ecgedge import jsonio
    from ecgedge.deploy.targets.qemu_rootfs import check_cpu, ensure_rootfs

    state = ensure_rootfs(check_cpu(cpu), force=force)
    if as_json:
        typer.echo(jsonio.dumps(state))
        return
    typer.echo(
        f"{state['root']}: Debian {state['suite']} {state['arch']}, Python {state['python']}, "
        f"{state['venv']} {state['venv_bytes'] / 1e6:.0f} MB ({len(state['packages'])} packages)"
        + (f"; debootstrap {state['debootstrap_s']:.0f} s" if state.get("rebuilt") else "")
    )


def validate(
    model: Path = typer.Argument(..., help="An exported .onnx or .tflite file (with its .sha256 sidecar)."),
    target: str = typer.Option("host", "--target", help="Comma-separated: host, qemu-aarch64:cortex-a53|cortex-a72|cortex-a76. The host always runs, as the reference."),
    set_name: str = typer.Option("DS2", "--set", help="Set of the model's split: DS2 | val | DS1 (inter-patient)."),
    subset: int = typer.Option(None, "--subset", help="Check N beats of the set, stratified by class (deterministic) instead of all."),
    profile: str = typer.Option(None, "--profile", help="Refuse the model when its measured peak memory exceeds this device's budget: pi-zero-2w, pi3, pi4, pi5."),
    data_dir: Path = typer.Option(None, "--data-dir", help="MIT-BIH directory (default: the one the model was trained on)."),
    output: Path = typer.Option(None, "-o", "--output", help="Directory for validation.json, predictions.npz and report.md."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """Run the gateway runtime on each target over the same preprocessed beats and compare with the host.

    Exit 0 when every target matches the host (and the model fits --profile), 1 when a check fails."""
    if not _validate(model, target, set_name, subset, profile, data_dir, output, as_json):
        raise typer.Exit(1)


@user_errors
def _validate(model, target, set_name, subset, profile, data_dir, output, as_json) -> bool:
    import sys

    from ecgedge import jsonio
    from ecgedge.deploy.targets.profiles import get_profile
    from ecgedge.deploy.targets.spec import parse_targets
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.model_files import verify_model_file
    from ecgedge.preflight import check_output_dir
    from ecgedge.validate.on_target import select_beats, tolerance, validate_on_targets
    from ecgedge.validate.target_report import write_validation

    targets = parse_targets(target)
    for t in targets:
        t.preflight()
    if profile:
        get_profile(profile)
    if subset is not None and subset < 1:
        from ecgedge.errors import EcgEdgeError

        raise EcgEdgeError(f"--subset is {subset}; it must be at least 1.")
    if output is not None:
        check_output_dir(output)
    verify_model_file(model)
    md = load_runtime(model).metadata
    tolerance(md.get("format", model.suffix.lstrip(".")), str(md.get("precision", "fp32")))
    beats = select_beats(model, md, set_name, subset, data_dir)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    result, runs = validate_on_targets(model, beats, targets, md, profile=profile, log=log)
    if output is not None:
        write_validation(output.expanduser(), result, runs, beats)
    if as_json:
        typer.echo(jsonio.dumps(result))
    else:
        from ecgedge.validate.target_report import markdown

        typer.echo(markdown(result), nl=False)
    for line in result["failures"]:
        print(f"failed: {line}", file=sys.stderr)
    return result["passed"]
