"""The import graph of ``atleus_dist/`` (every module, imports inside functions included) follows
docs/architecture.md: every import points down the layer list, no circles; ``hw/`` (``hw/noc/``
included) imports nothing from config, run, results, backends or api, nor Ray, processes, Arrow or
YAML; ``kernel/`` imports nothing of the package above it; Ray only in ``backends/ray*.py``."""

from __future__ import annotations

import ast
from pathlib import Path

import atleus_dist

ROOT = Path(atleus_dist.__file__).parent
PKG = "atleus_dist"

# docs/architecture.md section 2, top to bottom; a module may import its own layer or any below
LAYERS = ("commands", "api", "run", "config", "workload", "hw", "results", "backends", "kernel")
SAME_LAYER = {"cli": "commands", "models": "hw"}  # cli.py sits with commands/; the PHOLD model is a model
FORBIDDEN_HW = ("ray", "multiprocessing", "subprocess", "pyarrow", "yaml", f"{PKG}.config", f"{PKG}.run",
                f"{PKG}.results", f"{PKG}.backends", f"{PKG}.api", f"{PKG}.cli", f"{PKG}.commands",
                f"{PKG}.workload")
FORBIDDEN_WORKLOAD = ("ray", "multiprocessing", "subprocess", f"{PKG}.backends", f"{PKG}.results", f"{PKG}.run",
                      f"{PKG}.commands")

# Circles and upward imports other work removes (issue 23): listed so that a NEW one fails here,
# and an entry that is gone fails too (then delete it from this list).
KNOWN_CIRCLES: set[frozenset[str]] = set()
KNOWN_UPWARD: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(name: str, source: str, is_package: bool = False) -> list[str]:
    """Every module ``source`` (the text of module ``name``) imports, anywhere in the file:
    ``from a.b import c`` gives ``a.b.c`` (:func:`graph` takes it as ``a.b`` when ``c`` is not a
    module) and relative imports are made absolute."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            out += [f"{base}.{a.name}" for a in node.names]
    return out


def _sources() -> dict[str, tuple[str, bool]]:
    return {module_name(p): (p.read_text(), p.name == "__init__.py") for p in sorted(ROOT.rglob("*.py"))}


def graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """module -> the package modules it imports (``from pkg import name`` counts as the module
    ``pkg.name`` when that is a module, else as ``pkg``)."""
    edges: dict[str, set[str]] = {m: set() for m in sources}
    for m, (src, is_pkg) in sources.items():
        for target in imports(m, src, is_pkg):
            while target and target not in sources:
                target = target.rpartition(".")[0]
            if target and target != m and target.startswith(PKG):
                edges[m].add(target)
    return edges


def circles(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = set()
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
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
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.add(frozenset(comp))
    return found


def layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) == 1:
        return len(LAYERS)  # the package itself holds only its version: below everything
    top = SAME_LAYER.get(parts[1], parts[1])
    return LAYERS.index(top) if top in LAYERS else None


def upward(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(m, t) for m, ts in edges.items() for t in ts
            if layer(m) is not None and layer(t) is not None and layer(t) < layer(m)}


def forbidden(sources: dict[str, tuple[str, bool]], prefix: str, banned: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(m, i) for m, (src, is_pkg) in sources.items() if m == prefix or m.startswith(prefix + ".")
            for i in imports(m, src, is_pkg) if any(i == b or i.startswith(b + ".") for b in banned)]


# --- the tests -------------------------------------------------------------------------------------
def test_hw_imports_nothing_above_it_in_any_file_of_any_depth():
    sources = _sources()
    hw = [m for m in sources if m.startswith(f"{PKG}.hw.")]
    assert any(m.startswith(f"{PKG}.hw.noc.") for m in hw) and len(hw) >= 30  # hw/noc/ is walked
    assert forbidden(sources, f"{PKG}.hw", FORBIDDEN_HW) == []
    for m in hw:
        assert "open(" not in sources[m][0], m  # no files


def test_kernel_imports_nothing_of_the_package_above_it():
    sources = _sources()
    bad = [(m, i) for m, (src, is_pkg) in sources.items() if m.startswith(f"{PKG}.kernel")
           for i in imports(m, src, is_pkg)
           if (i == PKG or i.startswith(PKG + ".")) and not i.startswith(f"{PKG}.kernel")]
    assert bad == []
    assert forbidden(sources, f"{PKG}.kernel", ("ray", "multiprocessing", "subprocess", "pyarrow", "yaml")) == []


def test_workload_imports_no_process_or_result_layers():
    assert forbidden(_sources(), f"{PKG}.workload", FORBIDDEN_WORKLOAD) == []


def test_ray_only_in_the_ray_backends():
    sources = _sources()
    users = {m for m, (src, is_pkg) in sources.items()
             if any(i == "ray" or i.startswith("ray.") for i in imports(m, src, is_pkg))}
    assert users and all(m.startswith(f"{PKG}.backends.ray") for m in users), users


def test_a_planted_upward_import_is_caught_even_inside_a_function():
    sources = _sources()
    planted = dict(sources)
    planted[f"{PKG}.hw.noc.planted"] = ("def f():\n    from atleus_dist.config.tree import build\n", False)
    assert forbidden(planted, f"{PKG}.hw", FORBIDDEN_HW) == [(f"{PKG}.hw.noc.planted", f"{PKG}.config.tree.build")]
    edges = graph(planted)
    assert (f"{PKG}.hw.noc.planted", f"{PKG}.config.tree") in upward(edges)
    relative = {f"{PKG}.kernel.planted": ("from ..results import reader\n", False)}
    assert imports(f"{PKG}.kernel.planted", relative[f"{PKG}.kernel.planted"][0]) == [f"{PKG}.results.reader"]
    # a new circle is found: kernel.time -> kernel.lp, which imports kernel.time
    planted[f"{PKG}.kernel.time"] = (sources[f"{PKG}.kernel.time"][0] + "\nimport atleus_dist.kernel.lp\n", False)
    assert frozenset({f"{PKG}.kernel.time", f"{PKG}.kernel.lp"}) in circles(graph(planted))


def test_every_import_points_down_the_layers():
    edges = graph(_sources())
    assert all(layer(m) is not None for m in edges if m != PKG and "workloads" not in m), \
        [m for m in edges if layer(m) is None]
    up = upward(edges)
    assert up <= KNOWN_UPWARD, sorted(up - KNOWN_UPWARD)
    assert up >= KNOWN_UPWARD, f"fixed, delete from KNOWN_UPWARD: {sorted(KNOWN_UPWARD - up)}"


def test_no_import_circles_but_the_known_ones():
    found = circles(graph(_sources()))
    assert found <= KNOWN_CIRCLES, [sorted(c) for c in found - KNOWN_CIRCLES]
    assert found >= KNOWN_CIRCLES, f"fixed, delete from KNOWN_CIRCLES: {[sorted(c) for c in KNOWN_CIRCLES - found]}"


def test_lower_bound_is_the_longer_of_critical_path_and_busiest_unit():
    from types import SimpleNamespace

    from atleus_dist.hw.compute import lower_bound_ps

    # 0 -> 1 -> 2 is a 1+2+3 = 6 ps chain; op 3 (5 ps) and op 1 share unit 7: 7 ps of work on it
    prog = SimpleNamespace(latency_ps=[1, 2, 3, 5], deps=[(), (0,), (1,), ()], unit=[0, 7, 2, 7])
    assert lower_bound_ps(prog) == 7
    prog.latency_ps = [4, 2, 3, 1]
    assert lower_bound_ps(prog) == 9
