"""Names that become paths cannot escape the data folder: hub repository ids, file names and
revisions (from the command line or a manifest), specialist ids, and symbolic links planted where
Cadre writes its models (downloads, and the built-in model assembled from its package). Each is
refused with a clear message before anything is fetched or written, and nothing outside the data
folder changes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.catalog import Catalog, CatalogEntry, InstallState
from app.core.downloads.transfer import PartialFile
from app.core.embedded import prepare_model
from app.core.errors import CadreError
from app.core.paths import DataPaths
from app.core.service import CadreService
from app.core.tasks import CancelToken, run_job
from app.core.user_manifests import NewSpecialist, write_manifest
from specialists import ModelSource
from tests.conftest import manifest_toml
from tests.fakehub import FakeHub, HubFile

REPO, FILE = "acme/tiny-GGUF", "tiny-q8.gguf"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges")

BAD_REPOS = [
    "../../x",
    "acme/..",
    "../acme",
    "/etc/passwd",
    "acme",
    "acme/tiny/extra",
    "acme\\..\\..\\x",
    "C:/models",
    "acme/tiny\x00GGUF",
    "acme/.hidden",
    "acme/a--b",
    "",
]
BAD_FILES = [
    "../../x.gguf",
    "..\\..\\x.gguf",
    "/tmp/x.gguf",
    "C:\\x.gguf",
    "sub/x.gguf",
    "x\x00.gguf",
    ".gguf",
    "..gguf",
    ".hidden.gguf",
    "x.gguf\n",
    "model.bin",
    "a" * 300 + ".gguf",
]
BAD_REVISIONS = ["../main", "main/../../x", "main\x00", "", "-rf", "refs/pr/"]


@pytest.fixture
def service(paths: DataPaths) -> Iterator[CadreService]:
    svc = CadreService(paths)
    yield svc
    svc.close()


def pull(service: CadreService, repo: str = REPO, file: str = FILE, revision: str = "main") -> None:
    new = NewSpecialist("tiny-hub", "general")
    run_job(service.installer.add_from_hub(new, repo, file, revision, CancelToken()))


def outside_files(paths: DataPaths, tmp_path: Path) -> set[Path]:
    """Every file under the test's temporary folder that is not in the data folder."""
    home = paths.data.parent
    return {p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(home)}


@pytest.mark.parametrize("repo", BAD_REPOS)
def test_a_repo_id_that_could_climb_out_is_refused_before_any_request(
    service: CadreService, repo: str
) -> None:
    # No fake hub here: a request would go to huggingface.co, which the no_internet guard refuses
    # and reports, so the refusal must come first.
    with pytest.raises(CadreError, match="not a hub repository id"):
        pull(service, repo=repo)
    assert "tiny-hub" not in service.catalog.ids()


@pytest.mark.parametrize("file", BAD_FILES)
def test_a_file_name_that_could_climb_out_is_refused_before_any_request(
    service: CadreService, file: str
) -> None:
    with pytest.raises(CadreError, match="cannot be a model file name"):
        pull(service, file=file)


@pytest.mark.parametrize("revision", BAD_REVISIONS)
def test_a_strange_revision_is_refused(service: CadreService, revision: str) -> None:
    with pytest.raises(CadreError, match="not a revision"):
        pull(service, revision=revision)


@pytest.mark.parametrize("specialist_id", ["../x", "a/b", "X", "-x", "x" * 65, "x\x00", ""])
def test_a_specialist_id_that_could_climb_out_is_refused(
    service: CadreService, paths: DataPaths, tmp_path: Path, specialist_id: str
) -> None:
    with pytest.raises(CadreError, match="cannot be a specialist id"):
        NewSpecialist(specialist_id, "general").check()
    before = outside_files(paths, tmp_path)
    text = manifest_toml("x", tmp_path / "x.gguf")
    with pytest.raises(CadreError, match="cannot be a specialist id"):
        write_manifest(paths.user_manifests, specialist_id, text)
    assert outside_files(paths, tmp_path) == before


@pytest.mark.parametrize(
    ("key", "value"),
    [("repo", "../../../../tmp"), ("file", "..gguf"), ("revision", "../../x")],
)
def test_a_hand_written_manifest_with_a_climbing_name_is_refused_by_name(
    paths: DataPaths, key: str, value: str
) -> None:
    model = {"source": "huggingface", "repo": REPO, "file": FILE, "revision": "main"}
    model[key] = value
    text = manifest_toml("planted", Path("unused.gguf")).split("[model]")[0]
    text += "[model]\n" + "".join(f'{k} = "{v}"\n' for k, v in model.items())
    folder = paths.user_manifests
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "planted.toml").write_text(text)
    with pytest.raises(CadreError, match=r"planted\.toml") as refused:
        Catalog(paths)
    assert "Fix or remove" in str(refused.value)


def test_hub_paths_stay_in_the_models_folder(paths: DataPaths) -> None:
    catalog = Catalog(paths)
    for repo, file in [("a/b", "c.gguf"), ("TheBloke/Mistral-7B-v0.1-GGUF", "m.Q4_K_M.gguf")]:
        path = catalog.path_for(ModelSource("huggingface", file, repo=repo))
        assert path.is_relative_to(paths.models) and path.name == file


@posix_only
def test_a_linked_partial_file_is_refused_and_its_target_untouched(
    hub: FakeHub, service: CadreService, tiny_model: Path, tmp_path: Path
) -> None:
    hub.add(HubFile(REPO, FILE, tiny_model.read_bytes()))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = service.catalog.path_for(ModelSource("huggingface", FILE, repo=REPO))
    target.parent.mkdir(parents=True)
    for planted in (PartialFile(target).data, PartialFile(target).note, target):
        planted.symlink_to(victim)
        with pytest.raises(CadreError, match="symbolic link"):
            pull(service)
        assert victim.read_text() == "precious"
        planted.unlink()
    pull(service)  # with the links gone, the same pull works
    assert service.catalog.entry("tiny-hub").ready


@posix_only
def test_a_linked_folder_leading_out_of_the_models_folder_is_refused(
    hub: FakeHub, service: CadreService, paths: DataPaths, tiny_model: Path, tmp_path: Path
) -> None:
    hub.add(HubFile(REPO, FILE, tiny_model.read_bytes()))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (paths.models / "hf").mkdir(parents=True)
    (paths.models / "hf" / "acme").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(CadreError, match="leads outside"):
        pull(service)
    assert list(elsewhere.rglob("*")) == []
    assert hub.requests == []  # refused before asking the hub


@posix_only
def test_a_models_folder_moved_elsewhere_by_a_link_still_works(
    hub: FakeHub, paths: DataPaths, tiny_model: Path, tmp_path: Path
) -> None:
    bigger_disk = tmp_path / "bigger-disk"
    bigger_disk.mkdir()
    paths.models.rmdir()
    paths.models.symlink_to(bigger_disk, target_is_directory=True)
    hub.add(HubFile(REPO, FILE, tiny_model.read_bytes()))
    service = CadreService(paths)
    try:
        pull(service)
        assert service.catalog.entry("tiny-hub").ready
    finally:
        service.close()
    assert list(bigger_disk.rglob(FILE))


@posix_only
def test_removing_a_model_that_is_a_link_removes_the_link_only(
    service: CadreService, tiny_model: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.gguf"
    outside.write_bytes(tiny_model.read_bytes())
    entry = service.catalog.entry("code")  # a built-in hub specialist
    entry.model_path.parent.mkdir(parents=True)
    entry.model_path.symlink_to(outside)
    installer = service.installer
    installer.remove(installer.plan_removal("code"))
    assert not entry.model_path.is_symlink()
    assert outside.read_bytes() == tiny_model.read_bytes()


@pytest.fixture
def starter(paths: DataPaths) -> CatalogEntry:
    """The built-in starter, not yet assembled from its package."""
    entry = Catalog(paths).entry("starter")
    assert entry.state is InstallState.EMBEDDED
    assert entry.model_path.parents[2] == paths.models  # where prepare_model's check starts
    return entry


@posix_only
def test_a_linked_partial_file_of_the_built_in_model_is_refused(
    starter: CatalogEntry, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    starter.model_path.parent.mkdir(parents=True)
    partial = starter.model_path.with_name(starter.model_path.name + ".partial")
    for planted in (partial, starter.model_path):
        planted.symlink_to(victim if planted == partial else tmp_path / "nowhere.gguf")
        with pytest.raises(CadreError, match="symbolic link"):
            run_job(prepare_model(starter))
        assert victim.read_text() == "precious"  # not overwritten by the assembled model
        planted.unlink()


@posix_only
def test_a_linked_folder_leading_the_built_in_model_out_is_refused(
    starter: CatalogEntry, paths: DataPaths, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (paths.models / "pypi").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(CadreError, match="leads outside"):
        run_job(prepare_model(starter))
    assert list(elsewhere.rglob("*")) == []
