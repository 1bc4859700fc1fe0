"""Importing a GGUF the user has, removing models, and validation before anything is loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.core.catalog import InstallState
from app.core.downloads.transfer import PartialFile
from app.core.errors import CadreError
from app.core.gguf_header import GGUFFormatError
from app.core.service import CadreService
from app.core.tasks import run_job
from app.core.user_manifests import NewSpecialist


@pytest.fixture
def own_model(tmp_path: Path, tiny_chat_model: Path) -> Path:
    target = tmp_path / "My Model (v2).gguf"
    shutil.copyfile(tiny_chat_model, target)
    return target


def test_an_imported_file_becomes_a_ready_specialist_in_place(
    service: CadreService, own_model: Path
) -> None:
    entry = service.installer.import_file(own_model, NewSpecialist("mine", "code", "My coder"))
    assert entry.state is InstallState.INSTALLED
    assert entry.model_path == own_model.resolve()
    assert (entry.manifest.name, entry.manifest.domain) == ("My coder", "code")
    assert entry.manifest.system_prompt
    reloaded = CadreService()
    try:
        assert reloaded.catalog.entry("mine").model_path == own_model.resolve()
    finally:
        reloaded.close()


def test_an_imported_specialist_answers(service: CadreService, own_model: Path) -> None:
    service.installer.import_file(own_model, NewSpecialist("mine", "general"))
    info = run_job(service.load_specialist("mine"))
    assert info.has_chat_template
    footprint = service.model_files.footprint(own_model.resolve())
    assert footprint is not None and footprint.ram_bytes >= 0
    assert service.fit_advice(service.catalog.entry("mine")).need.basis == "measured"


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (NewSpecialist("Bad Id", "general"), "cannot be a specialist id"),
        (NewSpecialist("mine", "cooking"), "not a domain"),
        (NewSpecialist("general", "general"), "already a specialist called 'general'"),
    ],
)
def test_import_refuses_bad_choices(
    service: CadreService, own_model: Path, new: NewSpecialist, message: str
) -> None:
    with pytest.raises(CadreError, match=message):
        service.installer.import_file(own_model, new)


def test_a_damaged_file_is_refused_and_nothing_is_registered(
    service: CadreService, own_model: Path
) -> None:
    data = own_model.read_bytes()
    own_model.write_bytes(data[: len(data) - 1000])
    with pytest.raises(GGUFFormatError, match="outside the file"):
        service.installer.import_file(own_model, NewSpecialist("mine", "general"))
    assert "mine" not in service.catalog.ids()
    assert not (service.catalog.user_folder / "mine.toml").exists()


def test_a_file_damaged_after_import_never_reaches_llama_cpp(
    service: CadreService, own_model: Path
) -> None:
    service.installer.import_file(own_model, NewSpecialist("mine", "general"))
    with own_model.open("r+b") as handle:
        handle.write(b"GGUF\x03\x00\x00\x00" + (2**40).to_bytes(8, "little"))
    with pytest.raises(GGUFFormatError):
        run_job(service.load_specialist("mine"))
    assert service.engine.loaded is None


def test_removing_an_import_unregisters_it_and_keeps_the_file(
    service: CadreService, own_model: Path
) -> None:
    service.installer.import_file(own_model, NewSpecialist("mine", "general"))
    plan = service.installer.plan_removal("mine")
    assert plan.files == () and plan.manifest is not None
    service.installer.remove(plan)
    assert "mine" not in service.catalog.ids()
    assert own_model.is_file()


def test_removing_a_download_deletes_it_and_its_partial_and_names_who_shares_it(
    service: CadreService, tiny_model: Path
) -> None:
    general = service.catalog.entry("general")
    general.model_path.parent.mkdir(parents=True)
    shutil.copyfile(tiny_model, general.model_path)
    partial = PartialFile(general.model_path)
    partial.data.write_bytes(b"half")
    plan = service.installer.plan_removal("general")
    assert set(plan.files) == {general.model_path, partial.data}
    assert plan.shared_with == ("Legal",)  # the legal specialist uses the same download
    assert plan.freed_bytes == tiny_model.stat().st_size + 4
    assert plan.manifest is None
    service.installer.remove(plan)
    assert service.catalog.entry("general").state is InstallState.NOT_INSTALLED
    assert service.catalog.entry("legal").state is InstallState.NOT_INSTALLED
    assert "general" in service.catalog.ids()


def test_built_in_specialists_cannot_be_forgotten(service: CadreService) -> None:
    with pytest.raises(CadreError, match="built in"):
        service.installer.plan_removal("general", forget=True)
    assert service.installer.plan_removal("code").empty
