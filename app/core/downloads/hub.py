"""What the Hugging Face hub says about one file: its size, its sha256, and the commit it comes from.

Everything goes through huggingface_hub, so ``HF_ENDPOINT`` (a mirror, or the tests' fake hub), the
user's saved token (gated repos) and proxies work as they do for every other hub client. The endpoint
is read when a download starts, never at import. Nothing here runs unless the user asked to download.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

from app.core.errors import DownloadError

DEFAULT_ENDPOINT = "https://huggingface.co"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
METADATA_RETRY_DELAYS_S = (0.5, 2.0)
_RETRY_HINT = "Check your internet connection and run the same command again: it resumes."


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_requested() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return value in {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class RemoteFile:
    """One file at one commit. ``url`` is pinned to the commit, so a resumed download can never
    splice bytes of two different versions together."""

    repo: str
    filename: str
    revision: str
    commit: str
    size: int
    sha256: str
    url: str

    @property
    def page_url(self) -> str:
        return f"{hub_endpoint()}/{self.repo}"


def describe_remote(repo: str, filename: str, revision: str = "main") -> RemoteFile:
    """Ask the hub about ``filename`` in ``repo``; raise :class:`DownloadError` in plain words."""
    if offline_requested():
        raise DownloadError(
            "Downloads are switched off because HF_HUB_OFFLINE is set.",
            hint="Unset HF_HUB_OFFLINE to download, or register a file you have with `cadre import`.",
        )
    from huggingface_hub import hf_hub_url

    endpoint = hub_endpoint()
    url = hf_hub_url(repo, filename, revision=revision, endpoint=endpoint)
    try:
        metadata = _metadata_with_retries(url, endpoint)
        if not metadata.commit_hash or metadata.size is None:
            raise DownloadError(
                f"The hub at {endpoint} did not describe {filename} fully (no size or commit).",
                hint="If HF_ENDPOINT points to a mirror, check that it is a Hugging Face mirror.",
            )
        sha256 = (metadata.etag or "").lower()
        if not _SHA256.match(sha256):
            sha256 = _lfs_sha256(repo, filename, metadata.commit_hash, endpoint)
    except Exception as exc:
        raise explain_hub_error(exc, repo, filename, revision) from exc
    return RemoteFile(
        repo=repo,
        filename=filename,
        revision=revision,
        commit=metadata.commit_hash,
        size=metadata.size,
        sha256=sha256,
        url=hf_hub_url(repo, filename, revision=metadata.commit_hash, endpoint=endpoint),
    )


def _metadata_with_retries(url: str, endpoint: str) -> Any:
    """huggingface_hub's own retries take ~25 s to give up when there is no network at all; a
    couple of quick ones cover a flaky link and still answer an offline user within seconds."""
    import httpx2
    from huggingface_hub import get_hf_file_metadata

    for delay in METADATA_RETRY_DELAYS_S:
        try:
            return get_hf_file_metadata(url, endpoint=endpoint)
        except httpx2.TransportError:
            time.sleep(delay)
    return get_hf_file_metadata(url, endpoint=endpoint)


def _lfs_sha256(repo: str, filename: str, commit: str, endpoint: str) -> str:
    """The sha256 from the repo's file listing, for servers whose ETag is not the LFS sha256."""
    from huggingface_hub import HfApi

    for info in HfApi(endpoint=endpoint).get_paths_info(repo, [filename], revision=commit):
        lfs: Any = getattr(info, "lfs", None)
        if getattr(info, "path", None) == filename and lfs is not None:
            return str(lfs.sha256).lower()
    raise DownloadError(
        f"The hub published no sha256 for {filename}, so Cadre cannot verify it.",
        hint="Cadre only installs model files it can verify. Download it yourself and use "
        "`cadre import` if you trust it.",
    )


def explain_hub_error(exc: Exception, repo: str, filename: str, revision: str) -> Exception:
    """Turn what huggingface_hub or the network raised into a message a user can act on.

    Returns the exception unchanged when it is not a hub or network failure (that is a bug)."""
    import httpx2
    from huggingface_hub import errors as hub_errors

    if isinstance(exc, DownloadError):
        return exc
    page = f"{hub_endpoint()}/{repo}"
    explained: list[tuple[type[BaseException], str, str]] = [
        (
            hub_errors.OfflineModeIsEnabled,
            "Downloads are switched off because HF_HUB_OFFLINE is set.",
            "Unset HF_HUB_OFFLINE to download.",
        ),
        (
            hub_errors.GatedRepoError,
            f"{repo} is a gated repository: its authors ask you to accept their terms first.",
            f"Accept them at {page}, then log in with `hf auth login` and pull again.",
        ),
        (
            hub_errors.RepositoryNotFoundError,
            f"The repository {repo} was not found on {hub_endpoint()}.",
            "Check its spelling (OWNER/NAME). A private repository needs `hf auth login`.",
        ),
        (
            hub_errors.RevisionNotFoundError,
            f"{repo} has no revision '{revision}'.",
            f"See {page}.",
        ),
        (
            hub_errors.EntryNotFoundError,
            f"{repo} has no file {filename} at revision '{revision}'.",
            f"See the repository's files at {page}/tree/{revision}.",
        ),
        (
            hub_errors.HfHubHTTPError,
            f"The hub answered {_status(exc)} for {filename}.",
            _RETRY_HINT,
        ),
        (
            httpx2.TransportError,
            f"Could not reach the hub at {hub_endpoint()}: {exc}",
            _RETRY_HINT,
        ),
    ]
    for kind, message, hint in explained:
        if isinstance(exc, kind):
            return DownloadError(message, hint=hint)
    return exc


def _status(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.status_code) if response is not None else "an error"
