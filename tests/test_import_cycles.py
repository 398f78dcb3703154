"""No import inside a function hides a cycle between lmcore's modules: with every such import
moved to the top of its module, every module still imports on its own. (An import inside a
function may stay for a heavy or optional dependency, never to dodge a cycle.)"""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IMPORT_EACH = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "lmcore" or m.startswith("lmcore.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed.append(f"{name}: {exc}")
print("\\n".join(failed))
"""


def lift_function_imports(path: Path) -> int:
    """Move the one-line ``from .x import y`` statements inside ``path``'s functions to the line
    after its last top-level import; returns how many moved."""
    source = path.read_text()
    tree = ast.parse(source)
    inner = [node for function in ast.walk(tree) if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(function)
             if isinstance(node, ast.ImportFrom) and node.level > 0 and node.lineno == node.end_lineno]
    top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    if not inner or not top:
        return 0
    lines = source.splitlines(keepends=True)
    moved = sorted({lines[node.lineno - 1].strip() + "\n" for node in inner})
    for node in inner:
        lines[node.lineno - 1] = ""
    after = max(node.end_lineno for node in top)
    path.write_text("".join(lines[:after] + moved + lines[after:]))
    return len(inner)


def test_lifting_a_function_level_import_moves_it_to_the_top(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\n\ndef f():\n    from .x import y\n    return y\n")
    assert lift_function_imports(module) == 1
    assert module.read_text() == "import os\nfrom .x import y\n\n\ndef f():\n    return y\n"


def test_no_function_level_import_hides_a_cycle(tmp_path):
    shutil.copytree(ROOT / "lmcore", tmp_path / "lmcore", ignore=shutil.ignore_patterns("__pycache__"))
    moved = sum(lift_function_imports(p) for p in (tmp_path / "lmcore").rglob("*.py"))
    assert moved > 0  # the check looks at something
    names = sorted(".".join(p.relative_to(tmp_path).with_suffix("").parts).removesuffix(".__init__")
                   for p in (tmp_path / "lmcore").rglob("*.py"))
    done = subprocess.run([sys.executable, "-c", IMPORT_EACH, *names], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={"PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1",
                                            "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", "imports that fail once moved to the top (a cycle):\n" + done.stdout
