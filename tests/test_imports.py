"""Import structure: only the Ray edge imports ray at module top, no import cycles, and the
``merge`` command loads none of the heavy libraries it does not use."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import soup_search
from tests.helpers import make_candidates

PACKAGE = Path(soup_search.__file__).parent
OBJECTIVES = PACKAGE.parent / "objectives"  # installed as soup_search.objectives
RAY_ALLOWED = ("soup_search.engine", "soup_search.search", "soup_search.cli",
               "soup_search.service.jobs")  # the service's Ray edge: the job submission SDK
NOT_FOR_MERGE = ("ray", "optuna", "transformers", "pandas", "matplotlib")


def modules() -> dict[str, Path]:
    """Every soup_search module name -> its file."""
    found = {}
    for root, prefix in ((PACKAGE, "soup_search"), (OBJECTIVES, "soup_search.objectives")):
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([prefix, *parts])] = path
    return found


def top_level_imports(path: Path, name: str, type_checking: bool = False) -> list[str]:
    """Modules imported by statements at module level (inside module-level ``if``/``try``
    blocks too; ``if TYPE_CHECKING:`` blocks only with ``type_checking``), absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[str] = []

    def visit(body) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                out.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                out.append(base)
                out.extend(f"{base}.{alias.name}" for alias in node.names)  # submodules by name
            elif isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if type_checking or "TYPE_CHECKING" not in test:
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return out


def test_only_the_ray_edge_imports_ray_at_module_top():
    offenders = []
    for name, path in modules().items():
        if name.startswith(RAY_ALLOWED):
            continue
        ray = [m for m in top_level_imports(path, name) if m == "ray" or m.startswith("ray.")]
        if ray:
            offenders.append(f"{name} imports {ray[0]}")
    assert offenders == [], "; ".join(offenders)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes, or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> the soup_search modules it imports at module level, annotations-only
    (``TYPE_CHECKING``) imports included: a cycle through them is a cycle of the design."""
    mods = modules()
    return {name: {m for m in top_level_imports(path, name, type_checking=True) if m in mods and m != name}
            for name, path in mods.items()}


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles_between_soup_search_modules():
    graph = import_graph()
    assert "soup_search.merge.plan" in graph["soup_search.merge.recipe"]  # the graph sees top-level imports
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_merge_command_loads_no_ray_optuna_transformers_pandas_or_matplotlib(tmp_path):
    make_candidates(tmp_path, n=2)
    (tmp_path / "soup.yaml").write_text(
        "models:\n  - {model: m0, parameters: {weight: 0.6}}\n  - {model: m1, parameters: {weight: 0.4}}\n"
        "merge_method: linear\n")
    code = (
        "import sys\n"
        "from soup_search.cli import main\n"
        "try:\n"
        f"    main(['merge', {str(tmp_path / 'soup.yaml')!r}, {str(tmp_path / 'out')!r}, '--quiet'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        f"print('LOADED:', *sorted({{m.split('.')[0] for m in sys.modules}} & {set(NOT_FOR_MERGE)!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "model.safetensors").is_file()
    loaded = done.stdout.strip().splitlines()[-1]
    assert loaded == "LOADED:", f"soup-search merge imported {loaded.removeprefix('LOADED:').strip()}"


def test_a_trial_process_imports_neither_torch_nor_transformers():
    """A search trial validates recipes and hands refs around; only the actors compute on tensors.
    A process that receives an actor handle imports the module of the actor's class, so those
    modules are light too. (Importing torch cost each of a run's trial processes 1.4 s of its start.)"""
    code = ("import sys\nimport soup_search.search.trial, soup_search.engine.shard_actor, soup_search.engine.scorer_actors\n"
            "print('LOADED:', *sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'safetensors'}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "LOADED:", done.stdout
