"""``ecgedge export``: a trained run -> ONNX / TFLite files (fp32, and int8 with --int8)."""

from pathlib import Path

import typer

from ecgedge.cli.common import user_errors


def export(
    run_dir: Path = typer.Argument(..., help="A run directory made by `ecgedge train` (uses checkpoints/best.pt)."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for the exported files (created)."),
    formats: str = typer.Option("onnx,tflite", "--format", help="Comma-separated: onnx, tflite."),
    int8: bool = typer.Option(False, "--int8", help="Also write int8 variants (post-training, calibrated on DS1 training beats; QAT runs: learned scales)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="MIT-BIH directory (default: the one the run was trained on)."),
    calibration_beats: int = typer.Option(256, "--calibration-beats", help="DS1 training beats used for int8 calibration."),
    onnx_ptq: str = typer.Option("nncf", "--onnx-ptq", help="Post-training int8 route for ONNX: nncf | onnxruntime."),
) -> None:
    """Export a run to ONNX / TFLite with embedded metadata; each file is checked against torch.

    int8 of a run made by `ecgedge compress --qat` keeps its learned scales (no calibration)."""
    _export(run_dir, output, formats, int8, data_dir, calibration_beats, onnx_ptq)


@user_errors
def _export(run_dir, output, formats, int8, data_dir, calibration_beats, onnx_ptq):
    from ecgedge.export import export_model
    from ecgedge.firmware_host.runtime import load_runtime
    from ecgedge.preflight import check_output_dir

    check_output_dir(output)
    results = export_model(
        run_dir, output.expanduser(), formats=formats, int8=int8, data_dir=data_dir, calibration_beats=calibration_beats, onnx_ptq=onnx_ptq,
        load_runtime=load_runtime,
    )
    width = max(len(str(r.path)) for r in results)
    # "vs": what the self-check compared with (float model, or a QAT run's own int8 simulation)
    typer.echo(f"{'file':<{width}} {'int8':>5} {'MB':>8} {'s':>7} {'max|dlogit|':>12} {'top-1 agree':>12}  vs")
    for r in results:
        c = r.check
        typer.echo(
            f"{str(r.path):<{width}} {r.quantization or '-':>5} {r.size_bytes / 1e6:8.2f} {r.seconds:7.1f} "
            f"{c['max_abs_logit_diff']:12.2e} {c['top1_agreement']:12.2%}  {'QAT simulation' if r.quantization == 'qat' else 'float'}"
        )
