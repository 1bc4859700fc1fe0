"""The user's own system prompt, sampling and context size for a specialist, kept as an override.

A built-in manifest ships with Cadre and is replaced by each update, so the user's changes are never
written into it: they go to ``<id>.toml`` in the overrides folder (:mod:`app.core.paths`), holding
only the values that differ from the manifest, and the catalog lays them over the manifests when it
loads them. A value left alone keeps following the manifest (an update that improves a default still
reaches it), and *Restore defaults* is simply no override.

A specialist the user added gets an override too, rather than a rewritten manifest: the same code
path and the same *Customised* mark for every specialist, restoring needs the values it was added
with, and a manifest the user edited by hand keeps its comments and layout.

Overrides are checked by the loader's own rules (:func:`specialists.loader.apply_override`) before
they are written and again when they are read; a damaged or outdated file is skipped with a logged
warning, so one bad file costs its customisation, never the catalog.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.core.atomic import write_text_atomically
from app.core.errors import CadreError
from app.core.safe_names import check_inside, check_specialist_id, refuse_links
from app.core.user_manifests import toml_string
from specialists.loader import (
    OVERRIDE_SCHEMA_VERSION,
    ManifestError,
    Sampling,
    SpecialistManifest,
    apply_override,
)

log = logging.getLogger(__name__)

FileState = tuple[str, int, int, int]  # name, mtime_ns, size, inode: what tells a change

# The words the Customise dialog uses for each value (its form rows, and the loader's messages).
LABELS = {
    "system_prompt": "System prompt",
    "temperature": "Temperature",
    "top_p": "Top P",
    "top_k": "Top K",
    "min_p": "Min P",
    "repeat_penalty": "Repeat penalty",
    "max_tokens": "Max reply tokens",
    "context_size": "Context size",
}
_KEYS = re.compile(r"\b(" + "|".join(LABELS) + r")\b")


def in_words(rule: str) -> str:
    """A loader rule ("max_tokens must be ...") in the dialog's words ("Max reply tokens ...")."""
    return _KEYS.sub(lambda key: LABELS[key.group(1)], rule)


@dataclass(frozen=True)
class Customisation:
    """What the user may change about a specialist."""

    system_prompt: str
    context_size: int
    sampling: Sampling

    @classmethod
    def of(cls, manifest: SpecialistManifest) -> Customisation:
        return cls(manifest.system_prompt, manifest.context_size, manifest.sampling)


def differences(base: SpecialistManifest, wanted: Customisation) -> dict[str, Any]:
    """The override's table: only what ``wanted`` changes in ``base`` (empty: nothing)."""
    table: dict[str, Any] = {}
    if wanted.system_prompt.strip() != base.system_prompt:
        table["system_prompt"] = wanted.system_prompt.strip()
    if wanted.context_size != base.context_size:
        table["context_size"] = wanted.context_size
    ours, theirs = asdict(wanted.sampling), asdict(base.sampling)
    sampling = {k: v for k, v in ours.items() if not math.isclose(v, theirs[k], abs_tol=1e-9)}
    if sampling:
        table["sampling"] = sampling
    return table


def override_text(table: Mapping[str, Any]) -> str:
    """The TOML of an override table (strings in JSON's escapes, which are TOML's too)."""
    lines = [
        "# Your changes to this specialist, made in Cadre's Specialists window.",
        f"schema = {OVERRIDE_SCHEMA_VERSION}",
    ]
    if "system_prompt" in table:
        lines.append(f"system_prompt = {toml_string(table['system_prompt'])}")
    if "context_size" in table:
        lines.append(f"context_size = {int(table['context_size'])}")
    sampling: Mapping[str, float] = table.get("sampling", {})
    if sampling:
        lines += ["", "[sampling]"]
        lines += [f"{key} = {value!r}" for key, value in sampling.items()]
    return "\n".join(lines) + "\n"


def toml_files_state(folder: Path) -> tuple[FileState, ...]:
    """Name, mtime, size and inode of each ``.toml`` in ``folder``: what tells that one changed
    (a file is replaced, never edited in place, so its inode changes too)."""
    try:
        with os.scandir(folder) as found:
            files = [(item.name, item.stat()) for item in found if item.name.endswith(".toml")]
    except OSError:  # no folder yet, or one removed meanwhile: as good as empty
        return ()
    return tuple(
        sorted((name, info.st_mtime_ns, info.st_size, info.st_ino) for name, info in files)
    )


class OverrideStore:
    """The overrides folder: one file a specialist, written atomically, read leniently."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, specialist_id: str) -> Path:
        """The override's file; the id is checked, and a link in its place refused."""
        return self.folder / f"{check_specialist_id(specialist_id)}.toml"

    def check(self, base: SpecialistManifest, wanted: Customisation) -> SpecialistManifest:
        """``base`` as ``wanted`` makes it, or a CadreError that says what to change."""
        try:
            return apply_override(base, self._table(wanted, base), "override")
        except ManifestError as exc:
            rule = str(exc).split(": ", 1)[-1]  # without the loader's "where"
            raise CadreError(
                f"{base.name} cannot use these settings: {in_words(rule)}.",
                hint="Change the value, or Restore defaults.",
            ) from exc

    def save(self, base: SpecialistManifest, wanted: Customisation) -> Path | None:
        """Check ``wanted`` against ``base`` (the manifest as shipped), then write what differs;
        when nothing does, remove the override. Returns the file written, if any."""
        self.check(base, wanted)
        table = differences(base, wanted)
        if not table:
            self.remove(base.id)
            return None
        target = self.path(base.id)
        self.folder.mkdir(parents=True, exist_ok=True)
        check_inside(self.folder, target)
        refuse_links(target)
        try:
            write_text_atomically(target, override_text(table))
        except OSError as exc:
            raise CadreError(
                f"Your changes to {base.name} cannot be saved: {exc.strerror or exc}",
                hint=f"Check that {self.folder} can be written to.",
            ) from exc
        return target

    def remove(self, specialist_id: str) -> bool:
        """Back to the manifest's values; whether there was an override."""
        target = self.path(specialist_id)
        existed = target.is_file()
        target.unlink(missing_ok=True)
        return existed

    def apply(self, manifests: Mapping[str, SpecialistManifest]) -> dict[str, SpecialistManifest]:
        """``manifests`` with each valid override laid over its specialist's manifest."""
        merged = dict(manifests)
        for path in self._files():
            base = manifests.get(path.stem)
            if base is None:  # a manifest removed by hand: its changes wait for it to return
                continue
            try:
                with path.open("rb") as handle:
                    merged[base.id] = apply_override(base, tomllib.load(handle), path.name)
            except (OSError, tomllib.TOMLDecodeError, ManifestError) as exc:
                log.warning("Ignored the damaged specialist override %s: %s", path, exc)
        return merged

    def state(self) -> tuple[FileState, ...]:
        """What changes when an override is written or removed (one folder listing)."""
        return toml_files_state(self.folder)

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(path for path in self.folder.glob("*.toml") if path.is_file())

    @staticmethod
    def _table(wanted: Customisation, base: SpecialistManifest) -> dict[str, Any]:
        return {"schema": OVERRIDE_SCHEMA_VERSION, **differences(base, wanted)}
