"""``ecgedge target build`` (the emulated Pi) and ``ecgedge validate MODEL --target ...``."""

from pathlib import Path

import typer

from ecgedge.cli.common import IdentityOption, KnownHostsOption, RemotePythonOption, SshOptionsOption, user_errors

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
    model: Path = typer.Argument(..., help="An exported .onnx or .tflite file (with its .sha256 sidecar), or a bundle from `ecgedge bundle`."),
    target: str = typer.Option("host", "--target", help="Comma-separated: host, qemu-aarch64:cortex-a53|cortex-a72|cortex-a76, ssh://[USER@]HOST[:PORT] (a Pi over SSH), local:DIR. The host always runs, as the reference."),
    set_name: str = typer.Option("DS2", "--set", help="Set of the model's split: DS2 | val | DS1 (inter-patient)."),
    subset: int = typer.Option(None, "--subset", help="Check N beats of the set, stratified by class (deterministic) instead of all."),
    profile: str = typer.Option(None, "--profile", help="Refuse the model when its measured peak memory exceeds this device's budget: pi-zero-2w, pi3, pi4, pi5 (default for a bundle: the profile it declares)."),
    public_key: Path = typer.Option(None, "--public-key", help="A bundle's signer: its .pub file or a directory of trusted .pub keys (required for bundles)."),
    bundle_models: list[str] = typer.Option(None, "--model", help="Model file of the bundle to validate (repeatable; default: all)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="MIT-BIH directory (default: the one the model was trained on)."),
    output: Path = typer.Option(None, "-o", "--output", help="Directory for validation.json, report.md and the per-beat logits (.npz)."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
    identity: Path = IdentityOption,
    known_hosts: Path = KnownHostsOption,
    ssh_options: list[str] = SshOptionsOption,
    remote_python: str = RemotePythonOption,
) -> None:
    """Run the gateway runtime on each target over the same preprocessed beats and compare with the host.

    A bundle is first verified as a gateway verifies it (signature, checksums), then each of its
    models is validated. Exit 0 when every target matches the host (and the model fits the
    profile), 1 when a check fails."""
    access = dict(identity=identity, known_hosts=known_hosts, ssh_options=ssh_options, remote_python=remote_python)
    if not _validate(model, target, set_name, subset, profile, public_key, bundle_models, data_dir, output, as_json, access):
        raise typer.Exit(1)


@user_errors
def _validate(model, target, set_name, subset, profile, public_key, bundle_models, data_dir, output, as_json, access) -> bool:
    import sys

    from ecgedge import jsonio
    from ecgedge.deploy.targets.profiles import get_profile
    from ecgedge.deploy.targets.spec import parse_targets
    from ecgedge.errors import EcgEdgeError
    from ecgedge.preflight import check_output_dir
    from ecgedge.validate.bundle_models import is_bundle

    targets = parse_targets(target, **access)
    for t in targets:
        t.preflight()
    if profile:
        get_profile(profile)
    if subset is not None and subset < 1:
        raise EcgEdgeError(f"--subset is {subset}; it must be at least 1.")
    if output is not None:
        check_output_dir(output)
    if not model.expanduser().is_file():
        raise EcgEdgeError(f"{model}: no such file; give an exported .onnx / .tflite file or a bundle.")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if is_bundle(model):
        result = _validate_bundle(model.expanduser(), targets, set_name, subset, profile, public_key, bundle_models, data_dir, output, log)
    else:
        if public_key or bundle_models:
            raise EcgEdgeError("--public-key and --model apply to bundles only; this is a model file.")
        result = _validate_model(model, targets, set_name, subset, profile, data_dir, output, log)
    if as_json:
        typer.echo(jsonio.dumps(result))
    else:
        from ecgedge.validate.target_report import bundle_markdown, markdown

        typer.echo(bundle_markdown(result) if "bundle" in result else markdown(result), nl=False)
    for line in result["failures"]:
        print(f"failed: {line}", file=sys.stderr)
    return result["passed"]


def _validate_model(model, targets, set_name, subset, profile, data_dir, output, log) -> dict:
    from ecgedge.errors import EcgEdgeError
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.model_files import verify_model_file
    from ecgedge.validate.on_target import select_beats, tolerance, validate_on_targets
    from ecgedge.validate.target_report import write_validation

    if model.suffix not in (".onnx", ".tflite"):
        raise EcgEdgeError(f"{model} is neither an exported model (.onnx, .tflite) nor a bundle (`ecgedge bundle`).")
    verify_model_file(model)
    md = load_runtime(model).metadata
    tolerance(md.get("format", model.suffix.lstrip(".")), str(md.get("precision", "fp32")))
    beats = select_beats(model, md, set_name, subset, data_dir)
    result, runs = validate_on_targets(model, beats, targets, md, profile=profile, log=log)
    if output is not None:
        write_validation(output.expanduser(), result, runs, beats)
    return result


def _validate_bundle(bundle, targets, set_name, subset, profile, public_key, names, data_dir, output, log) -> dict:
    from ecgedge.validate.bundle_models import validate_bundle
    from ecgedge.validate.target_report import write_bundle_validation

    result, runs, beats = validate_bundle(bundle, targets, public_key=public_key, names=names, set_name=set_name, subset=subset, data_dir=data_dir, profile=profile, log=log)
    if output is not None:
        write_bundle_validation(output.expanduser(), result, runs, beats)
    return result
