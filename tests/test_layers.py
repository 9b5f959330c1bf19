"""The package's layers import one way (import-linter's contracts in pyproject.toml), and the model
record is a leaf: no torch."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from videoswinv2.data.datamodule import KineticsDataModule
from videoswinv2.record import DATAMODULE_VIEW_ARGUMENTS, EvalViews


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` over the package copy in ``root`` (its pyproject.toml beside it)."""
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--no-cache"], cwd=root, env={"PYTHONPATH": str(root)}, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(REPO / "videoswinv2", root / "videoswinv2", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root)
    return root


def test_the_contracts_hold(package_copy: Path) -> None:
    result = _lint_imports(package_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("models/factory.py", "import videoswinv2.training"),  # a lower layer importing a higher one
        ("checkpoints/io.py", "from videoswinv2.models import create_model"),
        ("record.py", "from videoswinv2.checkpoints import io"),
    ],
)
def test_an_import_against_the_layers_breaks_them(package_copy: Path, module: str, line: str) -> None:
    path = package_copy / "videoswinv2" / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n\ndef _late():\n    {line}\n")  # hidden inside a function too
        result = _lint_imports(package_copy)
    finally:
        path.write_text(original)
    assert result.returncode == 1 and "BROKEN" in result.stdout, result.stdout


def test_the_record_is_a_leaf_without_torch() -> None:
    imported = set()
    for name in ("record.py", "errors.py"):
        for node in ast.walk(ast.parse((REPO / "videoswinv2" / name).read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module)
    assert not {m for m in imported if m.split(".")[0] in ("torch", "numpy", "lightning")}
    assert {m for m in imported if m.startswith("videoswinv2")} == {"videoswinv2.errors"}


def test_the_data_module_has_the_records_view_defaults() -> None:
    import inspect

    defaults = inspect.signature(KineticsDataModule).parameters
    for argument, field in DATAMODULE_VIEW_ARGUMENTS.items():
        assert defaults[argument].default == getattr(EvalViews, field), argument


def test_the_architecture_picture_shows_the_imports_of_the_code() -> None:
    from PIL import Image

    spec = importlib.util.spec_from_file_location("import_graph", REPO / "docs" / "import_graph.py")
    import_graph = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(import_graph)
    drawn = Image.open(import_graph.OUT).text["Description"]
    assert drawn == import_graph.edges_text(import_graph.layer_edges()), "run: python docs/import_graph.py"
