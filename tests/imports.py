"""The import rules of the tree, read from the source (lazy imports included) by `ast`.

`check` returns one line per broken rule, so a test shows them all at once. The rules:
- the layers import one way: ``bot -> engine <- training``; only ``bot.cli`` may reach into
  ``training`` (the one ``chorus`` command), lazily;
- inside a layer, a package imports only packages of a lower rank (`RANKS`); two packages of the
  same rank never import each other (``engine.models`` and ``engine.band``, ``bot.store`` and
  ``bot.queues``);
- ``discord`` only under ``bot.ui``; ``torch`` never in ``bot``;
- no module imports another module's ``_private`` name; no import circles;
- no module over `MAX_MODULE_LINES` lines, no function over `MAX_FUNCTION_LINES`.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

LAYERS = ("engine", "bot", "training")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
# A module's unit is the longest prefix found here; a unit imports only units of a lower rank.
RANKS = {
    "engine.errors": 0, "engine.version": 0,
    "engine.settings": 1, "engine.music": 1,
    "engine.models": 2, "engine.band": 2,
    "engine.media": 3, "engine.formats": 3,
    "engine.compose": 4,
    "engine.cli": 5, "engine": 5,
    "bot.errors": 0, "bot.memory": 0,
    "bot.settings": 1,
    "bot.store": 2, "bot.queues": 2,
    "bot.service": 3, "bot.preflight": 3,
    "bot.ui": 4,
    "bot.cli": 5, "bot": 5,
    "training.corpus": 1,
    "training.fit": 2,
    "training.evaluation": 3,
    "training.cli": 4, "training": 4,
}


def read_tree(root: Path) -> dict[str, str]:
    """{dotted module name: source} of every module under the layers' folders."""
    out = {}
    for layer in LAYERS:
        for path in sorted((root / layer).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path.read_text()
    return out


def unit_of(module: str) -> str:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in RANKS:
            return ".".join(parts[:i])
    return parts[0]


def imports_of(module: str, tree: ast.Module, known: Mapping[str, str]) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import statement, at any depth."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                pkg = module.split(".")[: -node.level] if module in known else module.split(".")
                base = ".".join(pkg + [node.module])
            plain = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    found.append((sub, [], node.lineno))
                else:
                    plain.append(alias.name)
            if plain or not node.names:
                found.append((base, plain, node.lineno))
    return found


def _layer_rules(module: str, target: str) -> str | None:
    mine, theirs = module.split(".")[0], target.split(".")[0]
    if mine == "engine" and theirs in ("bot", "training", "discord"):
        return "the engine never imports the bot, training or discord"
    if mine == "training" and theirs in ("bot", "discord"):
        return "training never imports the bot or discord"
    if mine == "bot" and theirs == "training" and module != "bot.cli":
        return "only bot.cli reaches into training"
    if mine == "bot" and theirs == "torch":
        return "the bot never imports torch"
    if theirs == "discord" and not (module == "bot.ui" or module.startswith("bot.ui.")):
        return "only bot.ui imports discord"
    return None


def _unit_rule(module: str, target: str) -> str | None:
    mine, theirs = unit_of(module), unit_of(target)
    if mine == theirs or mine.split(".")[0] != theirs.split(".")[0] or mine not in RANKS:
        return None
    if RANKS[theirs] >= RANKS[mine]:
        return f"{mine} (rank {RANKS[mine]}) may not import {theirs} (rank {RANKS[theirs]})"
    return None


def long_parts(module: str, source: str, tree: ast.Module) -> list[str]:
    bad = []
    lines = source.count("\n") + (0 if source.endswith("\n") else 1)
    if lines > MAX_MODULE_LINES:
        bad.append(f"{module}: {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                bad.append(f"{module}.{node.name}: {n} lines (at most {MAX_FUNCTION_LINES})")
    return bad


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@lru_cache(maxsize=1024)
def _parsed(source: str) -> ast.Module:
    return ast.parse(source)


def check(modules: Mapping[str, str]) -> list[str]:
    """Every broken rule in ``modules`` ({dotted name: source}), one line each."""
    problems: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, source in modules.items():
        tree = _parsed(source)
        problems += long_parts(module, source, tree)
        for target, names, line in imports_of(module, tree, modules):
            where = f"{module}:{line} imports {target}"
            for rule in (_layer_rules(module, target), _unit_rule(module, target)):
                if rule:
                    problems.append(f"{where}: {rule}")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target.split(".")[0] in LAYERS:
                problems.append(f"{where}: takes private name(s) {', '.join(private)}")
            if target in modules and target != module:
                graph[module].add(target)
    problems += [f"import circle: {' <-> '.join(c)}" for c in cycles(graph)]
    return problems
