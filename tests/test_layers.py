"""Layering: ``tandem.core``, ``tandem.protocol`` and ``tandem.endpoints`` import no web framework.

Two checks, because each misses what the other catches: the AST scan sees an
import that is never executed (inside a function, under ``TYPE_CHECKING``), the
import check sees a framework pulled in indirectly through a third-party module.
Each check is also run on a planted violation, so a checker that finds nothing
because it looks at nothing fails too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tandem

FRAMEWORKS = frozenset({"flask", "quart", "werkzeug", "hypercorn", "gunicorn", "asgiref"})
PACKAGE_DIR = Path(tandem.__file__).resolve().parent
LAYERS = ("core", "protocol", "endpoints")


def framework_imports(root: Path) -> list[str]:
    """Every import of a framework in the .py files under ``root``, as ``file:line: name``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute | ast.Name)
                and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
                in {"import_module", "__import__"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names = [node.args[0].value]
            for name in names:
                if name.split(".")[0] in FRAMEWORKS:
                    found.append(f"{path}:{getattr(node, 'lineno', 0)}: {name}")
    return found


# Imports every module of the given packages, then prints the frameworks that got loaded.
_IMPORT_ALL = """
import importlib, json, pkgutil, sys
frameworks = {frameworks!r}
errors = []
for package_name in {packages!r}:
    package = importlib.import_module(package_name)
    for info in pkgutil.walk_packages(package.__path__, package_name + "."):
        importlib.import_module(info.name)
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & frameworks)
print(json.dumps({{"loaded": loaded, "modules": sorted(sys.modules)}}))
"""


def loaded_frameworks(
    packages: list[str], *, extra_path: Path | None = None
) -> tuple[list[str], list[str]]:
    """Import every module of ``packages`` in a fresh interpreter; return (frameworks, modules)."""
    script = _IMPORT_ALL.format(frameworks=set(FRAMEWORKS), packages=packages)
    env_path = [str(extra_path)] if extra_path else []
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path[:0] = {env_path!r}\n" + script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return data["loaded"], data["modules"]


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_source_imports_no_framework(layer: str) -> None:
    root = PACKAGE_DIR / layer
    assert len(list(root.rglob("*.py"))) >= 5, f"nothing to scan under {root}"
    assert framework_imports(root) == []


def test_importing_the_layers_loads_no_framework() -> None:
    loaded, modules = loaded_frameworks([f"tandem.{layer}" for layer in LAYERS])
    # The walk really imported the layers' modules...
    for module in (
        "tandem.core.store",
        "tandem.core.runtime",
        "tandem.protocol.publish",
        "tandem.endpoints.table",
        "tandem.endpoints.openapi",
    ):
        assert module in modules
    # ...and no framework came with them.
    assert loaded == []


# --- the checkers catch a planted violation ------------------------------------------------


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A package ``fakecore`` shaped like a layer, one module of which imports flask."""
    package = tmp_path / "fakecore"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("from __future__ import annotations\n")
    (package / "clean.py").write_text("import json\n")
    (package / "inner" / "__init__.py").write_text("")
    (package / "inner" / "sneaky.py").write_text(
        textwrap.dedent(
            """
            from __future__ import annotations

            def later() -> None:
                import flask  # only when called
            """
        )
    )
    (package / "inner" / "direct.py").write_text("from werkzeug.datastructures import Headers\n")
    return tmp_path


def test_ast_scan_catches_a_planted_import(planted: Path) -> None:
    found = framework_imports(planted / "fakecore")
    assert any(entry.endswith("sneaky.py:5: flask") for entry in found), found
    assert any(entry.endswith("direct.py:1: werkzeug.datastructures") for entry in found), found
    assert len(found) == 2


@pytest.mark.parametrize(
    "line",
    [
        "import flask",
        "import quart.app",
        "from hypercorn.config import Config",
        "import gunicorn as g",
        "from asgiref import sync",
        "import importlib\nimportlib.import_module('werkzeug')",
    ],
)
def test_ast_scan_catches_every_form(tmp_path: Path, line: str) -> None:
    (tmp_path / "mod.py").write_text(line + "\n")
    assert len(framework_imports(tmp_path)) == 1


def test_ast_scan_ignores_relative_and_lookalike_imports(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("from . import flask\nimport flaskish\nimport quartz\n")
    assert framework_imports(tmp_path) == []


def test_import_check_catches_a_planted_import(planted: Path) -> None:
    loaded, modules = loaded_frameworks(["fakecore"], extra_path=planted)
    assert "fakecore.inner.direct" in modules
    assert loaded == ["werkzeug"]
