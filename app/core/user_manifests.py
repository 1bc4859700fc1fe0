"""Write the manifest of a specialist the user adds (from any hub repo, or a GGUF file they have).

A user's specialist is a manifest in the data folder, exactly like a built-in one, so everything
else (catalog, routing, the window) treats it the same. The text is validated by the same loader
before it is written, and written under a temporary name then renamed.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from app.core.atomic import write_text_atomically
from app.core.errors import CadreError
from app.core.gguf_header import GGUFHeader
from app.core.safe_names import check_specialist_id
from specialists.loader import DOMAINS, SCHEMA_VERSION, ManifestError, manifest_from_dict

DEFAULT_CONTEXT = 4096
MAX_DEFAULT_CONTEXT = 8192

SYSTEM_PROMPTS = {
    "general": "You are a helpful, accurate and concise assistant running offline on the user's "
    "computer. If you do not know something, say so.",
    "code": "You are an expert programmer. Give correct, idiomatic code in fenced code blocks "
    "and explain briefly. Say which language and versions you assume.",
    "math": "You are a careful mathematician. Reason step by step, show the working, and state "
    "the final answer clearly.",
    "medical": "You give general medical information, not a diagnosis. Be accurate and plain, "
    "and say when someone should see a clinician or seek urgent care.",
    "legal": "You give general legal information, not legal advice. Say which jurisdiction you "
    "assume and when someone should consult a lawyer.",
}


@dataclass(frozen=True)
class NewSpecialist:
    """What the user chose for a specialist they add: its id, domain and (optional) name."""

    id: str
    domain: str
    name: str = ""

    def check(self) -> None:
        check_specialist_id(self.id)
        if self.domain not in DOMAINS:
            raise CadreError(
                f"'{self.domain}' is not a domain Cadre knows.",
                hint=f"Use one of: {', '.join(DOMAINS)}.",
            )


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, except DEL, which TOML wants escaped)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def context_for(header: GGUFHeader) -> int:
    trained = header.context_length
    return min(trained, MAX_DEFAULT_CONTEXT) if trained >= 256 else DEFAULT_CONTEXT


def manifest_text(new: NewSpecialist, header: GGUFHeader, model: dict[str, str | int]) -> str:
    """The TOML of a user's specialist whose model is described by ``model`` ([model] keys)."""
    name = new.name or header.name or str(model["file"]).removesuffix(".gguf")
    origin = model.get("repo") or model.get("path")
    lines = [
        "# Added by Cadre. You may edit this file; Cadre checks it on start.",
        f"schema = {SCHEMA_VERSION}",
        f"id = {toml_string(new.id)}",
        f"name = {toml_string(name)}",
        f"domain = {toml_string(new.domain)}",
        f"description = {toml_string(f'{name}, added from {origin}.')}",
        f"system_prompt = {toml_string(SYSTEM_PROMPTS[new.domain])}",
        f"context_size = {context_for(header)}",
        f"license = {toml_string(str(header.metadata.get('general.license') or 'unknown'))}",
        "",
        "[sampling]",
        "",
        "[model]",
    ]
    for key, value in model.items():
        lines.append(
            f"{key} = {value}" if isinstance(value, int) else f"{key} = {toml_string(value)}"
        )
    return "\n".join(lines) + "\n"


def write_manifest(folder: Path, specialist_id: str, text: str) -> Path:
    """Validate ``text`` with the loader, then write ``<folder>/<id>.toml`` atomically."""
    target = folder / f"{check_specialist_id(specialist_id)}.toml"
    try:
        manifest_from_dict(tomllib.loads(text), target.name, origin=target)
    except (ManifestError, tomllib.TOMLDecodeError) as exc:
        raise CadreError(f"The specialist '{specialist_id}' cannot be saved: {exc}") from exc
    write_text_atomically(target, text)
    return target
