from pathlib import Path

import pytest

from app.core.paths import data_paths


def test_cadre_home_puts_everything_under_one_folder(cadre_home: Path) -> None:
    paths = data_paths().ensure()
    for folder in (paths.data, paths.config, paths.cache, paths.logs, paths.models):
        assert folder.is_dir()
        assert folder.is_relative_to(cadre_home.resolve())
    assert paths.database.parent == paths.data


def test_without_cadre_home_uses_platform_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CADRE_HOME")
    paths = data_paths()
    assert "Cadre" in str(paths.data)
    assert "Cadre" in str(paths.config)


def test_as_dict_names_every_path(cadre_home: Path) -> None:
    described = data_paths().as_dict()
    assert set(described) >= {"data", "config", "cache", "logs", "models", "database"}
