"""The package's structure: no import circle, imports only run down the flow, and an import
inside a function is there for an optional heavy dependency only (never to hide a circle).

Static: every ``import`` in ``t2c_sim/`` (module level, inside functions, under
``TYPE_CHECKING``) is read with :mod:`ast`. An import of ``t2c_sim.a.b`` from outside the
package ``t2c_sim.a`` also runs ``t2c_sim/a/__init__.py``, so it counts as an edge to it too.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "t2c_sim"

#: The flow, bottom to top: a module may import its own rank or a lower one.
#: models/ (the example float nets and datasets) sits with workloads/: both are inputs that the
#: flow is run on; models/ needs quant/ (the residual Add module) and only recipe/ uses it.
FLOW: tuple[tuple[str, int], ...] = (
    ("t2c_sim.errors", 0), ("t2c_sim.config", 1), ("t2c_sim.limits", 1),
    ("t2c_sim.numerics", 2), ("t2c_sim.rounding_profiles", 2), ("t2c_sim.readers", 2),
    ("t2c_sim.files", 2),
    ("t2c_sim.layout", 3), ("t2c_sim.sparse", 4), ("t2c_sim.record", 4), ("t2c_sim.quant", 5),
    ("t2c_sim.train", 6), ("t2c_sim.fuse", 7), ("t2c_sim.importers", 7), ("t2c_sim.golden", 8),
    ("t2c_sim.estimate", 9),
    ("t2c_sim.export", 9), ("t2c_sim.cosim", 10), ("t2c_sim.verify", 11),
    ("t2c_sim.workloads", 12), ("t2c_sim.models", 12), ("t2c_sim.recipe", 13),
    ("t2c_sim.closure", 13),
    ("t2c_sim.regress", 14), ("t2c_sim.cli", 15),
)
#: Third-party packages that are slow to import or optional: the only ones (and the only
#: reason) an import may be deferred into a function.
HEAVY = {"torch", "numpy", "sklearn", "matplotlib", "dask", "distributed", "cocotb",
         "cocotb_tools", "find_libpython", "onnx", "onnxruntime", "scipy", "pyslang"}
#: Deferred imports kept for a stated reason: (importer, imported).
LAZY_WAIVED: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    line: int
    lazy: bool        # inside a function


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module under ``root/t2c_sim``."""
    return {module_name(p, root): p for p in (root / "t2c_sim").rglob("*.py")
            if "__pycache__" not in p.parts}


def _is_package(name: str, mods: dict[str, Path]) -> bool:
    return name in mods and mods[name].name == "__init__.py"


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    """The longest prefix of dotted ``name`` that is one of our modules."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in mods:
            return cand
    return None


def raw_imports(path: Path, mods: dict[str, Path] | None = None) -> list[tuple[str, int, bool]]:
    """``(imported dotted name, line, inside a function)`` for every import in ``path``.

    ``from a import b`` names ``a.b`` when that is one of ``mods`` (a submodule), else ``a``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                for a in child.names:
                    sub = f"{child.module}.{a.name}"
                    name = sub if mods is not None and sub in mods else child.module
                    out.append((name, child.lineno, lazy))
            visit(child, inner)

    visit(tree, False)
    return out


def import_graph(mods: dict[str, Path]) -> list[Edge]:
    edges: set[Edge] = set()
    for src, path in mods.items():
        for name, line, lazy in raw_imports(path, mods):
            if not name.startswith("t2c_sim"):
                continue
            dst = _resolve(name, mods)
            if dst is None or dst == src:
                continue
            edges.add(Edge(src, dst, line, lazy))
            # running t2c_sim.a.b first runs the packages t2c_sim.a (unless src is inside them)
            parts = dst.split(".")
            for i in range(2, len(parts)):
                pkg = ".".join(parts[:i])
                if _is_package(pkg, mods) and not (src == pkg or src.startswith(pkg + ".")):
                    edges.add(Edge(src, pkg, line, lazy))
    return sorted(edges, key=lambda e: (e.src, e.dst, e.line))


def find_cycle(edges: list[Edge]) -> list[Edge] | None:
    """One import circle as its edges (depth-first search), or ``None``."""
    graph: dict[str, list[Edge]] = {}
    for e in edges:
        graph.setdefault(e.src, []).append(e)
    state: dict[str, int] = {}
    stack: list[Edge] = []

    def dfs(n: str) -> list[Edge] | None:
        state[n] = 1
        for e in graph.get(n, []):
            if state.get(e.dst) == 1:
                start = next(i for i, s in enumerate(stack) if s.src == e.dst) if any(
                    s.src == e.dst for s in stack) else len(stack)
                return stack[start:] + [e]
            if e.dst not in state:
                stack.append(e)
                found = dfs(e.dst)
                if found:
                    return found
                stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = dfs(n)
            if found:
                return found
    return None


def rank(mod: str) -> int:
    best = None
    for prefix, r in FLOW:
        if mod == prefix or mod.startswith(prefix + "."):
            best = r
    if best is None:
        if mod == "t2c_sim":
            return 0
        raise AssertionError(f"{mod}: not placed in the flow (add it to FLOW)")
    return best


def upward(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if rank(e.dst) > rank(e.src)]


_IMPORTS: dict[Path, list[tuple[str, int, bool]]] = {}


def _imports(path: Path, mods: dict[str, Path]) -> list[tuple[str, int, bool]]:
    if path not in _IMPORTS:
        _IMPORTS[path] = raw_imports(path, mods)
    return _IMPORTS[path]


def heavy_closure(mod: str, mods: dict[str, Path], seen: set[str] | None = None) -> set[str]:
    """Heavy third-party packages that importing ``mod`` loads (module-level imports only)."""
    seen = set() if seen is None else seen
    if mod in seen:
        return set()
    seen.add(mod)
    out: set[str] = set()
    chain = [mod] + [".".join(mod.split(".")[:i]) for i in range(2, len(mod.split(".")))]
    for m in chain:
        if m not in mods:
            continue
        for name, _, lazy in _imports(mods[m], mods):
            if lazy:
                continue
            top = name.split(".")[0]
            if top in HEAVY:
                out.add(top)
            elif name.startswith("t2c_sim"):
                dst = _resolve(name, mods)
                if dst is not None:
                    out |= heavy_closure(dst, mods, seen)
    return out


def bad_lazy_imports(mods: dict[str, Path], root: Path = ROOT) -> list[str]:
    """Function-level imports that defer no heavy dependency (they can only hide a circle)."""
    bad = []
    for src, path in mods.items():
        have = heavy_closure(src, mods)
        for name, line, lazy in raw_imports(path, mods):
            if not lazy:
                continue
            top = name.split(".")[0]
            where = f"{path.relative_to(root)}:{line} imports {name}"
            if top == "t2c_sim":
                dst = _resolve(name, mods)
                if (src, dst) in LAZY_WAIVED:
                    continue
                if dst is not None and not heavy_closure(dst, mods) - have:
                    bad.append(f"{where}: defers nothing heavy (import it at the top)")
            elif top not in HEAVY and top not in sys.stdlib_module_names:
                bad.append(f"{where}: not a heavy optional dependency")
    return sorted(set(bad))


def _fmt(edges: list[Edge]) -> str:
    return " -> ".join([edges[0].src] + [f"{e.dst} (line {e.line})" for e in edges])


# ------------------------------------------------------------------------------------ tests
def test_no_import_circle_in_t2c_sim() -> None:
    cycle = find_cycle(import_graph(modules()))
    assert cycle is None, f"import circle: {_fmt(cycle)}"


def test_imports_run_down_the_flow() -> None:
    ups = upward(import_graph(modules()))
    assert not ups, "imports against the flow:\n" + "\n".join(
        f"  {e.src} (rank {rank(e.src)}) -> {e.dst} (rank {rank(e.dst)}), line {e.line}"
        for e in ups)


def test_function_level_imports_only_defer_heavy_dependencies() -> None:
    bad = bad_lazy_imports(modules())
    assert not bad, "\n".join(bad)


def test_golden_never_imports_torch() -> None:
    assert "torch" not in heavy_closure("t2c_sim.golden", modules())


# ------------------------------------------------------------- the checkers can fail
def _fake_pkg(tmp: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return modules(tmp)


CIRCLES = [  # (package, the module whose removal breaks the circle)
    ({"t2c_sim/__init__.py": "", "t2c_sim/a.py": "import t2c_sim.b\n",
      "t2c_sim/b.py": "def f():\n    from t2c_sim import a\n"}, "t2c_sim.b"),
    ({"t2c_sim/__init__.py": "", "t2c_sim/p/__init__.py": "from t2c_sim.p.x import X\n",
      "t2c_sim/p/x.py": "from t2c_sim.q import Y\nX = 1\n",
      "t2c_sim/q.py": "from t2c_sim.p.y import Z\nY = 2\n", "t2c_sim/p/y.py": "Z = 3\n"},
     "t2c_sim.q"),
]


@pytest.mark.parametrize("files,breaker", CIRCLES)
def test_cycle_finder_catches_circles(tmp_path: Path, files: dict[str, str], breaker: str) -> None:
    mods = _fake_pkg(tmp_path, files)
    cycle = find_cycle(import_graph(mods))
    assert cycle is not None and cycle[0].src == cycle[-1].dst
    assert find_cycle(import_graph({k: v for k, v in mods.items() if k != breaker})) is None


def test_package_init_importing_its_submodules_is_no_circle(tmp_path: Path) -> None:
    mods = _fake_pkg(tmp_path, {"t2c_sim/__init__.py": "",
                                "t2c_sim/r/__init__.py": "from t2c_sim.r.h import H\n",
                                "t2c_sim/r/h.py": "from t2c_sim.r import p\nH = 1\n",
                                "t2c_sim/r/p.py": "P = 1\n"})
    assert find_cycle(import_graph(mods)) is None


def test_flow_and_lazy_checks_catch_violations(tmp_path: Path) -> None:
    mods = _fake_pkg(tmp_path, {
        "t2c_sim/__init__.py": "",
        "t2c_sim/config.py": "import numpy\n",
        "t2c_sim/golden/__init__.py": "import numpy\n\n\ndef f():\n    from t2c_sim.config import X\n",
        "t2c_sim/numerics.py": "from t2c_sim.cli import main\n",
        "t2c_sim/cli.py": "def main():\n    import torch\n    import yaml\n",
    })
    edges = import_graph(mods)
    assert [(e.src, e.dst) for e in upward(edges)] == [("t2c_sim.numerics", "t2c_sim.cli")]
    bad = bad_lazy_imports(mods, tmp_path)
    assert any("golden" in b and "defers nothing heavy" in b for b in bad)
    assert any("imports yaml" in b for b in bad)
    assert not any("imports torch" in b for b in bad)
