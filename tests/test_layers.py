"""One-way layering of ``src/ecgedge``: no import of a higher stage, no import cycle.

Stages, lowest first (imports go down only, never up, not even lazily inside a function):

    preprocess -> data -> models -> train -> compress -> export -> firmware_host -> deploy -> (cli, report, validate, pipeline)

``preprocess`` (signal processing: filters, spectrograms, rhythm features) sits below ``data``
because preparing the dataset cache calls it. Modules outside the stage packages are shared
utilities (``errors``, ``atomic``, ``jsonio``, ``machine``, ``preflight``, ``evaluate``, ...):
each takes the stage of the highest module it imports (``errors``: none; ``evaluate.metrics``:
``data``), so a stage may use a shared utility only when that utility itself stays below it.

The imports are read with :mod:`ast` (every ``import`` statement at any depth), so the test needs
none of the packages it looks at.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ecgedge"
TOP = SRC.name

#: stage packages, lowest first; ``None`` marks the layer on top
STAGES = ["preprocess", "data", "models", "train", "compress", "export", "firmware_host", "deploy", None]
TOP_PACKAGES = {"cli", "report", "validate", "pipeline", "__main__"}
BASE = -1  # shared utilities that import no stage


def _modules() -> dict[str, Path]:
    mods = {}
    for p in sorted(SRC.rglob("*.py")):
        rel = p.relative_to(SRC.parent).with_suffix("")
        mods[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = p
    return mods


def _imports(mod: str, path: Path, mods: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported module of this package, line) for every import in ``path``, at any depth."""
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # ``from a.b import c``: c may be a submodule, else a name defined in a.b
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for n in names:
            while n and n not in mods and "." in n:  # ``import a.b.c`` of a name: its module
                n = n.rsplit(".", 1)[0]
            if n in mods and n != mod:
                out.append((n, node.lineno))
    return out


def _graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, int]]]]:
    mods = _modules()
    return mods, {m: _imports(m, p, mods) for m, p in mods.items()}


def _stage_package(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None


def _fixed_rank(mod: str) -> int | None:
    """The rank of a module of a stage package (or the top layer); None for a shared utility."""
    sub = _stage_package(mod)
    if sub is None:
        return None  # the package's own __init__ (version string): shared
    if sub in TOP_PACKAGES:
        return len(STAGES) - 1
    if sub in STAGES:
        return STAGES.index(sub)
    return None


def _ranks(edges: dict[str, list[tuple[str, int]]]) -> dict[str, int]:
    """Stage rank of every module; a shared utility gets the highest rank among what it imports."""
    rank = {m: (_fixed_rank(m) if _fixed_rank(m) is not None else BASE) for m in edges}
    changed = True
    while changed:  # fixed point (terminates: ranks only grow and are bounded)
        changed = False
        for m, deps in edges.items():
            if _fixed_rank(m) is not None:
                continue
            r = max([BASE] + [rank[d] for d, _ in deps])
            if r > rank[m]:
                rank[m], changed = r, True
    return rank


def _stage_name(rank: int) -> str:
    if rank == BASE:
        return "shared"
    return STAGES[rank] or "top (cli/report/validate/pipeline)"


def test_the_stage_list_names_real_packages():
    for stage in [s for s in STAGES if s] + sorted(TOP_PACKAGES - {"__main__"}):
        assert (SRC / stage).is_dir(), f"stage package {stage} not found under {SRC}"


def test_no_module_imports_a_higher_stage():
    mods, edges = _graph()
    rank = _ranks(edges)
    bad = []
    for m, deps in sorted(edges.items()):
        if _fixed_rank(m) is None:
            continue  # a shared utility is ranked by what it imports; its importers are checked
        for d, line in deps:
            if rank[d] > rank[m]:
                why = "" if _fixed_rank(d) is not None else f" (a shared module at stage {_stage_name(rank[d])} by its own imports)"
                bad.append(
                    f"{mods[m].relative_to(SRC.parent.parent)}:{line}: {m} (stage {_stage_name(rank[m])}) imports {d}"
                    f" (stage {_stage_name(rank[d])}){why}"
                )
    assert not bad, "imports of a higher stage:\n" + "\n".join(dict.fromkeys(bad))


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycle():
    mods, edges = _graph()
    graph = {m: {d for d, _ in deps} for m, deps in edges.items()}
    # a package's __init__ that re-exports its own submodules is not a loop: ``pkg -> pkg.mod`` is
    # what importing ``pkg.mod`` does anyway, so drop edges from a package to its own submodules
    for m, p in mods.items():
        if p.name == "__init__.py":
            graph[m] = {d for d in graph[m] if not d.startswith(m + ".")}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_imports_and_cycles(tmp_path):
    """The checks themselves: an import inside a function counts, and a two-module loop is found."""
    code = "def f():\n    from ecgedge.export import x\n"
    tree = ast.parse(code)
    assert any(isinstance(n, ast.ImportFrom) and n.module == "ecgedge.export" for n in ast.walk(tree))
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
