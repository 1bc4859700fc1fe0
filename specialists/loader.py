"""Load and validate specialist manifests.

A manifest is a TOML file; every built-in specialist is one, exactly like a user's own. Validation is
strict: a missing key, a wrong type or an unknown key is an error that names the file and the key,
so a typo never silently changes behaviour.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
OVERRIDE_SCHEMA_VERSION = 1
DOMAINS = ("general", "code", "math", "medical", "legal")
MIN_EXAMPLES = (
    25  # for built-in specialists (a test checks); a user's own may route by domain alone
)
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_MODEL_SOURCES = ("huggingface", "pypi", "local")
CONTEXT_BOUNDS = (256, 262_144)
# The range each sampling value may take (llama.cpp accepts more, but beyond these a model only
# babbles or loops). 0 turns top_k and min_p off; a repeat penalty of 1 is none.
SAMPLING_BOUNDS: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "top_k": (0, 1000),
    "min_p": (0.0, 1.0),
    "repeat_penalty": (1.0, 2.0),
    "max_tokens": (1, 65_536),
}


class ManifestError(ValueError):
    """A manifest does not follow the schema. The message names the file and the key."""


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 1024


@dataclass(frozen=True)
class ModelSource:
    """Where the GGUF comes from: a hub repo + file (+ revision), a PyPI package, or a local file."""

    source: str
    file: str
    repo: str = ""
    revision: str = "main"
    package: str = ""
    path: str = ""
    sha256: str = ""
    parameters: str = ""
    quantization: str = ""
    size_bytes: int = 0
    # Architecture facts (the model's config.json) for the memory estimate before it is downloaded.
    layers: int = 0
    kv_heads: int = 0
    head_dim: int = 0


@dataclass(frozen=True)
class SpecialistManifest:
    id: str
    name: str
    domain: str
    description: str
    system_prompt: str
    context_size: int
    license: str
    examples: tuple[str, ...]
    sampling: Sampling
    model: ModelSource
    origin: Path | None = field(default=None, compare=False)


_TOP_KEYS: dict[str, type | tuple[type, ...]] = {
    "schema": int,
    "id": str,
    "name": str,
    "domain": str,
    "description": str,
    "system_prompt": str,
    "context_size": int,
    "license": str,
    "examples": list,
    "sampling": dict,
    "model": dict,
}
_SAMPLING_KEYS: dict[str, type | tuple[type, ...]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "top_k": int,
    "min_p": (int, float),
    "repeat_penalty": (int, float),
    "max_tokens": int,
}
_MODEL_KEYS: dict[str, type | tuple[type, ...]] = {
    "source": str,
    "file": str,
    "repo": str,
    "revision": str,
    "package": str,
    "path": str,
    "sha256": str,
    "parameters": str,
    "quantization": str,
    "size_bytes": int,
    "layers": int,
    "kv_heads": int,
    "head_dim": int,
}


def _check_table(
    table: Mapping[str, Any],
    schema: Mapping[str, type | tuple[type, ...]],
    where: str,
    required: Iterable[str],
) -> None:
    unknown = sorted(set(table) - set(schema))
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {', '.join(unknown)}")
    missing = [key for key in required if key not in table]
    if missing:
        raise ManifestError(f"{where}: missing key(s) {', '.join(missing)}")
    for key, value in table.items():
        expected = schema[key]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ManifestError(f"{where}: '{key}' has the wrong type ({type(value).__name__})")


def _parse_model(table: Mapping[str, Any], where: str) -> ModelSource:
    _check_table(table, _MODEL_KEYS, f"{where} [model]", required=("source", "file"))
    source = table["source"]
    if source not in _MODEL_SOURCES:
        raise ManifestError(f"{where} [model]: source must be one of {', '.join(_MODEL_SOURCES)}")
    needs = {"huggingface": "repo", "pypi": "package", "local": "path"}[source]
    if not table.get(needs):
        raise ManifestError(f"{where} [model]: a '{source}' model needs '{needs}'")
    if not str(table["file"]).endswith(".gguf") or "/" in table["file"] or "\\" in table["file"]:
        raise ManifestError(f"{where} [model]: file must be a bare name ending in .gguf")
    return ModelSource(**table)


def _parse_sampling(table: Mapping[str, Any], where: str, base: Sampling | None = None) -> Sampling:
    """The ``[sampling]`` table over ``base`` (the defaults when none), each value in bounds."""
    _check_table(table, _SAMPLING_KEYS, f"{where} [sampling]", required=())
    values = {key: type(getattr(Sampling, key))(value) for key, value in table.items()}
    for key, value in values.items():
        low, high = SAMPLING_BOUNDS[key]
        if not low <= value <= high:
            raise ManifestError(f"{where} [sampling]: {key} must be between {low:g} and {high:g}")
    return replace(base or Sampling(), **values)


def _check_context(context_size: int, where: str) -> None:
    low, high = CONTEXT_BOUNDS
    if not low <= context_size <= high:
        raise ManifestError(f"{where}: context_size must be between {low} and {high}")


def manifest_from_dict(
    data: Mapping[str, Any], where: str, origin: Path | None = None
) -> SpecialistManifest:
    """Validate a parsed manifest and build the typed object."""
    _check_table(data, _TOP_KEYS, where, required=tuple(k for k in _TOP_KEYS if k != "examples"))
    if data["schema"] != SCHEMA_VERSION:
        raise ManifestError(
            f"{where}: schema {data['schema']} is not supported (expected {SCHEMA_VERSION})"
        )
    if not _ID_PATTERN.match(data["id"]):
        raise ManifestError(f"{where}: id must be lowercase letters, digits and '-'")
    if data["domain"] not in DOMAINS:
        raise ManifestError(f"{where}: domain must be one of {', '.join(DOMAINS)}")
    examples = data.get("examples", [])
    if not all(isinstance(e, str) and e.strip() for e in examples):
        raise ManifestError(f"{where}: examples must be non-empty strings")
    _check_context(data["context_size"], where)
    return SpecialistManifest(
        id=data["id"],
        name=data["name"],
        domain=data["domain"],
        description=data["description"].strip(),
        system_prompt=data["system_prompt"].strip(),
        context_size=data["context_size"],
        license=data["license"],
        examples=tuple(e.strip() for e in examples),
        sampling=_parse_sampling(data["sampling"], where),
        model=_parse_model(data["model"], where),
        origin=origin,
    )


_OVERRIDE_KEYS: dict[str, type | tuple[type, ...]] = {
    "schema": int,
    "system_prompt": str,
    "context_size": int,
    "sampling": dict,
}


def apply_override(
    manifest: SpecialistManifest, data: Mapping[str, Any], where: str
) -> SpecialistManifest:
    """``manifest`` with a user's override of its system prompt, context size and sampling (any
    of them), checked by the rules its manifest is: the same keys, types and bounds. A reply must
    also leave room in the context for the prompt, so an override that sets ``max_tokens`` or
    ``context_size`` keeps the first below the second."""
    _check_table(data, _OVERRIDE_KEYS, where, required=("schema",))
    if data["schema"] != OVERRIDE_SCHEMA_VERSION:
        raise ManifestError(
            f"{where}: schema {data['schema']} is not supported "
            f"(expected {OVERRIDE_SCHEMA_VERSION})"
        )
    prompt = data.get("system_prompt", manifest.system_prompt).strip()
    if not prompt:
        raise ManifestError(f"{where}: system_prompt must not be empty")
    context_size = data.get("context_size", manifest.context_size)
    _check_context(context_size, where)
    sampling = _parse_sampling(data.get("sampling", {}), where, manifest.sampling)
    sized = "context_size" in data or "max_tokens" in data.get("sampling", {})
    if sized and sampling.max_tokens >= context_size:  # (a manifest may, for its own values)
        raise ManifestError(
            f"{where}: max_tokens ({sampling.max_tokens}) must be less than "
            f"context_size ({context_size}), which holds the prompt too"
        )
    return replace(manifest, system_prompt=prompt, context_size=context_size, sampling=sampling)


def load_manifest(path: Path) -> SpecialistManifest:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path.name}: cannot be read: {exc}") from exc
    manifest = manifest_from_dict(data, path.name, origin=path)
    if manifest.id != path.stem:
        raise ManifestError(f"{path.name}: id '{manifest.id}' must match the file name")
    return manifest


def builtin_manifest_dir() -> Path:
    return Path(__file__).resolve().parent / "manifests"


def load_manifests(*folders: Path) -> dict[str, SpecialistManifest]:
    """All manifests in the given folders (built-ins first), keyed by id. A later folder may not
    reuse an id from an earlier one."""
    found: dict[str, SpecialistManifest] = {}
    for folder in folders or (builtin_manifest_dir(),):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            manifest = load_manifest(path)
            if manifest.id in found:
                raise ManifestError(f"{path.name}: id '{manifest.id}' is already taken")
            found[manifest.id] = manifest
    return found
