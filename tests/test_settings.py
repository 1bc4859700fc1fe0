"""Settings on disk: defaults, round trip, atomic writes, migrations, hand-edited and corrupt files,
files from a newer Cadre, and the helpers the core uses."""

from __future__ import annotations

import json
import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from app.core import settings as settings_module
from app.core.hardware import physical_cores
from app.core.paths import DataPaths
from app.core.settings import (
    CHECKS,
    GPU_LAYERS_ALL,
    GPU_LAYERS_AUTO,
    MIGRATIONS,
    SCHEMA_VERSION,
    NewerSettingsError,
    Settings,
    data_folder,
    effective_context,
    effective_threads,
    gpu_layers_policy,
    load_settings,
    ram_budget_bytes,
    read_settings,
    save_settings,
    usable_ram,
)
from tests.conftest import CUSTOM_SETTINGS


@pytest.fixture
def path(paths: DataPaths) -> Path:
    return paths.settings


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def on_disk(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_every_setting_has_a_check_and_every_version_a_migration() -> None:
    assert set(CHECKS) == {field.name for field in fields(Settings)}
    assert len(MIGRATIONS) == SCHEMA_VERSION


def test_a_missing_file_gives_defaults_and_writes_nothing(path: Path) -> None:
    loaded = read_settings(path)
    assert loaded.settings == Settings() == load_settings(path)
    assert loaded.warnings == () and loaded.file_version is None and not loaded.newer
    assert not path.exists()


def test_defaults_are_the_documented_ones() -> None:
    defaults = Settings()
    assert (defaults.data_folder, defaults.threads, defaults.context_size) == (None, None, None)
    assert (defaults.gpu_offload, defaults.theme, defaults.default_specialist) == (
        "auto",
        "system",
        "auto",
    )
    assert defaults.ram_budget_gb is None
    assert (defaults.api_enabled, defaults.api_port) == (False, 8765)


def test_round_trip(path: Path) -> None:
    save_settings(path, CUSTOM_SETTINGS)
    loaded = read_settings(path)
    assert loaded.settings == CUSTOM_SETTINGS
    assert loaded.warnings == ()
    assert loaded.file_version == SCHEMA_VERSION
    assert on_disk(path)["schema_version"] == SCHEMA_VERSION


def test_save_leaves_no_temporary_files(path: Path) -> None:
    save_settings(path, CUSTOM_SETTINGS)
    save_settings(path, Settings())
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_settings(path, CUSTOM_SETTINGS)

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(settings_module.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        save_settings(path, Settings())
    monkeypatch.undo()
    assert load_settings(path) == CUSTOM_SETTINGS
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]


def test_a_version_0_file_is_migrated(path: Path) -> None:
    write(path, {"n_threads": 6, "dark_mode": True, "gpu_offload": "off"})
    loaded = read_settings(path)
    assert loaded.file_version == 0
    assert loaded.warnings == ()
    assert loaded.settings == Settings(threads=6, theme="dark", gpu_offload="off")
    save_settings(path, loaded.settings)
    saved = on_disk(path)
    assert saved["schema_version"] == SCHEMA_VERSION
    assert "n_threads" not in saved and "dark_mode" not in saved
    assert (saved["threads"], saved["theme"]) == (6, "dark")


@pytest.mark.parametrize(("dark", "theme"), [(False, "light"), (None, "system")])
def test_version_0_dark_mode_values(path: Path, dark: bool | None, theme: str) -> None:
    write(path, {"dark_mode": dark})
    assert load_settings(path).theme == theme


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("threads", 0),
        ("threads", 257),
        ("threads", "4"),
        ("threads", True),
        ("threads", 2.5),
        ("context_size", 100),
        ("context_size", 200_000),
        ("api_port", 80),
        ("api_port", 70_000),
        ("theme", "purple"),
        ("gpu_offload", "some"),
        ("ram_budget_gb", -1),
        ("ram_budget_gb", "lots"),
        ("api_enabled", "yes"),
        ("data_folder", "relative/folder"),
        ("data_folder", 42),
        ("default_specialist", "Not An Id"),
        ("default_specialist", None),
    ],
)
def test_an_invalid_value_falls_back_to_its_default_with_a_warning(
    path: Path, key: str, value: Any
) -> None:
    write(path, {"schema_version": 1, "theme": "dark", key: value})
    loaded = read_settings(path)
    assert getattr(loaded.settings, key) == getattr(Settings(), key)
    if key != "theme":
        assert loaded.settings.theme == "dark"  # the valid ones are kept
    assert len(loaded.warnings) == 1
    assert key in loaded.warnings[0] and json.dumps(value) in loaded.warnings[0]


def test_lenient_forms_are_accepted_quietly(path: Path) -> None:
    write(path, {"schema_version": 1, "ram_budget_gb": 8, "data_folder": "", "threads": None})
    loaded = read_settings(path)
    assert loaded.warnings == ()
    assert loaded.settings.ram_budget_gb == 8.0 and isinstance(loaded.settings.ram_budget_gb, float)
    assert loaded.settings.data_folder is None


def test_unknown_keys_are_reported_and_kept_on_save(path: Path) -> None:
    write(path, {"schema_version": 1, "threads": 2, "theem": "dark", "plugin": {"x": 1}})
    loaded = read_settings(path)
    assert loaded.settings.threads == 2
    assert any("theem" in w and "plugin" in w for w in loaded.warnings)
    save_settings(path, replace(loaded.settings, threads=4))
    saved = on_disk(path)
    assert saved["threads"] == 4 and saved["theem"] == "dark" and saved["plugin"] == {"x": 1}


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe\x00garbage", b""])
def test_a_corrupt_file_is_kept_aside_and_defaults_are_used(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    loaded = read_settings(path)
    assert loaded.settings == Settings()
    assert not path.exists()
    kept = list(path.parent.glob("settings.json.bad-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == content
    assert len(loaded.warnings) == 1 and kept[0].name in loaded.warnings[0]


def test_two_corrupt_files_in_one_second_both_survive(path: Path) -> None:
    for content in ("{one", "{two"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        read_settings(path)
    kept = sorted(p.read_text() for p in path.parent.glob("settings.json.bad-*"))
    assert kept == ["{one", "{two"]


def test_saving_over_a_file_corrupted_meanwhile_keeps_it_aside(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{half")
    save_settings(path, CUSTOM_SETTINGS)
    assert load_settings(path) == CUSTOM_SETTINGS
    assert [p.read_text() for p in path.parent.glob("settings.json.bad-*")] == ["{half"]


def test_a_newer_file_is_read_as_far_as_understood(path: Path) -> None:
    write(path, {"schema_version": 2, "threads": 3, "theme": "dark", "sync": {"on": True}})
    loaded = read_settings(path)
    assert loaded.newer and loaded.file_version == 2
    assert loaded.settings == Settings(threads=3, theme="dark")
    assert len(loaded.warnings) == 1 and "newer" in loaded.warnings[0]


def test_a_newer_file_is_not_overwritten_without_consent(path: Path) -> None:
    newer = {"schema_version": 2, "threads": 3, "sync": {"on": True}}
    write(path, newer)
    with pytest.raises(NewerSettingsError) as raised:
        save_settings(path, CUSTOM_SETTINGS)
    assert raised.value.version == 2
    assert on_disk(path) == newer


def test_consent_replaces_a_newer_file_and_keeps_a_copy(path: Path) -> None:
    newer = {"schema_version": 2, "threads": 3, "sync": {"on": True}}
    write(path, newer)
    save_settings(path, CUSTOM_SETTINGS, overwrite_newer=True)
    saved = on_disk(path)
    assert saved["schema_version"] == SCHEMA_VERSION and "sync" not in saved
    assert load_settings(path) == CUSTOM_SETTINGS
    copies = list(path.parent.glob("settings.json.v2-*"))
    assert len(copies) == 1 and on_disk(copies[0]) == newer


def test_a_nonsense_schema_version_is_read_as_current(path: Path) -> None:
    write(path, {"schema_version": "one", "threads": 5})
    loaded = read_settings(path)
    assert loaded.settings.threads == 5
    assert loaded.file_version == SCHEMA_VERSION
    assert any("schema_version" in w for w in loaded.warnings)


def test_an_unreadable_path_gives_defaults(path: Path) -> None:
    path.mkdir(parents=True)  # a folder where the file should be
    loaded = read_settings(path)
    assert loaded.settings == Settings()
    assert len(loaded.warnings) == 1
    assert path.is_dir()  # left alone: it is not a corrupt file


def test_effective_threads() -> None:
    assert effective_threads(Settings()) == physical_cores()
    assert effective_threads(Settings(threads=3)) == 3


def test_effective_context_caps_the_manifest() -> None:
    assert effective_context(Settings(), 4096) == 4096
    assert effective_context(Settings(context_size=2048), 4096) == 2048
    assert effective_context(Settings(context_size=8192), 4096) == 4096


def test_gpu_layers_policy() -> None:
    assert gpu_layers_policy(Settings()) == GPU_LAYERS_AUTO == -1
    assert gpu_layers_policy(Settings(gpu_offload="off")) == 0
    assert gpu_layers_policy(Settings(gpu_offload="max")) == GPU_LAYERS_ALL
    assert GPU_LAYERS_ALL > 200  # more blocks than any model Cadre runs


def test_ram_budget() -> None:
    assert ram_budget_bytes(Settings()) is None
    assert ram_budget_bytes(Settings(ram_budget_gb=1.5)) == 1_500_000_000
    assert usable_ram(Settings(), 8_000_000_000) == 8_000_000_000
    assert usable_ram(Settings(ram_budget_gb=2.0), 8_000_000_000) == 2_000_000_000
    assert usable_ram(Settings(ram_budget_gb=16.0), 8_000_000_000) == 8_000_000_000


def test_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert data_folder(Settings()) is None
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_folder(Settings(data_folder="~/Cadre")) == tmp_path / "Cadre"
    write(tmp_path / "s.json", {"schema_version": 1, "data_folder": "~/Cadre"})
    assert load_settings(tmp_path / "s.json").data_folder == "~/Cadre"  # stored as written


def test_saved_file_is_readable_json_with_every_setting(path: Path) -> None:
    save_settings(path, Settings())
    saved = on_disk(path)
    assert set(saved) == {"schema_version"} | {field.name for field in fields(Settings)}
    assert os.path.getsize(path) < 1000
