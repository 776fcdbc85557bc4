"""umi_data's folders follow the pipeline: no import circle anywhere in the package (lazy imports
inside functions included), the top level holds only the folders and the few modules that are
entry points, and every `umi_data` name the README, the docs and the examples show imports."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "umi_data"
#: the only modules beside the folders: the package, `python -m umi_data`, the typed core, the
#: JSON schemas of the core and the sources, and `python -m umi_data.data_cards`
TOP_MODULES = {"__init__", "__main__", "core", "schema_docs", "data_cards"}
FOLDERS = {"sources", "synth", "rendering", "building", "corpus", "exports", "toolcache", "plumbing", "schemas", "samples"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Module -> the umi_data modules it imports, at any depth of its code (lazy imports too)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            # a module importing its own package's __init__ is not a circle of the code
            graph[name].update(t for t in targets if t in modules and t != name and not name.startswith(t + "."))
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_import_circle_in_umi_data() -> None:
    graph = import_graph()
    assert "umi_data.building.shards" in graph and "umi_data.building.build" in graph
    assert "umi_data.building.build" not in graph["umi_data.building.shards"]
    assert circles(graph) == []


def test_circle_detection_sees_a_lazy_import() -> None:
    """The check itself: a circle closed by an import inside a function is found."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_the_top_level_is_the_pipeline() -> None:
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert modules == TOP_MODULES, "a new umi_data module belongs in the folder of its pipeline stage"
    assert folders == FOLDERS
    for folder in FOLDERS - {"schemas", "samples"}:
        init = PACKAGE / folder / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} says what the folder holds"


DOTTED = re.compile(r"\bumi_data(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
FROM_IMPORT = re.compile(r"^\s*from (umi_data(?:\.[A-Za-z_][A-Za-z0-9_]*)*) import \(?([A-Za-z0-9_, \n]+?)\)?\s*(?:#.*)?$", re.M)


def shown_names() -> set[str]:
    """Every dotted `umi_data...` name and every `from umi_data... import x` in the README, the
    docs pages and the examples."""
    texts = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *sorted((REPO / "examples").glob("*.py"))]
    names: set[str] = set()
    for path in texts:
        text = path.read_text()
        text = re.sub(r"^:::\s+\S+", "", text, flags=re.M)  # reference pages: mkdocstrings checks those itself
        names.update(name.rstrip(".") for name in DOTTED.findall(text))
        for module, imported in FROM_IMPORT.findall(text):
            names.update(f"{module}.{part.split(' as ')[0].strip()}" for part in imported.split(",") if part.strip())
    return {name for name in names if not name.endswith((".md", ".py", ".json", ".png"))}


def resolve(name: str) -> object:
    """Import the longest module prefix of `name`, then get the rest as attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            value = getattr(value, attribute)
        return value
    raise ModuleNotFoundError(name)


def test_every_name_the_docs_show_imports() -> None:
    names = shown_names()
    assert {"umi_data.building.build.build_corpus", "umi_data.corpus.duck.connect", "umi_data.load_corpus"} <= names
    broken = []
    for name in sorted(names):
        try:
            resolve(name)
        except (ImportError, AttributeError) as exc:
            broken.append(f"{name}: {exc}")
    assert broken == []


def test_the_package_api_is_unchanged() -> None:
    import umi_data

    for name in umi_data.__all__:
        assert getattr(umi_data, name) is not None
    assert set(umi_data.__all__) >= {"Trajectory", "load_corpus", "read_trajectories", "outcome_of", "check_turn_order"}


@pytest.mark.parametrize("name", ["umi_data.building.build", "umi_data.corpus.layout", "umi_data.exports.chat_export"])
def test_a_missing_name_is_reported(name: str) -> None:
    """The resolver fails on a name that is not there (so the docs check can fail)."""
    with pytest.raises(AttributeError):
        resolve(name + ".no_such_name")
