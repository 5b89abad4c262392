"""``ecgedge ec57``: replay records through the gateway and score it beat by beat (ANSI/AAMI EC57)."""

import json
from pathlib import Path

import typer

from ecgedge.cli.common import DataDirOption, progress_bar, user_errors


def ec57(
    model: Path = typer.Argument(..., help="An exported model (.onnx / .tflite) or a run directory."),
    records: str = typer.Option("DS2", "--records", help="DS2 | DS1 | all (44 non-paced) | comma list, e.g. 100,105."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for <record>.ecg annotation files, ec57.json and report.md."),
    data_dir: Path = DataDirOption,
    chunk_s: float = typer.Option(1.0, "--chunk-s", help="Seconds of signal per chunk fed to the gateway."),
    batch_size: int = typer.Option(64, "--batch-size", help="Beats per model call (micro-batch)."),
    max_wait_s: float = typer.Option(0.5, "--max-wait-s", help="A queued beat waits at most this much stream time."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object on stdout."),
) -> None:
    """Stream each record from its first sample through the gateway (causal filter, QRS detection,
    int8 model), write its beats as WFDB annotations, and compute EC57 QRS / VEB / SVEB statistics."""
    _ec57(model, records, output, data_dir, chunk_s, batch_size, max_wait_s, as_json)


@user_errors
def _ec57(model, records, output, data_dir, chunk_s, batch_size, max_wait_s, as_json):
    from ecgedge.data.location import resolve_data_dir
    from ecgedge.errors import EcgEdgeError
    from ecgedge.evaluate.stream_ec57 import parse_record_set, run_ec57

    names = parse_record_set(records)
    if not Path(model).exists():
        raise EcgEdgeError(f"{model} not found; pass an exported .onnx / .tflite file or a run directory.")
    if chunk_s <= 0 or batch_size < 1 or max_wait_s < 0:
        raise EcgEdgeError("--chunk-s must be > 0, --batch-size >= 1 and --max-wait-s >= 0.")
    with progress_bar() as progress:
        result = run_ec57(model, names, resolve_data_dir(data_dir), output.expanduser(), chunk_s, batch_size, max_wait_s, progress=progress)
    summary = {k: result[k] for k in ("model", "records", "qrs", "veb", "sveb", "latency_s", "throughput")}
    four = (result.get("classes") or {}).get("four_class") or {}
    summary["macro_f1_4"] = four.get("macro_f1")
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        q, v, s = result["qrs"]["gross"], result["veb"]["gross"], result["sveb"]["gross"]
        pct = lambda x: "n/a" if x is None else f"{100 * x:.2f}%"  # noqa: E731
        typer.echo(
            f"QRS Se {pct(q['se'])} +P {pct(q['ppv'])}; VEB Se {pct(v['se'])} +P {pct(v['ppv'])}; "
            f"SVEB Se {pct(s['se'])} +P {pct(s['ppv'])}; 4-class macro-F1 {summary['macro_f1_4'] or float('nan'):.4f}"
        )
        typer.echo(f"wrote {output / 'ec57.json'} and {output / 'report.md'}")
