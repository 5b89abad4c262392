"""``ecgedge data``: download, verify, summarise, prepare and look at MIT-BIH."""

from pathlib import Path

import typer

from ecgedge import jsonio
from ecgedge.cli.common import DataDirOption, parse_records, progress_bar, user_errors
from ecgedge.data.location import resolve_data_dir
from ecgedge.data.splits import SPLITS, check_split_name
from ecgedge.preflight import check_seed

data_app = typer.Typer(help="Get MIT-BIH, check it, count its beats and build spectrogram datasets.", no_args_is_help=True)

SplitOption = typer.Option("inter-patient", "--split", help=f"Evaluation protocol: {' | '.join(SPLITS)}.")
PresetOption = typer.Option("edge", "--preset", help="Preprocessing preset: paper | edge.")
RecordsOption = typer.Option(None, "--records", help="Comma-separated records (default: the 44 non-paced DS1+DS2 records).")


@data_app.command()
@user_errors
def download(data_dir: Path = DataDirOption) -> None:
    """Fetch MIT-BIH from PhysioNet (wfdb) and check every file's SHA-256."""
    from ecgedge.data.download import download as run_download

    target = resolve_data_dir(data_dir)
    n = run_download(target)
    typer.echo(f"MIT-BIH in {target}: {n} files match PhysioNet's SHA256SUMS.")


@data_app.command()
@user_errors
def verify(data_dir: Path = DataDirOption) -> None:
    """Check every file of a MIT-BIH directory against its SHA256SUMS.txt; name each bad file."""
    from ecgedge.data.download import verify as run_verify

    target = resolve_data_dir(data_dir)
    n, problems = run_verify(target)
    for p in problems:
        typer.echo(f"BAD {target / p.name}: {p.problem}", err=True)
    if problems:
        typer.echo(
            f"error: {len(problems)} of {n} files failed; run `ecgedge data download --data-dir {target}` to restore them.",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"OK: {n} files in {target} match SHA256SUMS.txt.")


@data_app.command()
@user_errors
def summary(
    data_dir: Path = DataDirOption,
    split: str = SplitOption,
    preset: str = PresetOption,
    records: str = RecordsOption,
    seed: int = typer.Option(0, help="Seed of the intra-patient random split."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
) -> None:
    """AAMI beat counts per set of a split, and the beats dropped at record ends."""
    from ecgedge.data.summary import index_beats, summarize
    from ecgedge.preprocess import get_preset

    check_split_name(split)
    check_seed(seed)
    index = index_beats(resolve_data_dir(data_dir), get_preset(preset), parse_records(records))
    result = summarize(index, split, seed)
    if as_json:
        typer.echo(jsonio.dumps({k: result[k] for k in ("split", "sets", "dropped")}))
        return
    _print_summary(result)


def _print_summary(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from ecgedge.data.aami import AAMI_CLASSES

    table = Table(title=f"AAMI beats, {result['split']} split")
    table.add_column("set")
    for cls in AAMI_CLASSES:
        table.add_column(cls, justify="right")
    for name, counts in result["sets"].items():
        table.add_row(name, *(f"{counts[c]:,}" for c in AAMI_CLASSES))
    for name, counts in result["dropped"].items():
        table.add_row(f"dropped ({name})", *(str(counts[c]) for c in AAMI_CLASSES))
    console = Console()
    console.print(table)
    if result["validation_records"]:
        console.print(f"patient-wise validation records (from DS1): {', '.join(result['validation_records'])}")


@data_app.command()
@user_errors
def prepare(
    data_dir: Path = DataDirOption,
    preset: str = PresetOption,
    split: str = SplitOption,
    records: str = RecordsOption,
    workers: int = typer.Option(0, help="Worker processes (0: one per CPU core)."),
    rebuild: bool = typer.Option(False, help="Rebuild even if the cache holds this dataset."),
) -> None:
    """Build the spectrogram dataset once into the on-disk cache (keyed by parameters and checksums)."""
    from ecgedge.data.dataset import prepare_dataset
    from ecgedge.data.summary import summarize
    from ecgedge.preprocess import get_preset

    check_split_name(split)
    config = get_preset(preset)
    with progress_bar() as progress:
        ds = prepare_dataset(
            resolve_data_dir(data_dir), config, parse_records(records), workers=workers or None, progress=progress, rebuild=rebuild
        )
    typer.echo(f"{len(ds):,} beats, images {ds.images.shape[1]}x{ds.images.shape[2]} uint8, in {ds.path}")
    _print_summary(summarize(ds.index(), split))


@data_app.command()
@user_errors
def look(
    data_dir: Path = DataDirOption,
    preset: str = PresetOption,
    records: str = RecordsOption,
    output: Path = typer.Option(Path("look.png"), "-o", "--output", help="PNG file to write."),
) -> None:
    """Save a PNG of one beat of each AAMI class next to its spectrogram image."""
    from ecgedge.data.look import save_look
    from ecgedge.data.summary import index_beats
    from ecgedge.preprocess import get_preset

    config = get_preset(preset)
    target = resolve_data_dir(data_dir)
    path = save_look(target, index_beats(target, config, parse_records(records)), config, output)
    typer.echo(f"wrote {path}")
