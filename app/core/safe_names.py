"""Names that become paths: hub repository ids, model file names, revisions, specialist ids.

They come from the command line, from manifests the user (or someone else) wrote, and from the hub,
and each ends up as part of a path in the data folder. A name that could climb out of it (``..``,
an absolute path, a backslash, a NUL) is refused with a clear message before anything is fetched
or written, and Cadre never writes through a symbolic link it finds where its own files go.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from app.core.errors import CadreError

# As on huggingface.co: letters, digits, '-', '_', '.'; no '--' or '..'; not starting or ending
# with '-' or '.'; at most 96 characters a part.
_REPO_PART = re.compile(r"^(?![.-])(?!.*(?:--|\.\.))[A-Za-z0-9._-]{1,96}(?<![.-])$")
_REVISION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")
_SPECIALIST_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
MAX_FILE_NAME = 200


def check_repo_id(repo: str) -> str:
    owner, slash, name = repo.partition("/")
    if not (slash and _REPO_PART.match(owner) and _REPO_PART.match(name)):
        raise CadreError(
            f"{repo!r} is not a hub repository id.",
            hint="Write it as OWNER/NAME, as on huggingface.co "
            "(e.g. Qwen/Qwen2.5-0.5B-Instruct-GGUF).",
        )
    return repo


def check_model_file_name(name: str) -> str:
    """A bare ``.gguf`` file name: no folders, nothing hidden, nothing a file system reads
    specially."""
    if (
        not name.lower().endswith(".gguf")
        or name.startswith((".", " "))
        or len(name) > MAX_FILE_NAME
        or _UNSAFE_CHARACTERS.search(name)
    ):
        raise CadreError(
            f"{name!r} cannot be a model file name.",
            hint="Give the name of a .gguf file at the top of the repository, without folders.",
        )
    return name


def check_revision(revision: str) -> str:
    if not _REVISION.match(revision) or ".." in revision or revision.endswith("/"):
        raise CadreError(
            f"{revision!r} is not a revision.",
            hint="Use a branch, a tag or a commit hash (the default is main).",
        )
    return revision


def check_specialist_id(specialist_id: str) -> str:
    if not _SPECIALIST_ID.match(specialist_id):
        raise CadreError(
            f"'{specialist_id}' cannot be a specialist id.",
            hint="Use lowercase letters, digits and '-', starting with a letter or digit.",
        )
    return specialist_id


def check_inside(root: Path, path: Path) -> Path:
    """``path`` once every link in its folders is followed, which must still lie in ``root`` (itself
    possibly a link: a models folder moved to another disk is fine)."""
    real_root = root.resolve()
    real = path.parent.resolve() / path.name
    if not real.is_relative_to(real_root):
        raise CadreError(
            f"{path} leads outside {root} (through a symbolic link); Cadre will not write there.",
            hint=f"Remove the link in {root} and try again.",
        )
    return real


def refuse_links(*paths: Path) -> None:
    """Cadre writes its own files in the models folder: a symbolic link where one of them goes
    (planted, or left by another program) would make it write somewhere else."""
    for path in paths:
        if path.is_symlink():
            raise CadreError(
                f"{path} is a symbolic link; Cadre only writes its own files there.",
                hint="Remove the link and try again.",
            )


NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX: opening a link fails instead of following it
