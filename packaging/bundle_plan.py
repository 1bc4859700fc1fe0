"""What goes into the frozen app, derived from the code and the installed distributions.

Nothing here is a hand-kept list of modules or data files that could drift: the hidden imports are
every module of Cadre's own packages (the CLI resolves its commands by name), the data packages are
the ones the built-in manifests and the embedder name, the excluded modules are those only the
``dev`` extra brings in and the Qt bindings no code imports. The curated parts are short: files
inside dependencies that the app never reads (headers, test binaries) and the build-time packages
nothing imports at run time, each checked by the frozen self-test and smoke test. PyInstaller-free,
so the unit tests and ``build.py`` can use it too.
"""

from __future__ import annotations

import ast
import fnmatch
import pkgutil
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DISTRIBUTION = "cadre-desktop"
OWN_PACKAGES = ("app", "specialists")
# Files inside dependencies that Cadre never reads: C/C++ headers, type stubs, torch's own test
# binaries, test models and test-only libraries, and the protobuf compiler. Matched against bundle
# paths. (torch/bin/torch_shm_manager must stay: ``import torch`` checks that it exists.)
TRIM_PATTERNS = (
    "torch/include/*",
    "torch/test/*",
    "torch/bin/test_*",
    "torch/bin/*StoreTest",
    "torch/bin/protoc*",
    "torch/bin/*.pt",
    "torch/bin/*.ptl",
    "torch/bin/upgrader_models/*",
    "torch/lib/lib*test*.so*",
    "torch/lib/libbackend_with_compiler.so",
    "torch/lib/libaoti_custom_ops.so",
    "torch/testing/_internal/*",
    "*.pyi",
    "*/__pycache__/*",
)
# Required by torch's metadata for building C++ extensions, which Cadre never does; never imported
# at run time, but once bundled, PyInstaller's runtime hook imports it at every start (+0.3 s).
NEVER_IMPORTED = ("setuptools", "pkg_resources", "_distutils_hack", "distutils")
TOP_LEVEL_LIBS = "(shared libraries)"


def own_modules() -> list[str]:
    """Every module of Cadre's packages, from the source files (some folders are namespace
    packages, which pkgutil's walk skips)."""
    names: set[str] = set()
    for package in OWN_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def top_level_modules(distribution: str) -> list[str]:
    """The importable top-level names a distribution installs."""
    dist = metadata.distribution(distribution)
    listed = dist.read_text("top_level.txt")
    if listed:
        return sorted({line.strip() for line in listed.splitlines() if line.strip()})
    names = set()
    for file in dist.files or ():
        first = file.parts[0]
        if first.endswith((".dist-info", ".data")) or first in ("..", "bin"):
            continue
        name = first.split(".")[0] if len(file.parts) == 1 else first
        if name.isidentifier():
            names.add(name)
    return sorted(names)


def requirement_closure(distribution: str, extras: Iterable[str] = ()) -> set[str]:
    """Normalised names of a distribution and everything it requires, installed ones only."""
    seen: set[str] = set()
    pending = [(distribution, tuple(extras))]
    while pending:
        name, wanted = pending.pop()
        key = _normalise(name)
        if key in seen:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(key)
        for text in requires:
            req = Requirement(text)
            if _applies(req, wanted):
                pending.append((req.name, tuple(req.extras)))
    return seen


def _applies(req: Requirement, extras: tuple[str, ...]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": extra}) for extra in (*extras, ""))


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def embedded_model_packages() -> list[str]:
    """Top-level modules that carry the built-in specialists' models (the starter's package and
    the chunk packages it requires), from the built-in manifests."""
    from specialists import load_manifests

    names: set[str] = set()
    for manifest in load_manifests().values():
        if manifest.model.source == "pypi":
            for dist in requirement_closure(manifest.model.package):
                names.update(top_level_modules(dist))
    return sorted(names)


def data_packages() -> list[str]:
    """Packages whose non-Python files the app reads: manifests, models, the embedder."""
    from app.core.embedder import MODEL_PACKAGE

    return sorted({"specialists", MODEL_PACKAGE, *embedded_model_packages()})


def dev_only_modules() -> list[str]:
    """Top-level modules brought in only by the ``dev`` extra (test tools, linters, the bundler
    itself): kept out even where an optional import in a dependency would pull them in."""
    runtime = requirement_closure(DISTRIBUTION)
    dev = requirement_closure(DISTRIBUTION, extras=("dev",)) - runtime
    dev |= requirement_closure("pyinstaller") - runtime
    names: set[str] = set()
    for dist in dev:
        names.update(top_level_modules(dist))
    return sorted(names - _runtime_top_levels(runtime))


def _runtime_top_levels(runtime: set[str]) -> set[str]:
    names: set[str] = set()
    for dist in runtime:
        names.update(top_level_modules(dist))
    return names


def qt_modules_used(sources: Iterable[Path]) -> set[str]:
    """``PySide6.X`` modules imported anywhere in the given source files."""
    used: set[str] = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                used.update(_qt_name(node.module))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    used.update(_qt_name(alias.name))
    return used


def _qt_name(module: str) -> Iterator[str]:
    parts = module.split(".")
    if parts[0] == "PySide6" and len(parts) > 1:
        yield ".".join(parts[:2])


def excluded_modules() -> list[str]:
    """Everything the bundle leaves out: dev tools, unused Qt bindings, build-time packages."""
    return sorted({*dev_only_modules(), *unused_qt_modules(), *NEVER_IMPORTED})


def unused_qt_modules() -> list[str]:
    """Every Qt binding installed that no source file of Cadre imports."""
    import PySide6

    installed = {f"PySide6.{info.name}" for info in pkgutil.iter_modules(PySide6.__path__)}
    used = qt_modules_used((ROOT / "app").rglob("*.py"))
    return sorted(name for name in installed - used if name.split(".")[1].startswith("Qt"))


def trimmed(dest: str) -> bool:
    """Whether a file at this bundle path is one the app never reads."""
    path = dest.replace("\\", "/")
    return any(fnmatch.fnmatch(path, pattern) for pattern in TRIM_PATTERNS)


def size_by_component(bundle: Path) -> list[tuple[str, int]]:
    """Bytes per top-level component of a onedir bundle, largest first. Loose libraries at the
    top of the bundle's internal folder are counted together."""
    internal = bundle / "_internal"
    sizes: Counter[str] = Counter()
    for path in bundle.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        if path.is_relative_to(internal):
            parts = path.relative_to(internal).parts
            key = parts[0] if len(parts) > 1 else TOP_LEVEL_LIBS
        else:
            key = path.relative_to(bundle).parts[0]
        sizes[key] += path.stat().st_size
    return sorted(sizes.items(), key=lambda item: (-item[1], item[0]))


def format_sizes(sizes: list[tuple[str, int]], rows: int = 18) -> str:
    """The size table: the largest components, the rest summed, and the total."""
    total = sum(size for _, size in sizes)
    shown, rest = sizes[:rows], sizes[rows:]
    lines = [f"{size / 1e6:9.1f} MB  {name}" for name, size in shown]
    if rest:
        lines.append(f"{sum(s for _, s in rest) / 1e6:9.1f} MB  ({len(rest)} others)")
    lines.append(f"{total / 1e6:9.1f} MB  total")
    return "\n".join(lines)
