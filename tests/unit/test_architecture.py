"""The house rules DESIGN.md states about the package's shape, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import PACKAGE


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """dlx modules that ``path`` imports anywhere (module level or inside functions)."""
    tree = ast.parse(path.read_text())
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            # ``from dlx.train import gan`` imports the module dlx.train.gan.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # a name inside a module: take the module
                name = name.rpartition(".")[0]
            if name and name != this:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, known) for p in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_lazy_and_from_imports():
    graph = import_graph()
    # A family's record imports its trainer only inside a function.
    assert "dlx.families.cnn.loop" in graph["dlx.families.cnn.family"]
    assert "dlx.errors" in graph["dlx.config"]


def test_no_generic_module_imports_a_family():
    """The families sit on top: the registry finds them through entry points, so nothing below imports one
    (``dlx.registry`` may import the package ``dlx.families`` itself, to list the folders a source tree ships)."""
    upward = {module: sorted(target for target in targets if target.startswith("dlx.families."))
              for module, targets in import_graph().items() if not module.startswith("dlx.families")}
    assert {module: targets for module, targets in upward.items() if targets} == {}


# A family that builds on another says so here. The GAN's evaluation classifier (FID features,
# conditional accuracy) is a train-cnn model.
FAMILY_DEPENDS_ON = {"dlx.families.gan": ("dlx.families.cnn",)}


def test_no_family_imports_another():
    crossing = {}
    for module, targets in import_graph().items():
        if module.startswith("dlx.families."):
            own = ".".join(module.split(".")[:3])
            allowed = (own, *FAMILY_DEPENDS_ON.get(own, ()))
            others = sorted(t for t in targets if t.startswith("dlx.families.") and not t.startswith(allowed))
            if others:
                crossing[module] = others
    assert crossing == {}


FAMILY_NAMES = ("cnn", "gan", "transformer", "graph", "detr")
GENERIC_FILES = ["cli.py", "runs.py", "commands/*.py", "sweep*.py", "sweep*/*.py", "hparams*.py"]


def test_generic_layers_name_no_family():
    """The CLI, runs, sweeps and HParams learn every family from the registry, never from a literal."""
    import re

    pattern = re.compile(r"""["']({})["']""".format("|".join(FAMILY_NAMES)))
    found = []
    for glob in GENERIC_FILES:
        for path in sorted(PACKAGE.glob(glob)):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert found == []


def test_no_import_circles_in_dlx():
    """Every import arrow points one way, lazy (function-level) imports included."""
    assert cycles(import_graph()) == []


def test_no_module_passes_the_size_limit():
    """DESIGN.md: split a module when it passes ~500 lines."""
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := p.read_text().count("\n")) > 550}
    assert long == {}
