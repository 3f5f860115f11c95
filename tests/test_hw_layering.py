"""hw knows nothing of Ray, processes, files or the layers above it; workload knows no Ray/processes."""

import ast
from pathlib import Path

import atleus_dist

ROOT = Path(atleus_dist.__file__).parent
FORBIDDEN_HW = ("ray", "multiprocessing", "subprocess", "atleus_dist.workload", "atleus_dist.backends",
                "atleus_dist.results", "atleus_dist.run", "atleus_dist.commands", "pyarrow", "yaml")
FORBIDDEN_WORKLOAD = ("ray", "multiprocessing", "subprocess", "atleus_dist.backends", "atleus_dist.results",
                      "atleus_dist.run", "atleus_dist.commands")


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def _check(files, forbidden):
    bad = [(f.name, m) for f in files for m in _imports(f)
           if any(m == x or m.startswith(x + ".") for x in forbidden)]
    assert not bad


def test_hw_core_models_import_only_the_kernel():
    files = [f for f in (ROOT / "hw").glob("*.py")]
    assert len(files) >= 6
    _check(files, FORBIDDEN_HW)
    for f in files:
        assert "open(" not in f.read_text(), f.name


def test_workload_imports_no_process_or_result_layers():
    _check(list((ROOT / "workload").glob("*.py")), FORBIDDEN_WORKLOAD)


def test_lower_bound_is_the_longer_of_critical_path_and_busiest_unit():
    from types import SimpleNamespace

    from atleus_dist.hw.compute import lower_bound_ps

    # 0 -> 1 -> 2 is a 1+2+3 = 6 ps chain; op 3 (5 ps) and op 1 share unit 7: 7 ps of work on it
    prog = SimpleNamespace(latency_ps=[1, 2, 3, 5], deps=[(), (0,), (1,), ()], unit=[0, 7, 2, 7])
    assert lower_bound_ps(prog) == 7
    prog.latency_ps = [4, 2, 3, 1]
    assert lower_bound_ps(prog) == 9
