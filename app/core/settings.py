"""The user's settings: one JSON file with a schema version, read forgivingly, written atomically.

What happens to the file (``DataPaths.settings``, ``<config>/settings.json``):

- **Missing**: defaults. Nothing is written until the user saves.
- **Not JSON** (or not a JSON object): moved aside to ``settings.json.bad-<timestamp>``, so nothing
  is lost, and defaults are used.
- **A value of the wrong type or out of range**: that one setting falls back to its default, with a
  warning the window can show. A hand-edited file never stops Cadre from starting.
- **Older**: upgraded in memory by :data:`MIGRATIONS`, one function per version step (like the
  database's migrations); the file is rewritten in the new form at the next save.
- **Keys this version does not know**: ignored on load and kept on save (read back from the file on
  disk), so a setting written by a newer build survives a round trip through an older one. In a file
  of this version or older they are reported as warnings too (a typo in a hand edit shows).
- **Newer** (a larger ``schema_version``): every setting this version understands is loaded, with a
  warning. :func:`save_settings` refuses to replace it (:class:`NewerSettingsError`) unless called
  with ``overwrite_newer=True`` (after asking the user); the newer file is then first copied aside to
  ``settings.json.v<N>-<timestamp>``, and the new file holds only what this version knows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from app import API_PORT
from app.core.atomic import write_json_atomically
from app.core.errors import CadreError
from app.core.hardware import physical_cores

SCHEMA_VERSION = 1
VERSION_KEY = "schema_version"

THREADS_RANGE = (1, 256)
CONTEXT_RANGE = (256, 131_072)
PORT_RANGE = (1024, 65_535)
RAM_BUDGET_RANGE = (0.5, 4096.0)  # GB (decimal, as the rest of Cadre shows sizes)
GPU_OFFLOAD_CHOICES = ("auto", "off", "max")
THEME_CHOICES = ("system", "light", "dark")
AUTO_SPECIALIST = "auto"
GPU_LAYERS_AUTO = -1  # LoadModel.n_gpu_layers: estimate from free VRAM
GPU_LAYERS_ALL = 999  # more layers than any model has: llama.cpp offloads every one
_SPECIALIST_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")  # as specialists.loader checks ids


@dataclass(frozen=True)
class Settings:
    data_folder: str | None = None  # None: the platform's folder (or CADRE_HOME); at next start
    threads: int | None = None  # None: one per physical core
    gpu_offload: str = "auto"  # "auto" (estimate from free VRAM), "off" or "max"
    context_size: int | None = None  # None: each specialist's own; else a cap on it
    ram_budget_gb: float | None = None  # memory loaded models may use; None: what is free
    default_specialist: str = AUTO_SPECIALIST  # "auto": route each message; else an id
    theme: str = "system"  # "system" follows the OS; "light" or "dark" forces one
    api_enabled: bool = False  # serve the local API while the window is open
    api_port: int = API_PORT


@dataclass(frozen=True)
class LoadedSettings:
    """What :func:`read_settings` found: the settings, and what to tell the user about the file."""

    settings: Settings
    warnings: tuple[str, ...] = ()
    file_version: int | None = None  # None: no file was read; 0: written before schema versions

    @property
    def newer(self) -> bool:
        """The file comes from a newer Cadre: saving over it needs the user's confirmation."""
        return self.file_version is not None and self.file_version > SCHEMA_VERSION


class NewerSettingsError(CadreError):
    """The settings file was written by a newer Cadre; replacing it needs the user's consent."""

    def __init__(self, path: Path, version: int) -> None:
        super().__init__(
            f"{path.name} was written by a newer version of Cadre (settings version {version}; "
            f"this one knows {SCHEMA_VERSION}).",
            hint="Saving replaces it with the settings this version knows; a copy is kept aside.",
        )
        self.version = version


# ----- migrations: MIGRATIONS[n] turns a version-n dict into a version-n+1 dict -----

Migration = Callable[[dict[str, Any]], dict[str, Any]]


def _v0_to_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """Pre-release builds wrote no schema_version, called ``threads`` ``n_threads`` and kept the
    theme as ``dark_mode``: true, false, or null to follow the OS."""
    data = dict(raw)
    if "n_threads" in data:
        threads = data.pop("n_threads")
        data.setdefault("threads", threads)
    if "dark_mode" in data:
        dark = data.pop("dark_mode")
        data.setdefault("theme", "dark" if dark is True else "light" if dark is False else "system")
    return data


MIGRATIONS: tuple[Migration, ...] = (_v0_to_v1,)


def migrate(raw: Mapping[str, Any], version: int) -> dict[str, Any]:
    """``raw`` (written at ``version``) brought up to :data:`SCHEMA_VERSION`, without its version
    key. A newer file is returned as it is."""
    data = {key: value for key, value in raw.items() if key != VERSION_KEY}
    for step in MIGRATIONS[version:]:
        data = step(data)
    return data


# ----- validation: one check per field; a problem is a phrase, None means valid -----

Check = Callable[[Any], str | None]


def _whole(low: int, high: int, none_means: str | None = None) -> Check:
    def check(value: Any) -> str | None:
        if value is None and none_means:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return None
        alternative = f", or null for {none_means}" if none_means else ""
        return f"must be a whole number from {low} to {high}{alternative}"

    return check


def _number(low: float, high: float, none_means: str) -> Check:
    def check(value: Any) -> str | None:
        if value is None or (
            isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high
        ):
            return None
        return f"must be a number from {low:g} to {high:g}, or null for {none_means}"

    return check


def _choice(options: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        return None if value in options else "must be one of " + ", ".join(map(repr, options))

    return check


def _folder(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and Path(value).expanduser().is_absolute()):
        return None
    return "must be a full path to a folder, or null for the standard place"


def _specialist(value: Any) -> str | None:
    if isinstance(value, str) and (value == AUTO_SPECIALIST or _SPECIALIST_ID.match(value)):
        return None
    return f"must be {AUTO_SPECIALIST!r} or a specialist id (lowercase letters, digits and '-')"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


CHECKS: dict[str, Check] = {
    "data_folder": _folder,
    "threads": _whole(*THREADS_RANGE, none_means="one per physical core"),
    "gpu_offload": _choice(GPU_OFFLOAD_CHOICES),
    "context_size": _whole(*CONTEXT_RANGE, none_means="each specialist's own"),
    "ram_budget_gb": _number(*RAM_BUDGET_RANGE, none_means="automatic"),
    "default_specialist": _specialist,
    "theme": _choice(THEME_CHOICES),
    "api_enabled": _flag,
    "api_port": _whole(*PORT_RANGE),
}
FIELD_NAMES = tuple(field.name for field in fields(Settings))  # a test checks CHECKS has each


def problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be the setting ``name`` (a phrase), or None when it can."""
    return CHECKS[name](value)


def _normalised(name: str, value: Any) -> Any:
    """Lenient spellings of a valid value: "" for no data folder, a whole number of GB."""
    if name == "data_folder" and value == "":
        return None
    if name == "ram_budget_gb" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_dict(data: Mapping[str, Any], where: str = "settings") -> tuple[Settings, list[str]]:
    """Settings from a current-version dict: each invalid value replaced by its default, with a
    warning; keys that are not settings are left to the caller."""
    defaults = Settings()
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for name in FIELD_NAMES:
        if name not in data:
            continue
        value = _normalised(name, data[name])
        reason = problem(name, value)
        if reason is None:
            values[name] = value
        else:
            default = getattr(defaults, name)
            warnings.append(
                f"{where}: {name} = {json.dumps(data[name])} {reason}; using {json.dumps(default)}."
            )
    return Settings(**values), warnings


# ----- reading -----


class _Corrupt(ValueError):
    pass


def _read_raw(path: Path) -> dict[str, Any] | None:
    """The file's JSON object; None when there is no file. Raises _Corrupt or OSError."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise _Corrupt(str(exc)) from exc
    if not isinstance(data, dict):
        raise _Corrupt(f"expected a JSON object, found {type(data).__name__}")
    return data


def _version_of(raw: Mapping[str, Any]) -> int | None:
    """The file's schema version: 0 when absent, None when it is not a whole number >= 0."""
    version = raw.get(VERSION_KEY, 0)
    if isinstance(version, int) and not isinstance(version, bool) and version >= 0:
        return version
    return None


def _aside(path: Path, tag: str) -> Path:
    """A free name beside ``path`` for a copy that must not be lost: ``settings.json.<tag>-<when>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{tag}-{stamp}")
    counter = 1
    while target.exists():
        counter += 1
        target = path.with_name(f"{path.name}.{tag}-{stamp}-{counter}")
    return target


def _set_aside_corrupt(path: Path, reason: str) -> LoadedSettings:
    try:
        kept = _aside(path, "bad")
        os.replace(path, kept)
    except OSError as exc:
        note = f"it could not be moved aside ({exc})"
    else:
        note = f"it was kept as {kept.name}"
    warning = f"{path.name} could not be read ({reason}); {note}. Using the default settings."
    return LoadedSettings(Settings(), (warning,), None)


def read_settings(path: Path) -> LoadedSettings:
    """The settings in ``path``, and warnings about the file for the user. Never raises for a bad
    file: see the module's docstring for what happens to each kind."""
    try:
        raw = _read_raw(path)
    except _Corrupt as exc:
        return _set_aside_corrupt(path, str(exc))
    except OSError as exc:
        return LoadedSettings(
            Settings(), (f"{path.name} could not be read ({exc}); using defaults.",)
        )
    if raw is None:
        return LoadedSettings(Settings())
    warnings: list[str] = []
    version = _version_of(raw)
    if version is None:
        warnings.append(
            f"{path.name}: {VERSION_KEY} = {json.dumps(raw[VERSION_KEY])} is not a version "
            f"number; reading it as version {SCHEMA_VERSION}."
        )
        version = SCHEMA_VERSION
    data = migrate(raw, version)
    settings, problems = from_dict(data, path.name)
    warnings += problems
    unknown = sorted(set(data) - set(FIELD_NAMES))
    if version > SCHEMA_VERSION:
        warnings.insert(0, str(NewerSettingsError(path, version)).replace("\n", " "))
    elif unknown:
        warnings.append(f"{path.name}: unknown settings ignored (and kept): {', '.join(unknown)}.")
    return LoadedSettings(settings, tuple(warnings), version)


def load_settings(path: Path) -> Settings:
    """The settings in ``path`` (defaults where missing or invalid); see :func:`read_settings`."""
    return read_settings(path).settings


# ----- writing -----


def _kept_extras(path: Path, overwrite_newer: bool) -> dict[str, Any]:
    """The keys of the file on disk that are not settings, to keep; guards a newer file."""
    try:
        raw = _read_raw(path)
    except _Corrupt:
        os.replace(path, _aside(path, "bad"))
        return {}
    if raw is None:
        return {}
    version = _version_of(raw)
    if version is None:
        version = SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        if not overwrite_newer:
            raise NewerSettingsError(path, version)
        shutil.copy2(path, _aside(path, f"v{version}"))
        return {}
    data = migrate(raw, version)
    return {key: data[key] for key in sorted(data) if key not in FIELD_NAMES}


def save_settings(path: Path, settings: Settings, *, overwrite_newer: bool = False) -> None:
    """Write ``settings`` with the current schema version, keeping keys this version does not
    know. Raises :class:`NewerSettingsError` over a newer file unless ``overwrite_newer``, and
    OSError when the disk refuses (the old file is then untouched)."""
    extras = _kept_extras(path, overwrite_newer)
    payload = {VERSION_KEY: SCHEMA_VERSION, **asdict(settings), **extras}
    write_json_atomically(path, payload)


# ----- what the core asks of the settings -----


def effective_threads(settings: Settings) -> int:
    """Threads for llama.cpp: the user's number, else one per physical core."""
    return settings.threads or physical_cores()


def effective_context(settings: Settings, manifest_context: int) -> int:
    """A specialist's context size: its manifest's, capped by the user's setting if any."""
    if settings.context_size is None:
        return manifest_context
    return min(manifest_context, settings.context_size)


def gpu_layers_policy(settings: Settings) -> int:
    """``LoadModel.n_gpu_layers`` for the GPU setting: -1 (estimate from free VRAM) for "auto",
    0 for "off", and more layers than any model has for "max" (llama.cpp offloads them all)."""
    return {"off": 0, "max": GPU_LAYERS_ALL}.get(settings.gpu_offload, GPU_LAYERS_AUTO)


def ram_budget_bytes(settings: Settings) -> int | None:
    """The memory loaded models may use, in bytes; None: no limit beyond what is free."""
    if settings.ram_budget_gb is None:
        return None
    return int(settings.ram_budget_gb * 1000**3)


def usable_ram(settings: Settings, available_ram: int) -> int:
    """What a model may take of ``available_ram``: all of it, or less under a budget."""
    budget = ram_budget_bytes(settings)
    return available_ram if budget is None else min(available_ram, budget)


def data_folder(settings: Settings) -> Path | None:
    """The folder the user chose for Cadre's data, or None for the standard place."""
    return Path(settings.data_folder).expanduser() if settings.data_folder else None
