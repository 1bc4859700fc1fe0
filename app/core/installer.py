"""Install, add and remove specialists' models: the work behind `cadre pull`, `import` and `rm`.

Every long operation is a job (a generator of progress that honours a cancel token), so the CLI
drives it with a loop and the window runs it on a thread pool with a Cancel button.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.catalog import Catalog, CatalogEntry, InstallState
from app.core.downloads.hub import RemoteFile, describe_remote, hub_endpoint
from app.core.downloads.transfer import PartialFile
from app.core.downloads.verify import download_verified, sha256_of
from app.core.embedded import prepare_model
from app.core.errors import CadreError, DownloadError
from app.core.gguf_header import GGUFHeader, validate_gguf
from app.core.safe_names import check_inside, check_model_file_name, check_repo_id, check_revision
from app.core.storage.model_files import ModelFileRecord, ModelFileStore
from app.core.tasks import CancelToken, Job, Progress
from app.core.units import human_bytes
from app.core.user_manifests import NewSpecialist, manifest_text, write_manifest
from specialists import ModelSource


@dataclass(frozen=True)
class PullResult:
    specialist_id: str
    path: Path
    size_bytes: int
    downloaded: bool  # False when the file was already installed and current
    commit: str = ""


@dataclass(frozen=True)
class RemovalPlan:
    """What `rm` would do, for the user to confirm first."""

    specialist_id: str
    name: str
    files: tuple[Path, ...]  # the model and any partial download
    manifest: Path | None  # the user's manifest, when the specialist itself goes too
    shared_with: tuple[str, ...]  # other specialists that use the same model file
    freed_bytes: int

    @property
    def empty(self) -> bool:
        return not self.files and self.manifest is None

    def describe(self) -> list[str]:
        """The plan in words, for the confirmation the CLI and the window ask for."""
        lines = [f"Remove {self.name}:"]
        lines += [f"  delete {path}" for path in self.files]
        if self.manifest is not None:
            lines.append(f"  unregister the specialist ({self.manifest})")
        if self.freed_bytes:
            lines.append(f"  frees {human_bytes(self.freed_bytes)}")
        if self.shared_with:
            lines.append(f"  also used by: {', '.join(self.shared_with)} (they lose it too)")
        return lines


class ModelInstaller:
    def __init__(self, catalog: Catalog, files: ModelFileStore) -> None:
        self._catalog = catalog
        self._files = files

    def pull(self, specialist_id: str, cancel: CancelToken) -> Job[PullResult]:
        """Download (or finish, or update) a catalog specialist's model."""
        entry = self._catalog.entry(specialist_id)
        source = entry.manifest.model.source
        if source == "pypi":
            path = yield from prepare_model(entry)
            return PullResult(specialist_id, path, path.stat().st_size, downloaded=False)
        if source == "local":
            raise CadreError(
                f"{entry.manifest.name} uses a file on this computer; there is nothing to download.",
                hint=f"Its file: {entry.model_path}",
            )
        return (yield from self._pull_from_hub(specialist_id, entry.manifest.model, cancel))

    def add_from_hub(
        self, new: NewSpecialist, repo: str, filename: str, revision: str, cancel: CancelToken
    ) -> Job[PullResult]:
        """Download any GGUF from the hub and register it as the user's own specialist."""
        new.check()
        check_repo_id(repo)  # before any request: these names become folders on disk
        check_model_file_name(filename)
        check_revision(revision)
        model = ModelSource("huggingface", filename, repo=repo, revision=revision)
        self._check_new_id(new.id, model)
        result = yield from self._pull_from_hub(new.id, model, cancel)
        header = validate_gguf(result.path)
        keys: dict[str, str | int] = {"source": "huggingface", "repo": repo, "file": filename}
        keys |= {"revision": revision, "size_bytes": result.size_bytes}
        write_manifest(self._catalog.user_folder, new.id, manifest_text(new, header, keys))
        self._catalog.reload()
        return result

    def import_file(self, path: Path, new: NewSpecialist) -> CatalogEntry:
        """Register a GGUF the user already has, where it is (it is not copied)."""
        new.check()
        path = path.expanduser().resolve()
        if not path.is_file():
            raise CadreError(f"There is no file {path}.")
        if path.suffix.lower() != ".gguf":
            raise CadreError(f"{path.name} is not a .gguf file.", hint="Cadre runs GGUF models.")
        model = ModelSource("local", path.name, path=str(path))
        self._check_new_id(new.id, model)
        header: GGUFHeader = validate_gguf(path)
        keys: dict[str, str | int] = {"source": "local", "file": path.name, "path": str(path)}
        keys["size_bytes"] = header.file_size
        write_manifest(self._catalog.user_folder, new.id, manifest_text(new, header, keys))
        self._catalog.reload()
        self._files.record_install(ModelFileRecord(str(path), "local", size_bytes=header.file_size))
        return self._catalog.entry(new.id)

    def _check_new_id(self, specialist_id: str, model: ModelSource) -> None:
        if specialist_id not in self._catalog.ids():
            return
        existing = self._catalog.manifest(specialist_id)
        same = self._catalog.path_for(existing.model) == self._catalog.path_for(model)
        if not (same and self._catalog.is_user_manifest(existing)):
            raise CadreError(
                f"There is already a specialist called '{specialist_id}'.",
                hint="Choose another id with --as.",
            )

    def _pull_from_hub(
        self, specialist_id: str, model: ModelSource, cancel: CancelToken
    ) -> Job[PullResult]:
        target = check_inside(self._catalog.models_folder, self._catalog.path_for(model))
        yield Progress(f"Asking {hub_endpoint()} about {model.file}…")
        remote = describe_remote(model.repo, model.file, model.revision)
        if model.sha256 and model.sha256.lower() != remote.sha256:
            raise DownloadError(
                f"{model.file} on the hub is not the file this specialist was made for "
                f"(sha256 {remote.sha256[:12]}…, expected {model.sha256[:12]}…).",
                hint="Update Cadre to get the specialist's new manifest.",
            )
        if target.is_file() and (yield from self._is_current(target, remote, cancel)):
            return PullResult(specialist_id, target, remote.size, False, remote.commit)
        yield from download_verified(remote, target, cancel)
        self._files.record_install(
            ModelFileRecord(
                path=str(target),
                source="huggingface",
                repo=remote.repo,
                filename=remote.filename,
                revision=remote.revision,
                commit_hash=remote.commit,
                sha256=remote.sha256,
                size_bytes=remote.size,
            )
        )
        return PullResult(specialist_id, target, remote.size, True, remote.commit)

    def _is_current(self, target: Path, remote: RemoteFile, cancel: CancelToken) -> Job[bool]:
        """Whether the installed file is the hub's current one (hashing it if we never did)."""
        record = self._files.get(target)
        if record is not None and record.sha256:
            return record.sha256 == remote.sha256 and target.stat().st_size == remote.size
        if target.stat().st_size != remote.size:
            return False
        digest = yield from sha256_of(target, cancel, f"Checking the installed {target.name}")
        return digest == remote.sha256

    def plan_removal(self, specialist_id: str, *, forget: bool = False) -> RemovalPlan:
        """What removing this specialist's model would delete; nothing is deleted yet.

        A file imported from elsewhere is never deleted: removing it unregisters the specialist."""
        entry = self._catalog.entry(specialist_id)
        manifest = entry.manifest
        imported = manifest.model.source == "local"
        if (forget or imported) and not self._catalog.is_user_manifest(manifest):
            raise CadreError(f"{manifest.name} is built in; only its downloaded model can go.")
        files = () if imported else _existing(entry.model_path, PartialFile(entry.model_path))
        others = self._catalog.users_of(entry.model_path)
        shared = tuple(m.name for m in others if m.id != specialist_id) if files else ()
        return RemovalPlan(
            specialist_id=specialist_id,
            name=manifest.name,
            files=files,
            manifest=manifest.origin if (forget or imported) else None,
            shared_with=shared,
            freed_bytes=sum(path.stat().st_size for path in files),
        )

    def remove(self, plan: RemovalPlan) -> None:
        for path in plan.files:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # Windows refuses to delete a file a running model maps
                raise CadreError(
                    f"{path.name} cannot be deleted now: {exc.strerror or exc}",
                    hint="If a chat is using this specialist, switch to another one and try again.",
                ) from exc
            self._files.forget(path)
        if plan.manifest is not None:
            model_path = self._catalog.model_path(self._catalog.manifest(plan.specialist_id))
            plan.manifest.unlink(missing_ok=True)
            self._files.forget(model_path)
            self._catalog.overrides.remove(plan.specialist_id)  # one added again starts afresh
        self._catalog.reload()


def _existing(target: Path, partial: PartialFile) -> tuple[Path, ...]:
    return tuple(path for path in (target, partial.data, partial.note) if path.is_file())


def installed_state(entry: CatalogEntry) -> str:
    """A word for the install state, with "partly downloaded" for a resumable partial file."""
    if entry.state is InstallState.NOT_INSTALLED and PartialFile(entry.model_path).data.is_file():
        return "partly downloaded"
    return entry.state.value
