"""Reports of one run, or of several models compared against the first: Markdown with PNGs.

An entry is a run directory (``metrics.json``) or an exported ``.onnx`` / ``.tflite`` file scored
by ``ecgedge evaluate FILE`` (its ``FILE.metrics.json``). With several entries the report compares
accuracy and, per model, what it costs on a gateway (size, parameters, MACs, optional latency;
:mod:`ecgedge.report.efficiency`), with a plot, and writes the comparison as ``report.json`` too.
Models are named by what they are (:mod:`ecgedge.report.labels`), not by their file names.

``report.md`` and its PNGs are what a repository keeps (reviewable in git, rendered by its web
view); ``html=True`` also writes ``report.html``, one self-contained page with the images inlined,
for a browser. Both are rendered from the same list of blocks, so they cannot drift apart.
"""

import base64
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ecgedge import jsonio, run_dirs
from ecgedge.atomic import atomic_path
from ecgedge.errors import EcgEdgeError
from ecgedge.machine import machine_info
from ecgedge.report.efficiency import agreement_with_first, comparison_rows, headline, measure, model_facts
from ecgedge.report.labels import entry_name, report_labels
from ecgedge.report.plots import confusion_png, curves_png, tradeoff_png

#: Top-level keys of an ``aami_metrics`` dict; anything else in metrics.json is an extra.
METRIC_KEYS = ("classes", "n", "accuracy", "macro_f1", "j_index", "kappa", "jk", "per_class", "confusion")
#: (label, key of :func:`ecgedge.report.efficiency.headline`): the 4-class figures lead; the
#: 5-class ones (with the 7 Q beats of DS2) stay, labelled.
SUMMARY = (
    ("macro-F1 (N,S,V,F)", "macro_f1_4"), ("kappa (N,S,V,F)", "kappa_4"), ("jκ (N,S,V,F)", "jk_4"),
    ("SVEB Se", "sveb_se"), ("SVEB +P", "sveb_ppv"), ("VEB Se", "veb_se"), ("VEB +P", "veb_ppv"),
    ("accuracy", "accuracy"), ("macro-F1, 5 classes", "macro_f1"), ("jκ, 5 classes", "jk"),
)  # fmt: skip
COMPARED = SUMMARY
DASH = "—"
MARKDOWN, PAGE, COMPARISON = "report.md", "report.html", "report.json"  # what write_report writes


@dataclass(frozen=True)
class Run:
    path: Path
    label: str
    config: dict | None
    metrics: dict
    history: list[dict] | None

    @property
    def predictions(self) -> Path:
        """The per-beat predictions behind ``metrics`` (may be missing: older scores)."""
        return run_dirs.predictions_path(self.path, self.metrics.get("set", "DS2"))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EcgEdgeError(f"cannot read {path}: {e}") from e


def load_run(run_dir: Path, label: str | None = None) -> Run:
    """Read a run directory (only metrics.json is required) or a scored model file."""
    run_dir = Path(run_dir)
    if run_dirs.is_model_file(run_dir):
        if not run_dir.is_file():
            raise EcgEdgeError(f"{run_dir} not found.")
        from ecgedge.model_files import verify_model_file

        verify_model_file(run_dir)  # a file whose bytes changed since export is not reported on
        metrics = _read_metrics(run_dirs.metrics_path(run_dir), run_dir)
        return Run(run_dir, label or run_dir.name, {"name": run_dir.name, "model": str(run_dir)}, metrics, None)
    metrics = _read_metrics(run_dirs.metrics_path(run_dir), run_dir)
    config_path, history_path = run_dir / run_dirs.CONFIG, run_dir / run_dirs.HISTORY
    config = _read_json(config_path) if config_path.is_file() else None
    if config is not None and not isinstance(config, dict):
        raise EcgEdgeError(f"{config_path} must hold a JSON object")
    history = _read_json(history_path) if history_path.is_file() else None
    if history is not None and not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
        raise EcgEdgeError(f"{history_path} must hold a list of per-epoch objects")
    return Run(run_dir, label or entry_name(run_dir, config), config, metrics, history or None)


def load_runs(entries: list[Path]) -> list[Run]:
    """Read every entry and name each model by what it is (unique within the report)."""
    runs = [load_run(Path(e)) for e in entries]
    labels = report_labels([(r.path, r.config if not run_dirs.is_model_file(r.path) else None, r.metrics) for r in runs])
    return [Run(r.path, label, r.config, r.metrics, r.history) for r, label in zip(runs, labels)]


def _read_metrics(metrics_path: Path, scored: Path) -> dict:
    """An ``aami_metrics`` dict written by ``ecgedge evaluate SCORED``, checked for its keys."""
    if not metrics_path.is_file():
        raise EcgEdgeError(f"{metrics_path} not found: run `ecgedge evaluate {scored}` first")
    metrics = _read_json(metrics_path)
    if not isinstance(metrics, dict) or (missing := [k for k in METRIC_KEYS if k not in metrics]):
        what = f"lacks {missing}" if isinstance(metrics, dict) else "is not a JSON object"
        raise EcgEdgeError(f"{metrics_path} {what}: re-run `ecgedge evaluate {scored}`")
    return metrics


# --- document blocks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    file: str  # name of the PNG written next to report.md
    png: bytes
    alt: str


@dataclass(frozen=True)
class Code:
    summary: str
    text: str


Block = Heading | Para | Table | Image | Code


def _f(x) -> str:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return DASH if x is None else str(x)
    return str(x) if isinstance(x, int) else f"{x:.4f}"


def _extras(metrics: dict) -> list[list[str]]:
    """Unknown scalar extras (split, model, size_bytes, ...); dicts of scalars flatten one level."""
    rows = []
    for key, value in metrics.items():
        if key in METRIC_KEYS:
            continue
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, v in items:
            if isinstance(v, int | float | str) and not isinstance(v, bool):
                rows.append([key if sub is None else f"{key}.{sub}", v if isinstance(v, str) else f"{v:.6g}"])
    return rows


def _comparison(runs: list[Run]) -> list[Block]:
    classes = list(dict.fromkeys(c for r in runs for c in r.metrics["classes"]))
    heads = [headline(r.metrics) for r in runs]
    rows = [[name] + [_f(h[key]) for h in heads] for name, key in COMPARED]
    rows += [[f"F1 {c}"] + [_f(r.metrics["per_class"].get(c, {}).get("f1")) for r in runs] for c in classes]
    for name, key in (("Δ macro-F1 (N,S,V,F)", "macro_f1_4"), ("Δ jκ (N,S,V,F)", "jk_4")):
        rows.append([name, DASH] + [f"{h[key] - heads[0][key]:+.4f}" for h in heads[1:]])
    return [
        Heading("Comparison"),
        Para(f"Baseline: {runs[0].label} (deltas are against it)."),
        Table(["metric"] + [r.label for r in runs], rows),
    ]


def _mb(n: int | None) -> str:
    return DASH if n is None else f"{n / 1e6:.2f}"


def _millions(n: int | None) -> str:
    return DASH if n is None else f"{n / 1e6:.2f} M"


def _efficiency(rows: list[dict], latency_note: str | None) -> list[Block]:
    header = ["model", "runtime", "precision", "MB", "params", "MACs", "median ms", "speed-up", "macro-F1 (N,S,V,F)", "Δ", "F1 S", "F1 V", "agreement", "same as baseline"]
    table = []
    for r in rows:
        lat = r["latency"] or {}
        table.append(
            [
                r["label"], r["runtime"] or DASH, (r["precision"] or DASH) + (f" ({r['quantization']})" if r["quantization"] else ""),
                _mb(r["size_bytes"]), _millions(r["params"]), _millions(r["macs"]),
                f"{lat['median_ms']:.3f}" if lat else DASH, f"{r['speedup']:.2f}x" if r["speedup"] else DASH,
                f"{r['macro_f1_4']:.4f}", f"{r['delta_macro_f1_4']:+.4f}", f"{r['f1']['S']:.4f}", f"{r['f1']['V']:.4f}",
                DASH if r["agreement"] is None else f"{r['agreement']:.2%}",
                DASH if r["agreement_with_baseline"] is None else f"{r['agreement_with_baseline']:.2%}",
            ]
        )  # fmt: skip
    blocks: list[Block] = [
        Heading("Size, cost and speed"),
        Para(
            "MB: the file a gateway loads (a run: its checkpoint). MACs: multiply-accumulates per beat. "
            "Agreement: share of beats where the model predicts what its reference predicts (an export's source "
            "run; for a QAT export, that run's int8 simulation). Same as baseline: share of beats where it predicts what "
            "the first row predicts (needs both models' predictions: a run's predictions_<set>.npz, a file's "
            "FILE.predictions_<set>.npz from `ecgedge evaluate FILE`). "
            + (latency_note or "Latency not measured: pass --latency.")
        ),
        Table(header, table),
    ]
    sized = [(r["label"], r["macro_f1_4"], r["size_bytes"] / 1e6, (r["latency"] or {}).get("median_ms")) for r in rows if r["size_bytes"]]
    if sized:
        blocks.append(Image("tradeoff.png", tradeoff_png(sized), "macro-F1 against size and latency"))
    return blocks


def _gateway(validation: dict) -> list[Block]:
    """The bundle a gateway would receive and how its models ran on each target (a validation's JSON)."""
    b = validation["bundle"]
    req = b.get("requires") or {}
    prof = req.get("profile")
    header = ["model", "target", "verdict", "max |logit - host|", "classes as host", "macro-F1 (N,S,V,F)", "peak MB", "ms / beat"]
    table = []
    for v in validation["validations"]:
        name = v["model"].rsplit("/", 1)[-1]
        for e in v["targets"]:
            c = e.get("comparison")
            table.append(
                [
                    name, e["target"], "reference" if c is None else ("pass" if c["passed"] else "FAIL"),
                    DASH if c is None else ("identical" if c["identical"] else f"{c['max_abs_logit_diff']:.3g}"),
                    DASH if c is None else f"{c['classes_equal']} / {v['beats']}",
                    f"{headline(e['metrics'])['macro_f1_4']:.4f}", f"{e['check']['peak_rss_bytes'] / 2**20:.0f}", f"{e['check']['ms_per_beat']:.2f}",
                ]
            )  # fmt: skip
    first = validation["validations"][0] if validation["validations"] else {}
    text = (
        f"Bundle {b['version']} ({Path(b['path']).name}): {b['signature']}; "
        + (f"declared for {prof['board']} ({prof['budget_mb']} MB for the gateway). " if prof else "no device profile declared. ")
        + f"Validated on {first.get('subset') or 'all beats of ' + str(first.get('set'))}: "
        + ("**every check passed**." if validation["passed"] else "**failed**: " + "; ".join(validation["failures"]))
        + "".join(f" Skipped {s}." for s in validation.get("skipped_targets", []))
        + " Emulated targets check outputs and memory (qemu's code cache included), not a Pi's speed."
    )
    return [Heading("On the gateway: signed bundle, validated on targets"), Para(text), Table(header, table)]


def _run_section(run: Run, prefix: str) -> list[Block]:
    m = run.metrics
    classes = m["classes"]
    blocks: list[Block] = [
        Heading(run.label),
        Para(f"{'Model file' if run_dirs.is_model_file(run.path) else 'Run directory'}: {run.path}"),
        Table(["n"] + [name for name, _ in SUMMARY], [[_f(m["n"])] + [_f(headline(m)[k]) for _, k in SUMMARY]]),
        Table(
            ["class", "Se", "PPV", "FPR", "F1", "support"],
            [[c] + [_f(m["per_class"][c][k]) for k in ("se", "ppv", "fpr", "f1", "support")] for c in classes],
        ),
    ]
    if extras := _extras(m):
        blocks += [Heading("Extras", 3), Table(["key", "value"], extras)]
    matrix = m["confusion"]["matrix"]
    blocks += [
        Heading("Confusion matrix", 3),
        Para(m["confusion"].get("order", "rows = reference class, columns = predicted class")),
        Image(f"{prefix}-confusion.png", confusion_png(matrix, classes), f"confusion matrix of {run.label}"),
        Table(["reference \\ predicted"] + classes, [[c] + [str(v) for v in row] for c, row in zip(classes, matrix)]),
    ]
    if run.history and (png := curves_png(run.history)):
        blocks += [Heading("Training curves", 3), Image(f"{prefix}-curves.png", png, f"training curves of {run.label}")]
    if run.config is not None:
        blocks.append(Code("config.json", jsonio.dumps(run.config, indent=2, ensure_ascii=False)))
    return blocks


# --- rendering ---------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f2f2f2}
h2{border-bottom:1px solid #ddd;margin-top:2em}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto}
img{max-width:100%}
"""


def _html(blocks: list[Block], title: str) -> str:
    e = html.escape
    out = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]  # fmt: skip
    for b in blocks:
        match b:
            case Heading(text, level):
                out.append(f"<h{level}>{e(text)}</h{level}>")
            case Para(text):
                out.append(f"<p>{e(text)}</p>")
            case Table(header, rows):
                head = "".join(f"<th>{e(h)}</th>" for h in header)
                body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            case Image(_, png, alt):
                data = base64.b64encode(png).decode("ascii")
                out.append(f'<p><img src="data:image/png;base64,{data}" alt="{e(alt)}"></p>')
            case Code(summary, text):
                out.append(f"<details><summary>{e(summary)}</summary><pre>{e(text)}</pre></details>")
    out.append("</body></html>\n")
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def _markdown(blocks: list[Block], title: str, out_dir: Path) -> str:
    out = [f"# {_md_cell(title)}"]
    for b in blocks:
        match b:
            case Heading(text, level):
                out.append(f"{'#' * level} {_md_cell(text)}")
            case Para(text):
                out.append(_md_cell(text))
            case Table(header, rows):
                lines = [header, ["---"] * len(header), *rows]
                out.append("\n".join("| " + " | ".join(map(_md_cell, r)) + " |" for r in lines))
            case Image(file, png, alt):
                with atomic_path(out_dir / file) as tmp:
                    tmp.write_bytes(png)
                out.append(f"![{_md_cell(alt)}]({file})")
            case Code(summary, text):
                # A fence longer than any backtick run inside keeps the block closed.
                fence = "`" * max(3, 1 + max((len(s) for s in re.findall(r"`+", text)), default=0))
                out.append(f"{_md_cell(summary)}:\n\n{fence}json\n{text}\n{fence}")
    return "\n\n".join(out) + "\n"


def report_title(runs: list[Run]) -> str:
    """The baseline's name, how many models, on which set: short enough to read at a glance."""
    base = runs[0]
    name = entry_name(base.path, base.config if not run_dirs.is_model_file(base.path) else None)
    on = f" on {base.metrics['set']}" if base.metrics.get("set") else ""
    return f"{name}{on}" if len(runs) == 1 else f"{name}: {len(runs)} models{on}"


def write_report(
    entries: list[Path], out_dir: Path, *, latency: bool = False, threads: int = 1, calls: int = 300, html: bool = False, validation: dict | None = None
) -> Path:
    """Write ``report.md`` (+ its PNGs) into ``out_dir``; returns its path.

    With several entries, a comparison comes first (deltas against the first entry), then size,
    cost and (``latency=True``) per-beat latency of each model, measured in one session; the
    comparison is also written as ``report.json``. ``html=True`` also writes the self-contained
    ``report.html``.
    """
    if not entries:
        raise EcgEdgeError("no run directories given: name at least one")
    runs = load_runs(list(entries))
    blocks: list[Block] = _comparison(runs) if len(runs) > 1 else []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(runs) > 1:
        facts = [model_facts(r.path, r.config, r.metrics) for r in runs]
        note = None
        if latency:
            measure(facts, threads=threads, calls=calls)
            note = (
                f"Latency: median of {calls} calls per model, batch 1, {threads} thread(s), all models timed in one "
                "interleaved session on this machine (speed-up against the first row)."
            )
        rows = comparison_rows([(r.label, r.metrics) for r in runs], facts, agreement_with_first([r.predictions for r in runs]))
        blocks += _efficiency(rows, note)
        summary = {"baseline": runs[0].label, "latency_note": note, "machine": machine_info(), "models": rows}
        jsonio.write_json(out_dir / COMPARISON, summary)
    if validation is not None:
        blocks += _gateway(validation)
    for i, run in enumerate(runs, 1):
        blocks += _run_section(run, f"run{i}")
    title = report_title(runs)
    md_path = out_dir / MARKDOWN
    _write_text(md_path, _markdown(blocks, title, out_dir))
    if html:
        _write_text(out_dir / PAGE, _html(blocks, title))
    return md_path


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
