"""The specialist catalog: every manifest (built-in and the user's own) with its install state."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from app.core.errors import CadreError, ModelNotInstalledError
from app.core.paths import DataPaths
from app.core.safe_names import check_model_file_name, check_repo_id, check_revision
from app.core.specialist_overrides import FileState, OverrideStore, toml_files_state
from specialists import SpecialistManifest, builtin_manifest_dir, load_manifests
from specialists.loader import ManifestError, ModelSource

_SAFE_PART = re.compile(r"[^A-Za-z0-9._-]")


class InstallState(Enum):
    INSTALLED = "installed"
    EMBEDDED = "embedded"  # ships with Cadre (a Python package); made ready on first use
    NOT_INSTALLED = "not installed"


@dataclass(frozen=True)
class CatalogEntry:
    manifest: SpecialistManifest
    state: InstallState
    model_path: Path

    @property
    def ready(self) -> bool:
        return self.state is not InstallState.NOT_INSTALLED


def _safe(part: str) -> str:
    """A single path component that cannot climb out of the models folder."""
    cleaned = _SAFE_PART.sub("_", part).strip(".")
    return cleaned or "_"


class Catalog:
    """The manifests as the user has them: each with its override, if any, laid over it (so the
    window, the CLI and the API all answer with the user's prompt and sampling)."""

    def __init__(self, paths: DataPaths) -> None:
        self._paths = paths
        self.overrides = OverrideStore(paths.specialist_overrides)
        self._defaults: dict[str, SpecialistManifest] = {}
        self._manifests: dict[str, SpecialistManifest] = {}
        self._seen: tuple[tuple[FileState, ...], ...] = ()
        self.reload()

    @property
    def user_folder(self) -> Path:
        """Where the user's own manifests live (custom pulls and imports are written here)."""
        return self._paths.user_manifests

    @property
    def models_folder(self) -> Path:
        return self._paths.models

    def reload(self) -> None:
        self._seen = self._folders_state()  # before reading: a change meanwhile is not missed
        try:
            manifests = load_manifests(builtin_manifest_dir(), self.user_folder)
            for manifest in manifests.values():
                _check_hub_names(manifest)
        except (ManifestError, CadreError) as exc:
            raise CadreError(
                f"A specialist manifest is invalid: {exc}",
                hint=f"Fix or remove the file in {self.user_folder}.",
            ) from exc
        self._defaults = manifests
        self._manifests = self.overrides.apply(manifests)

    def refresh(self) -> bool:
        """Reload if the user's manifests or overrides changed on disk since the last load: another
        Cadre (a `cadre pull --repo`, `import` or `rm --forget`, or the window's Customise… while
        `cadre serve` runs) added, changed or removed one. Costs two folder listings; returns
        whether it reloaded."""
        if self._folders_state() == self._seen:
            return False
        self.reload()
        return True

    def _folders_state(self) -> tuple[tuple[FileState, ...], ...]:
        return toml_files_state(self.user_folder), self.overrides.state()

    def is_user_manifest(self, manifest: SpecialistManifest) -> bool:
        return manifest.origin is not None and manifest.origin.parent == self.user_folder

    def users_of(self, path: Path) -> list[SpecialistManifest]:
        """Every specialist whose model is the file at ``path`` (two may share one download)."""
        return [m for m in self._manifests.values() if self.model_path(m) == path]

    def defaults(self, specialist_id: str) -> SpecialistManifest:
        """The specialist as its manifest has it, without the user's override."""
        self.manifest(specialist_id)  # an unknown id: the same clear error
        return self._defaults[specialist_id]

    def is_customised(self, specialist_id: str) -> bool:
        return self._manifests.get(specialist_id) is not self._defaults.get(specialist_id)

    def ids(self) -> list[str]:
        return list(self._manifests)

    def manifests(self) -> list[SpecialistManifest]:
        return list(self._manifests.values())

    def manifest(self, specialist_id: str) -> SpecialistManifest:
        try:
            return self._manifests[specialist_id]
        except KeyError:
            known = ", ".join(self._manifests)
            raise CadreError(
                f"There is no specialist '{specialist_id}'.", hint=f"Known: {known}."
            ) from None

    def model_path(self, manifest: SpecialistManifest) -> Path:
        return self.path_for(manifest.model)

    def path_for(self, model: ModelSource) -> Path:
        """Where the GGUF lives. Keyed by source, not by specialist, so two specialists that share
        one model file share one download."""
        if model.source == "local":
            return Path(model.path).expanduser()
        if model.source == "pypi":
            return self._paths.models / "pypi" / _safe(model.package) / _safe(model.file)
        owner, _, name = model.repo.partition("/")
        return self._paths.models / "hf" / _safe(owner) / _safe(name) / _safe(model.file)

    def entry(self, specialist_id: str) -> CatalogEntry:
        manifest = self.manifest(specialist_id)
        path = self.model_path(manifest)
        if path.is_file():
            state = InstallState.INSTALLED
        elif manifest.model.source == "pypi" and _package_present(manifest.model.package):
            state = InstallState.EMBEDDED
        else:
            state = InstallState.NOT_INSTALLED
        return CatalogEntry(manifest, state, path)

    def entries(self) -> list[CatalogEntry]:
        return [self.entry(specialist_id) for specialist_id in self._manifests]

    def ready(self) -> list[CatalogEntry]:
        return [entry for entry in self.entries() if entry.ready]

    def require_ready(self, specialist_id: str) -> CatalogEntry:
        entry = self.entry(specialist_id)
        if not entry.ready:
            raise ModelNotInstalledError(
                f"The {entry.manifest.name} specialist is not installed yet.",
                hint=f"Download it with: cadre pull {specialist_id}",
            )
        return entry


def _check_hub_names(manifest: SpecialistManifest) -> None:
    """A hub model's names become folders in the models folder: refuse any that could climb out
    of it (they would be made harmless by :func:`_safe` anyway, but silently)."""
    model = manifest.model
    if model.source != "huggingface":
        return
    where = manifest.origin.name if manifest.origin else manifest.id
    try:
        check_repo_id(model.repo)
        check_model_file_name(model.file)
        check_revision(model.revision)
    except CadreError as exc:
        raise CadreError(f"{where}: {exc.message}") from exc


def _package_present(package: str) -> bool:
    return importlib.util.find_spec(package.replace("-", "_")) is not None
