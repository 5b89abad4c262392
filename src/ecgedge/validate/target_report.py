"""The files of ``ecgedge validate -o DIR``: ``validation.json``, ``predictions.npz`` and ``report.md``.

The report page puts the host and each target side by side: agreement with the host, AAMI
figures from each target's own predictions, peak memory and time on the target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgedge.validate.on_target import Beats, TargetRun

__all__ = ["write_validation", "write_bundle_validation", "markdown", "bundle_markdown"]

MB = 1024 * 1024


def write_validation(out_dir: Path, result: dict, runs: dict[str, TargetRun], beats: Beats) -> list[Path]:
    """Write the result, every target's logits and the report page into ``out_dir`` (atomically)."""
    from ecgedge.atomic import atomic_path
    from ecgedge.jsonio import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "validation.json", out_dir / "predictions.npz", out_dir / "report.md"]
    write_json(paths[0], result)
    _write_predictions(paths[1], runs, beats)
    with atomic_path(paths[2]) as tmp:
        tmp.write_text(markdown(result), encoding="utf-8")
    return paths


def _write_predictions(path: Path, runs: dict[str, TargetRun], beats: Beats) -> None:
    from ecgedge.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        arrays = {f"logits/{name}": run.logits for name, run in runs.items()}
        np.savez_compressed(fh, index=beats.index, labels=beats.labels, targets=np.array(list(runs)), **arrays)


def write_bundle_validation(out_dir: Path, result: dict, runs: dict[str, dict[str, TargetRun]], beats: Beats) -> list[Path]:
    """A bundle's validation: ``validation.json`` and ``report.md`` for all of it, ``predictions-FILE.npz`` per model."""
    from ecgedge.atomic import atomic_path
    from ecgedge.jsonio import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "validation.json", out_dir / "report.md"]
    write_json(paths[0], result)
    for file, model_runs in runs.items():
        paths.append(out_dir / f"predictions-{Path(file).name}.npz")
        _write_predictions(paths[-1], model_runs, beats)
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(bundle_markdown(result), encoding="utf-8")
    return paths


def bundle_markdown(result: dict) -> str:
    """The report page of a bundle's validation: what the bundle is and needs, then each model's page."""
    b = result["bundle"]
    req = b.get("requires") or {}
    prof = req.get("profile")
    lines = [
        f"# Bundle {b['version']}",
        "",
        f"`{Path(b['path']).name}` (SHA-256 {b['sha256'][:16]}…): {b['signature']}. Needs: runtimes {', '.join(req.get('runtimes') or [])}, "
        f"peak memory {req.get('peak_rss_mb', '?')} MB measured on the host"
        + (f"; declared for {prof['board']} ({prof['ram_mb']} MB, {prof['budget_mb']} MB for the gateway)" if prof else "; no device profile declared")
        + (f"; checked against profile `{b['profile_used']}` (from {b['profile_from']})." if b.get("profile_used") else "."),
        "",
        "**All checks passed.**" if result["passed"] else "**Failed:** " + "; ".join(result["failures"]),
        "",
    ]
    for v in result["validations"]:
        check = v.get("manifest_host_metrics") or {}
        lines += ["#" + markdown(v)]
        if check.get("compared"):
            lines += [f"Host figures vs the manifest's ({check['what']}): {'equal' if check['equal'] else '**different**'}.", ""]
    return "\n".join(lines)


def _fmt(x, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def _runtime(e: dict) -> str:
    c = e["check"]
    return f"{c['backend']} {c.get('backend_version') or ''}".strip()


def _cpu(e: dict) -> str:
    if e.get("emulated"):
        return f"{e['cpu']} (qemu-user; {e.get('board', '')})"
    return f"{e.get('cpu') or '?'} ({'; '.join(x for x in (e.get('machine'), e.get('board')) if x)})"  # a real Pi names its board


def _verdict(e: dict) -> str:
    c = e.get("comparison")
    if c is None:
        return "reference"
    return "**pass**" if c["passed"] else "**FAIL**"


def markdown(result: dict) -> str:
    """The report page of a validation result."""
    from ecgedge.report.efficiency import headline

    entries = result["targets"]
    name = Path(result["model"]).name
    heads = [headline(e["metrics"]) for e in entries]
    tol = result["tolerance"]
    lines = [
        f"# {name} on {len(entries)} target{'s' if len(entries) > 1 else ''}",
        "",
        f"{result['format']} {result['precision']}, {result['size_bytes'] / 1e6:.2f} MB; {result['set']} ({result['split']}): "
        + (result["subset"] or f"all {result['beats']:,} beats")
        + f"; classes {', '.join(f'{k} {v}' for k, v in result['class_counts'].items())}.",
        "",
        f"Reference: the {result['reference']} run. A target passes when max |logit - host logit| <= {tol['max_abs_logit_diff']:g} "
        f"({tol['why']}) and {tol['classes']}.",
        "",
        "| | " + " | ".join(f"`{e['target']}`" for e in entries) + " |",
        "|---|" + "---:|" * len(entries),
    ]

    def row(label: str, cells) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    comps = [e.get("comparison") or {} for e in entries]
    n = result["beats"]
    row("verdict", [_verdict(e) for e in entries])
    row("CPU", [_cpu(e) for e in entries])
    row("runtime", [_runtime(e) for e in entries])
    row("Python", [e["check"]["python"] for e in entries])
    row("max \\|logit - host\\|", [_fmt(c.get("max_abs_logit_diff"), ".3g") for c in comps])
    row("beats with any logit difference", [_fmt(c.get("beats_with_any_difference"), "d") for c in comps])
    row("classes as on the host", [f"{c['classes_equal']} / {n}" if c else "–" for c in comps])
    row("macro-F1 (N, S, V, F)", [f"{h['macro_f1_4']:.4f}" for h in heads])
    row("VEB Se / +P", [f"{h['veb_se']:.3f} / {h['veb_ppv']:.3f}" for h in heads])
    row("SVEB Se / +P", [f"{h['sveb_se']:.3f} / {h['sveb_ppv']:.3f}" for h in heads])
    row("accuracy (5 classes)", [f"{h['accuracy']:.4f}" for h in heads])
    row("peak memory (MB)", [f"{e['check']['peak_rss_bytes'] / MB:.0f}" for e in entries])
    row("model load (s)", [f"{e['check']['load_s']:.2f}" for e in entries])
    host_ms = entries[0]["check"]["ms_per_beat"]
    row("inference (ms / beat)", [f"{e['check']['ms_per_beat']:.2f}" + (f" ({e['check']['ms_per_beat'] / host_ms:.0f}x)" if i and host_ms else "") for i, e in enumerate(entries)])
    row("whole run on the target (s)", [f"{e['wall_s']:.1f}" for e in entries])
    emulated = (
        "Emulated targets check behaviour, not a Pi's speed: qemu-user translates every instruction (the factor beside "
        "the time is against the host), and their peak memory includes qemu's translated-code cache (an upper bound of a "
        "Pi's). "
    )
    lines += [
        "",
        (emulated if any(e.get("emulated") for e in entries) else "")
        + "AAMI figures come from each target's own predictions"
        + (" on a class-balanced subset, not comparable with full-set figures." if result["subset"] else "."),
    ]
    fit = result.get("profile")
    if fit:
        lines += [
            "",
            f"Device profile `{fit['name']}` ({fit['board']}, {fit['ram_mb']} MB RAM, {fit['budget_mb']} MB for the gateway): "
            f"peak {fit['peak_mb']:.0f} MB on `{fit['measured_on']}` ({fit['host_peak_mb']:.0f} MB natively on the host): "
            + ("**fits**." if fit["fits"] else "**does not fit**."),
        ]
    if result["failures"]:
        lines += ["", "Failed checks:", ""] + [f"- {f}" for f in result["failures"]]
    return "\n".join(lines) + "\n"
