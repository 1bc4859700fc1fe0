"""Specialist manifests (data, one TOML file each) and the loader that validates them."""

from specialists.loader import (
    DOMAINS,
    ModelSource,
    Sampling,
    SpecialistManifest,
    builtin_manifest_dir,
    load_manifest,
    load_manifests,
)

__all__ = [
    "DOMAINS",
    "ModelSource",
    "Sampling",
    "SpecialistManifest",
    "builtin_manifest_dir",
    "load_manifest",
    "load_manifests",
]
