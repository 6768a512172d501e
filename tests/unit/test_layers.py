"""Architecture guard: modules import only their own layer or those below it (lazy imports included), and
nothing imports in a cycle. Layers, bottom up: core types; spectral tools and the training/inference contract;
file I/O, filters and metrics; simulation; learned models; the sharpening use case; evaluation; reports; the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import densharp

SRC = Path(densharp.__file__).parent
LAYERS: list[tuple[str, ...]] = [
    ("densharp", "densharp.errors", "densharp.volume", "densharp.modality"),
    ("densharp.fourier", "densharp.normalisation", "densharp.conditioning", "densharp.resources", "densharp.optional"),
    ("densharp.io", "densharp.filters", "densharp.metrics", "densharp.reflections"),
    ("densharp.simulate", "densharp.corpus"),
    ("densharp.ml",),
    ("densharp.sharpening",),
    ("densharp.evaluate",),
    ("densharp.report",),
    ("densharp.cli", "densharp.__main__"),
]


def layer_of(module: str) -> int:
    if module.count(".") == 1 and module not in {n for names in LAYERS for n in names}:
        raise AssertionError(f"{module} is in no layer; add it to LAYERS")
    best, level = -1, -1
    for i, names in enumerate(LAYERS):
        for n in names:
            if (module == n or module.startswith(n + ".")) and len(n) > best:
                best, level = len(n), i
    return level


def modules() -> dict[str, set[str]]:
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("densharp"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("densharp")}
        out[name] = deps
    return out


def test_no_module_imports_upward():
    bad = []
    for mod, deps in modules().items():
        if mod == "densharp":  # the curated API re-exports verbs lazily
            continue
        for d in deps:
            if layer_of(d) > layer_of(mod):
                bad.append(f"{mod} (layer {layer_of(mod)}) imports {d} (layer {layer_of(d)})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycle_between_top_level_eager_imports():
    graph = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {
            n.module
            for n in tree.body
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("densharp.")
        }
    seen: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> None:
        if seen.get(n) == 1:
            raise AssertionError("import cycle: " + " -> ".join([*stack, n]))
        if seen.get(n) == 2 or n not in graph:
            return
        seen[n] = 1
        for d in graph[n]:
            visit(d, [*stack, n])
        seen[n] = 2

    for n in graph:
        visit(n, [])
