"""The package's layers (docs/architecture.md): imports run one way, runtime code never imports the tools,
there are no import cycles, and the repository speaks of the product, not of how it was made.

Every ``import`` statement counts, also those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: layer of each top-level part of the package, lowest first; a module may import its own layer and
#: the layers below it, never one above
LAYERS: dict[str, int] = {
    "errors": 0,
    "_validate": 0,
    "_files": 0,
    "_csv": 0,
    "_native": 0,
    "_aliases": 0,
    "__init__": 0,
    "__main__": 8,
    "scoring": 1,
    "io": 2,
    "stages": 3,
    "qc": 3,
    "pipeline": 4,
    "api": 5,
    "service": 6,
    "validation": 6,
    "cli": 7,
    "synth": 9,
    "bench": 9,
    "demo": 9,  # tools: nothing at a runtime layer imports them
}
TOOLS = {"synth", "bench", "demo"}
#: the command-line module that starts the tools (``her2fast demo``, ``bench``, ``synth``, ``train-epithelium``)
TOOL_COMMANDS = {"her2fast.cli.tools"}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, root: Path, modules: set[str]) -> set[str]:
    """Absolute her2fast module names imported by the file (``from x import y`` counts ``x.y`` when that
    is a module of the package, else ``x``)."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "her2fast")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "her2fast":
                continue
            for a in node.names:
                sub = f"{mod}.{a.name}"
                found.add(sub if sub in modules else mod)
    return {m for m in found if m != name and m in modules}


def _graph(root: Path) -> dict[str, set[str]]:
    files = sorted((root / "her2fast").rglob("*.py"))
    modules = {_module_name(p, root) for p in files} | {"her2fast._native"}
    return {_module_name(p, root): _imports(p, root, modules) for p in files}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _wrong_imports(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for mod, deps in graph.items():
        if _part(mod) in TOOLS or mod in TOOL_COMMANDS:
            continue
        here = LAYERS[_part(mod)]
        for dep in deps:
            if _part(dep) in TOOLS:
                wrong.append(f"{mod} imports the tool {dep}")
            elif LAYERS[_part(dep)] > here:
                wrong.append(f"{mod} (layer {here}) imports {dep} (layer {LAYERS[_part(dep)]})")
    return sorted(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    # a package's __init__ re-exporting its own modules (parent <-> child) is not a cycle between parts
    return [
        " -> ".join(c)
        for c in cycles
        if not all(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(c, c[1:]))
    ]


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(m) for m in _graph(ROOT)}
    assert parts <= set(LAYERS), parts - set(LAYERS)


def test_imports_run_one_way():
    assert not _wrong_imports(_graph(ROOT)), "\n".join(_wrong_imports(_graph(ROOT)))


def test_no_import_cycles():
    assert not _cycles(_graph(ROOT)), "\n".join(_cycles(_graph(ROOT)))


def test_the_checks_see_a_wrong_import_and_a_cycle(tmp_path):
    """The checker itself, on a made-up package: a stage importing the service layer, a stage importing a
    tool, and two stages importing each other are all found."""
    pkg = tmp_path / "her2fast"
    for folder in ("stages", "service", "synth"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "service" / "batch.py").write_text("from ..stages import a\n", encoding="utf-8")
    (pkg / "synth" / "tile.py").write_text("", encoding="utf-8")
    (pkg / "stages" / "a.py").write_text("from ..service import batch\nfrom . import b\n", encoding="utf-8")
    (pkg / "stages" / "b.py").write_text("from .a import x\nimport her2fast.synth.tile\n", encoding="utf-8")
    graph = _graph(tmp_path)
    assert _wrong_imports(graph) == [
        "her2fast.stages.a (layer 3) imports her2fast.service.batch (layer 6)",
        "her2fast.stages.b imports the tool her2fast.synth.tile",
    ]
    assert "her2fast.stages.a -> her2fast.stages.b -> her2fast.stages.a" in _cycles(graph)


def _training_imports(root: Path) -> list[str]:
    """Runtime modules (every part of the package but the tools) that import the training code (``training``).

    The tools may: the reference pipeline of ``her2fast bench pipeline`` runs the PyTorch model of ``training/``.
    """
    hits = []
    for path in sorted((root / "her2fast").rglob("*.py")):
        mod = _module_name(path, root)
        if _part(mod) in TOOLS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            if any(n.split(".")[0] == "training" for n in names):
                hits.append(mod)
                break
    return hits


def test_runtime_never_imports_the_training_code():
    assert not _training_imports(ROOT), _training_imports(ROOT)


def test_the_training_check_sees_a_runtime_import(tmp_path):
    """The checker itself, on a made-up package: a stage importing the training code inside a function is
    found; a tool doing the same is not."""
    pkg = tmp_path / "her2fast"
    for folder in ("stages", "bench"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "stages" / "a.py").write_text("def f():\n    import training.model\n", encoding="utf-8")
    (pkg / "stages" / "b.py").write_text("from .a import f\n", encoding="utf-8")
    (pkg / "bench" / "reference.py").write_text("from training import model\n", encoding="utf-8")
    assert _training_imports(tmp_path) == ["her2fast.stages.a"]


#: words that tell the story of how the work was done instead of what the product is
_HISTORY = r"session [0-9]|[a-z]+th session|(first|second|third) session|issue [0-9]+|issue #[0-9]+"


def test_the_repository_speaks_of_the_product_only():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        [
            "git",
            "grep",
            "-n",
            "-i",
            "-E",
            _HISTORY,
            "--",
            "*.py",
            "*.md",
            "*.cpp",
            "*.hpp",
            "*.toml",
            "*.sh",
            "*.txt",
            "*.cfg",
            "*.yaml",
            ":!tests/test_architecture.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and not out.stdout, out.stdout[:2000]


def test_the_version_is_written_once():
    from importlib.metadata import version

    import her2fast

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    # the [project] table, up to the next table ([tool.setuptools.dynamic] names where the version is read)
    project = re.search(r"^\[project\]\n(.*?)(?=^\[)", text, re.M | re.S).group(1)
    assert 'dynamic = ["version"]' in project and not re.search(r"^version\s*=", project, re.M)
    assert version("her2fast") == her2fast.__version__
