"""The Customise… dialog of a specialist's card: shows its values, refuses a mistake in place,
saves an override the catalog uses, and restores the defaults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pytestqt.qtbot import QtBot

from app.core.paths import DataPaths
from app.core.service import CadreService
from tests.conftest import install_specialist, manifest_toml
from tests.tiny_gguf import write_tiny_llama

if TYPE_CHECKING:
    from app.ui.customise_dialog import CustomiseDialog
    from app.ui.specialists_dialog import SpecialistsDialog

PROMPT = "You answer like a lighthouse keeper."


@pytest.fixture
def tiny_service(paths: DataPaths, tiny_model: Path) -> Iterator[CadreService]:
    """A user's specialist 'tiny' whose top_p has more decimals than the form shows."""
    folder = paths.user_manifests
    folder.mkdir(parents=True, exist_ok=True)
    toml = manifest_toml("tiny", tiny_model).replace("[sampling]\n", "[sampling]\ntop_p = 0.875\n")
    (folder / "tiny.toml").write_text(toml)
    service = CadreService(paths)
    yield service
    service.close()


@pytest.fixture
def window(qtbot: QtBot, tiny_service: CadreService) -> Iterator[SpecialistsDialog]:
    from app.ui.model_ops import ModelOps
    from app.ui.specialists_dialog import SpecialistsDialog

    ops = ModelOps(tiny_service)
    dialog = SpecialistsDialog(ops)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: {"tiny", "code"} <= set(dialog.cards))
    qtbot.waitUntil(lambda: dialog.cards["tiny"].status is not None)
    yield dialog
    ops.shutdown()


def click(dialog: CustomiseDialog, which: str) -> None:
    from PySide6.QtWidgets import QDialogButtonBox

    dialog.buttons.button(getattr(QDialogButtonBox.StandardButton, which)).click()


def test_the_form_shows_the_values_and_refuses_a_mistake_in_place(
    window: SpecialistsDialog, paths: DataPaths
) -> None:
    override = paths.specialist_overrides / "tiny.toml"
    card = window.cards["tiny"]
    assert card.customise_button.isVisible() and not card.customised.isVisible()
    assert not window.cards["code"].customise_button.isVisible()  # not installed
    card.customise_button.click()
    dialog = window.customise_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.windowTitle() == "Customise Tiny"
    assert dialog.system_prompt.toPlainText() == "You are a test."
    assert (dialog.context_size.value(), dialog.spins["max_tokens"].value()) == (512, 24)
    click(dialog, "Save")  # nothing changed (top_p shows 0.88 but stands for 0.875)
    assert not dialog.isVisible() and not override.exists()

    dialog = window.open_customise_dialog("tiny")
    dialog.spins["max_tokens"].setValue(600)
    click(dialog, "Save")
    assert dialog.isVisible() and not override.exists()
    assert "Max reply tokens (600) must be less than Context size (512)" in dialog.error.text()
    dialog.system_prompt.setPlainText("  ")
    dialog.spins["max_tokens"].setValue(100)
    click(dialog, "Save")
    assert "System prompt must not be empty" in dialog.error.text()
    click(dialog, "Cancel")
    assert not override.exists()


def test_save_is_used_by_the_catalog_and_restore_defaults_undoes_it(
    qtbot: QtBot, window: SpecialistsDialog, tiny_service: CadreService, paths: DataPaths
) -> None:
    override = paths.specialist_overrides / "tiny.toml"
    card = window.cards["tiny"]
    dialog = window.open_customise_dialog("tiny")
    dialog.system_prompt.setPlainText(PROMPT)
    dialog.context_size.stepBy(1)  # doubles
    dialog.spins["temperature"].setValue(0.5)
    dialog.spins["max_tokens"].setValue(600)
    click(dialog, "Save")
    assert not dialog.isVisible() and override.is_file()
    qtbot.waitUntil(card.customised.isVisible, timeout=10_000)
    manifest = tiny_service.catalog.manifest("tiny")
    assert (manifest.system_prompt, manifest.context_size) == (PROMPT, 1024)
    assert (manifest.sampling.max_tokens, manifest.sampling.temperature) == (600, 0.5)
    assert manifest.sampling.top_p == 0.875  # left alone

    dialog = window.open_customise_dialog("tiny")
    assert dialog.system_prompt.toPlainText() == PROMPT and dialog.context_size.value() == 1024
    click(dialog, "RestoreDefaults")
    assert dialog.system_prompt.toPlainText() == "You are a test."
    assert dialog.context_size.value() == 512
    click(dialog, "Cancel")
    assert override.is_file()  # Cancel keeps the user's values

    dialog = window.open_customise_dialog("tiny")
    click(dialog, "RestoreDefaults")
    click(dialog, "Save")
    assert not override.exists()
    qtbot.waitUntil(lambda: not card.customised.isVisible(), timeout=10_000)
    assert tiny_service.catalog.manifest("tiny") == tiny_service.catalog.defaults("tiny")


def test_a_context_beyond_the_models_training_is_allowed_with_a_warning(
    qtbot: QtBot,
    window: SpecialistsDialog,
    tiny_service: CadreService,
    paths: DataPaths,
    tmp_path: Path,
) -> None:
    """The trained context is read from the model's header off the GUI thread; a size above it
    (512 here, for a model trained on 384) is warned about, not refused."""
    model = write_tiny_llama(tmp_path / "short.gguf", context_length=384)
    install_specialist(paths, "short", model)
    tiny_service.catalog.reload()
    dialog = window.open_customise_dialog("short")
    qtbot.waitUntil(dialog.trained_context.isVisible, timeout=10_000)
    assert dialog.trained_context.text() == "384 tokens"
    assert dialog.context_warning.isVisible()
    assert "512 tokens, more than the 384 it was trained on" in dialog.context_warning.text()
    dialog.context_size.stepBy(-1)  # 256
    assert not dialog.context_warning.isVisible()
    click(dialog, "RestoreDefaults")
    assert dialog.context_warning.isVisible()
    click(dialog, "Save")  # allowed
    assert not dialog.isVisible()

    dialog = window.open_customise_dialog("tiny")  # trained on 1024, runs with 512
    qtbot.waitUntil(dialog.trained_context.isVisible, timeout=10_000)
    assert dialog.trained_context.text() == "1024 tokens"
    assert not dialog.context_warning.isVisible()


def test_the_settings_cap_is_what_counts_against_the_trained_context(
    qtbot: QtBot, tiny_service: CadreService
) -> None:
    from app.ui.customise_dialog import CustomiseDialog

    manifest = tiny_service.catalog.manifest("tiny")  # asks for 512
    capped = CustomiseDialog(manifest, manifest, lambda _: None, context_cap=256)
    unknown = CustomiseDialog(manifest, manifest, lambda _: None)
    for dialog in (capped, unknown):
        qtbot.addWidget(dialog)
        dialog.show()
    capped.show_trained_context(384)  # runs with 256: within
    assert capped.trained_context.isVisible() and not capped.context_warning.isVisible()
    capped.context_size.setValue(4096)  # still 256
    assert not capped.context_warning.isVisible()
    unknown.show_trained_context(None)  # not downloaded, or the header does not say
    assert not unknown.trained_context.isVisible() and not unknown.context_warning.isVisible()
    unknown.show_trained_context(384)
    assert unknown.context_warning.isVisible()
