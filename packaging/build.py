"""Build the installable app for this OS: ``dist/Cadre/`` (and ``dist/Cadre.app`` on macOS).

Renders the icons from ``resources/icons/cadre.svg``, runs PyInstaller on ``cadre.spec``, adds the
Linux desktop entry, prints the bundle's size by component, then runs the frozen app's
``--self-test`` (offscreen, in a fresh data folder: the first-run path) and fails if it fails.

Usage: python packaging/build.py [--clean] [--skip-self-test]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bundle_plan as plan

BUILD = plan.ROOT / "build"
DIST = plan.ROOT / "dist"
ICONS = BUILD / "icons"
SPEC = Path(__file__).resolve().with_name("cadre.spec")
SELF_TEST_TIMEOUT_S = 300
DESKTOP_ENTRY = """[Desktop Entry]
Type=Application
Name={name}
GenericName=AI assistant
Comment=A team of small, private AI specialists on your own computer
Exec={exec_path} %F
Icon={icon}
Terminal=false
Categories=Office;Utility;
StartupWMClass={name}
"""


def bundle_dir() -> Path:
    from app import APP_NAME

    return DIST / APP_NAME


def executable() -> Path:
    return bundle_dir() / ("cadre.exe" if sys.platform == "win32" else "cadre")


def render_icons() -> None:
    """The SVG drawn at 256 px into PNG, ICO and ICNS (Qt's own image plugins write all three)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(plan.ROOT / "resources" / "icons" / "cadre.svg"))
    image = QImage(256, 256, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    ICONS.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "ico", "icns"):
        target = ICONS / f"cadre.{suffix}"
        if not image.save(str(target)):
            raise SystemExit(f"Qt could not write {target}")
    del app


def run_pyinstaller(clean: bool) -> None:
    command = [sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm"]
    command += ["--distpath", str(DIST), "--workpath", str(BUILD / "pyinstaller")]
    if clean:
        command.append("--clean")
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=plan.ROOT)
    print(f"PyInstaller took {time.perf_counter() - started:.0f} s")


def write_desktop_entry() -> None:
    """Linux: a .desktop file and the PNG icon beside the app (an AppImage or a package copies
    them into place; see packaging/README.md)."""
    if not sys.platform.startswith("linux"):
        return
    from app import APP_NAME

    folder = bundle_dir()
    (folder / "cadre.png").write_bytes((ICONS / "cadre.png").read_bytes())
    entry = DESKTOP_ENTRY.format(name=APP_NAME, exec_path="cadre", icon="cadre")
    (folder / "cadre.desktop").write_text(entry, encoding="utf-8")


def self_test() -> None:
    """The frozen app opens its window offscreen, routes one message, answers it in the engine
    worker (a spawn child of the frozen executable) and exits 0."""
    home = Path(tempfile.mkdtemp(prefix="cadre-frozen-"))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CADRE_HOME": str(home)}
    started = time.perf_counter()
    result = subprocess.run(
        [str(executable()), "--self-test", "--screenshot", str(home / "self-test.png")],
        env=env,
        timeout=SELF_TEST_TIMEOUT_S,
        check=False,
    )
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"The frozen app's self-test failed (exit {result.returncode}).")
    print(f"frozen self-test passed in {took:.1f} s (screenshot: {home / 'self-test.png'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", action="store_true", help="rebuild PyInstaller's caches")
    parser.add_argument("--skip-self-test", action="store_true")
    args = parser.parse_args()
    render_icons()
    run_pyinstaller(args.clean)
    write_desktop_entry()
    print(f"\n{bundle_dir()} by component:")
    print(plan.format_sizes(plan.size_by_component(bundle_dir())))
    if not args.skip_self_test:
        self_test()


if __name__ == "__main__":
    main()
