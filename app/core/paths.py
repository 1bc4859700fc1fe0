"""The one place that decides where Cadre keeps its files.

By default the platform's conventional folders (platformdirs); when ``CADRE_HOME`` is set,
everything lives under that one folder instead (tests, portable installs, several profiles).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from app import APP_NAME

HOME_ENV = "CADRE_HOME"
SETTINGS_FILE = "settings.json"


def resources_dir() -> Path:
    """Read-only files that ship with Cadre (icons, precomputed routing vectors): beside the
    source in a checkout, inside the bundle in a frozen app."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


@dataclass(frozen=True)
class DataPaths:
    """Every folder and file Cadre writes to. Created on first use, never at import time."""

    data: Path
    config: Path
    cache: Path
    logs: Path

    @property
    def models(self) -> Path:
        return self.data / "models"

    @property
    def database(self) -> Path:
        return self.data / "cadre.db"

    @property
    def documents(self) -> Path:
        """Document collections: their database (text, chunks, vectors) and search indexes. Kept
        apart from the conversations, so an index can be rebuilt without touching chats."""
        return self.data / "documents"

    @property
    def documents_database(self) -> Path:
        return self.documents / "documents.db"

    @property
    def user_manifests(self) -> Path:
        """The user's own specialist manifests, one ``<id>.toml`` each (custom pulls and imports
        are written here)."""
        return self.data / "specialists"

    @property
    def specialist_overrides(self) -> Path:
        """The user's changes to a specialist's prompt, sampling and context size, one
        ``<id>.toml`` each: kept beside the manifests, never written into them."""
        return self.data / "specialist-overrides"

    @property
    def settings(self) -> Path:
        return self.config / SETTINGS_FILE

    @property
    def crash_log(self) -> Path:
        return self.logs / "crash.log"

    @property
    def worker_log(self) -> Path:
        return self.logs / "engine-worker.log"

    @property
    def api_token(self) -> Path:
        """The local API's bearer token (``cadre serve``): created on first use, mode 0600."""
        return self.data / "api-token"

    def ensure(self) -> DataPaths:
        for folder in (self.data, self.config, self.cache, self.logs, self.models):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def as_dict(self) -> dict[str, str]:
        names = ("data", "config", "cache", "logs", "models", "database", "documents", "settings")
        return {name: str(getattr(self, name)) for name in names}


def data_paths() -> DataPaths:
    """The paths in force now: re-read each call so tests can point ``CADRE_HOME`` elsewhere."""
    home = os.environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().resolve()
        return DataPaths(
            data=root / "data", config=root / "config", cache=root / "cache", logs=root / "logs"
        )
    dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
    config = Path(dirs.user_config_dir)
    return DataPaths(
        data=chosen_data_folder(config / SETTINGS_FILE) or Path(dirs.user_data_dir),
        config=config,
        cache=Path(dirs.user_cache_dir),
        logs=Path(dirs.user_log_dir),
    )


def chosen_data_folder(settings_file: Path) -> Path | None:
    """The data folder chosen in Settings, read straight from the file (the settings module reads
    it fully later; a bad file here just means the standard folder)."""
    try:
        chosen = json.loads(settings_file.read_text(encoding="utf-8")).get("data_folder")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(chosen).expanduser() if isinstance(chosen, str) and chosen.strip() else None
