"""shared/ imports in one direction: docs/ARCHITECTURE.md's layers, read from the syntax tree.

Every import counts, including the ones inside functions (a lazy import is still a dependency) and the
ones under TYPE_CHECKING; a module may import its own layer or a lower one, never a higher one, and the
import graph has no cycle. shared/ never imports functions/ or local/.
"""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Lowest first. A module not listed here fails the test: place it when you add it.
LAYERS = [
    ["errors", "keys", "numbers", "validity", "disposition", "processing", "config", "logging"],
    ["signing", "http", "events", "links", "url_options"],
    ["outbound", "oss_answers", "storage", "sts", "webhook", "policy"],
    ["scoped_signing", "credentials"],
    ["auth", "symlinks", "key_checks", "revocation", "downloads", "url_batch", "vending",
     "link_records", "export", "uploads", "openapi", "portal"],
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def _top(module: str) -> str:
    """shared.signing.v4 -> signing; shared.export.job -> export."""
    return module.split(".")[1]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "shared":
                found |= {f"shared.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "shared").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if len(parts) < 2 or parts[1] == "__init__":
            continue
        name = parts[1]
        imports = _imports(path)
        assert not any(m.split(".")[0] in {"functions", "local", "tests"} for m in imports), path
        graph.setdefault(name, set()).update(_top(m) for m in imports
                                             if m.startswith("shared.") and _top(m) != name)
    return graph


def test_every_module_has_a_layer_and_imports_only_downwards():
    graph = _graph()
    assert set(graph) <= set(LAYER_OF), f"place these in LAYERS: {sorted(set(graph) - set(LAYER_OF))}"
    upward = [f"{module} (layer {LAYER_OF[module]}) imports {target} (layer {LAYER_OF[target]})"
              for module, targets in graph.items() for target in targets if LAYER_OF[target] > LAYER_OF[module]]
    assert not upward, upward


def test_the_import_graph_has_no_cycle():
    try:
        TopologicalSorter(_graph()).prepare()
    except CycleError as cycle:
        raise AssertionError(f"import cycle: {' -> '.join(cycle.args[1])}") from None
