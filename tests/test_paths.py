import json
import sys
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG folders")
def test_the_data_folder_chosen_in_settings_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CADRE_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert data_paths().data == tmp_path / "share" / "Cadre"
    settings = data_paths().settings
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"schema_version": 1, "data_folder": str(tmp_path / "big")}))
    assert data_paths().data == tmp_path / "big"
    settings.write_text("{not json")
    assert data_paths().data == tmp_path / "share" / "Cadre"


def test_the_catalog_reads_user_manifests_from_the_paths_module(cadre_home: Path) -> None:
    """The catalog asks paths.py where the user's manifests are, so CADRE_HOME moves them too."""
    from app.core.catalog import Catalog

    paths = data_paths()
    assert paths.user_manifests.is_relative_to(cadre_home.resolve())
    assert Catalog(paths).user_folder == paths.user_manifests
