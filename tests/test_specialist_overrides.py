"""A specialist's system prompt, sampling and context size as the user customised them: saved as an
override beside the manifests, checked by the loader's rules, laid over the manifests by the
catalog, and used by a real chat turn."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tomllib
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.core.catalog import Catalog
from app.core.engine.protocol import ChatMessage, GenerationStats, SamplingParams
from app.core.errors import CadreError
from app.core.paths import DataPaths
from app.core.service import CadreService
from app.core.specialist_overrides import Customisation
from app.core.tasks import run_job
from app.core.user_manifests import NewSpecialist
from specialists import builtin_manifest_dir
from specialists.loader import ManifestError, Sampling, manifest_from_dict

PROMPT = "You answer in exactly one short sentence, like a pirate."


def customised(catalog: Catalog, specialist_id: str, **changes: Any) -> Customisation:
    """The specialist's current values with ``changes`` (sampling keys go to its sampling)."""
    current = Customisation.of(catalog.manifest(specialist_id))
    sampling = {k: changes.pop(k) for k in list(changes) if hasattr(Sampling, k)}
    return replace(current, sampling=replace(current.sampling, **sampling), **changes)


def builtin_digests() -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in builtin_manifest_dir().glob("*.toml")
    }


@pytest.fixture
def catalog(paths: DataPaths) -> Catalog:
    return Catalog(paths)


def test_an_override_holds_only_the_changes_and_the_manifest_is_untouched(
    catalog: Catalog, paths: DataPaths
) -> None:
    before = builtin_digests()
    shipped = catalog.manifest("code")
    wanted = customised(catalog, "code", system_prompt=PROMPT, temperature=0.9, context_size=4096)
    path = catalog.overrides.save(catalog.defaults("code"), wanted)
    assert path == paths.specialist_overrides / "code.toml"
    with path.open("rb") as handle:
        assert tomllib.load(handle) == {
            "schema": 1,
            "system_prompt": PROMPT,
            "context_size": 4096,
            "sampling": {"temperature": 0.9},
        }
    assert catalog.refresh()  # the new file is seen
    merged = catalog.manifest("code")
    assert merged.system_prompt == PROMPT and merged.context_size == 4096
    assert merged.sampling == replace(shipped.sampling, temperature=0.9)
    assert (merged.name, merged.examples, merged.model) == (
        shipped.name,
        shipped.examples,
        shipped.model,
    )
    assert catalog.is_customised("code") and not catalog.is_customised("math")
    assert catalog.defaults("code") == shipped
    assert builtin_digests() == before


def test_any_prompt_text_survives_the_file(catalog: Catalog) -> None:
    prompt = 'Say "hi" \\ then\n\ttab, """triple""", DEL \x7f, NUL-free ☃ 🚀 \u2028 end'
    catalog.overrides.save(
        catalog.defaults("code"), customised(catalog, "code", system_prompt=prompt)
    )
    catalog.reload()
    assert catalog.manifest("code").system_prompt == prompt


def test_restoring_the_defaults_removes_the_override(catalog: Catalog, paths: DataPaths) -> None:
    catalog.overrides.save(catalog.defaults("math"), customised(catalog, "math", top_k=5))
    catalog.reload()
    assert catalog.manifest("math").sampling.top_k == 5
    assert (
        catalog.overrides.save(catalog.defaults("math"), Customisation.of(catalog.defaults("math")))
        is None
    )
    assert not (paths.specialist_overrides / "math.toml").exists()
    assert catalog.refresh() and not catalog.is_customised("math")
    assert catalog.manifest("math") == catalog.defaults("math")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"system_prompt": "   "}, "System prompt must not be empty"),
        (
            {"max_tokens": 4096, "context_size": 4096},
            r"Max reply tokens \(4096\) must be less than Context size \(4096\)",
        ),
        ({"temperature": 2.5}, "Temperature must be between 0 and 2"),
        ({"repeat_penalty": 0.5}, "Repeat penalty must be between 1 and 2"),
        ({"context_size": 100}, "Context size must be between 256 and 262144"),
    ],
)
def test_values_out_of_bounds_are_refused_with_a_clear_message(
    catalog: Catalog, paths: DataPaths, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(CadreError, match=message) as info:
        catalog.overrides.save(catalog.defaults("math"), customised(catalog, "math", **changes))
    assert info.value.message.startswith("Math cannot use these settings: ")
    assert "Restore defaults" in info.value.hint
    assert not paths.specialist_overrides.exists() or not any(paths.specialist_overrides.iterdir())


def test_manifests_follow_the_same_sampling_bounds() -> None:
    with (builtin_manifest_dir() / "math.toml").open("rb") as handle:
        data = tomllib.load(handle)
    data["sampling"] = {**data["sampling"], "top_p": 1.5}
    with pytest.raises(ManifestError, match="top_p must be between 0 and 1"):
        manifest_from_dict(data, "math.toml")


@pytest.mark.parametrize(
    "text",
    [
        'schema = 1\nsystem_prompt = "unterminated\n',  # not TOML
        'schema = 1\ncolour = "blue"\n',  # unknown key
        "schema = 1\n[sampling]\ntemperature = 9.0\n",  # out of bounds
        "schema = 7\n",  # from a newer Cadre
        'system_prompt = "no schema"\n',
    ],
)
def test_a_damaged_override_is_ignored_with_a_warning(
    paths: DataPaths, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    folder = paths.specialist_overrides
    folder.mkdir(parents=True)
    (folder / "code.toml").write_text(text)
    (folder / "math.toml").write_text('schema = 1\nsystem_prompt = "Still applied."\n')
    with caplog.at_level(logging.WARNING, logger="app.core.specialist_overrides"):
        catalog = Catalog(paths)
    assert catalog.manifest("code") == catalog.defaults("code") and not catalog.is_customised(
        "code"
    )
    assert catalog.manifest("math").system_prompt == "Still applied."
    assert any("code.toml" in record.getMessage() for record in caplog.records)


def test_override_paths_stay_in_their_folder(catalog: Catalog, paths: DataPaths) -> None:
    with pytest.raises(CadreError, match="cannot be a specialist id"):
        catalog.overrides.path("../settings")
    outside = paths.data / "elsewhere.toml"
    outside.write_text("precious")
    paths.specialist_overrides.mkdir(parents=True)
    (paths.specialist_overrides / "code.toml").symlink_to(outside)
    catalog.reload()  # a link read as an override is only an invalid one
    with pytest.raises(CadreError, match="symbolic link"):
        catalog.overrides.save(catalog.defaults("code"), customised(catalog, "code", top_k=3))
    assert outside.read_text() == "precious"


def test_another_cadre_sees_the_change_on_refresh(paths: DataPaths) -> None:
    """`cadre serve` refreshes its catalog per request: the window's save reaches it."""
    server, window = Catalog(paths), Catalog(paths)
    window.overrides.save(window.defaults("legal"), customised(window, "legal", max_tokens=700))
    assert server.manifest("legal").sampling.max_tokens != 700
    assert server.refresh() and server.manifest("legal").sampling.max_tokens == 700
    assert not server.refresh()  # nothing new: no reload
    window.overrides.remove("legal")
    assert server.refresh() and not server.is_customised("legal")


def test_the_command_line_reads_the_customised_catalog(catalog: Catalog) -> None:
    catalog.overrides.save(catalog.defaults("math"), customised(catalog, "math", context_size=2048))
    result = subprocess.run(
        [sys.executable, "-m", "app", "specialists", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=True,
    )
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert (rows["math"]["context_size"], rows["math"]["customised"]) == (2048, True)
    assert not rows["code"]["customised"]


# Through the real service and engine


@pytest.fixture
def tiny_service(paths: DataPaths, tiny_specialist: str) -> Iterator[CadreService]:
    service = CadreService(paths)
    yield service
    service.close()


def record_engine(
    service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[list[ChatMessage], SamplingParams]]:
    """What each generation handed the (real) engine."""
    seen: list[tuple[list[ChatMessage], SamplingParams]] = []
    real = service.engine.generate

    def recording(
        messages: list[ChatMessage], sampling: SamplingParams, cancel: Any = None
    ) -> Generator[str, None, GenerationStats]:
        seen.append((list(messages), sampling))
        return (yield from real(messages, sampling, cancel))

    monkeypatch.setattr(service.engine, "generate", recording)
    return seen


def test_a_chat_turn_uses_the_customised_prompt_sampling_and_context(
    tiny_service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = tiny_service
    seen = record_engine(service, monkeypatch)
    chat = service.conversations.create("tiny")
    run_job(service.reply(chat.id, "Hello there", "tiny"))
    assert service.engine.loaded is not None and service.engine.loaded.n_ctx == 512
    catalog = service.catalog
    wanted = customised(
        catalog,
        "tiny",
        system_prompt=PROMPT,
        temperature=0.4,
        top_k=7,
        max_tokens=12,
        context_size=1024,
    )
    catalog.overrides.save(catalog.defaults("tiny"), wanted)
    assert catalog.refresh()
    reply = run_job(service.reply(chat.id, "And again", "tiny"))
    assert reply is not None and reply.timings.completion_tokens <= 12
    messages, sampling = seen[-1]
    assert messages[0] == ChatMessage("system", PROMPT)
    assert (sampling.temperature, sampling.top_k, sampling.max_tokens) == (0.4, 7, 12)
    assert sampling.top_p == catalog.defaults("tiny").sampling.top_p  # left alone
    assert service.engine.loaded is not None and service.engine.loaded.n_ctx == 1024  # reloaded
    assert [s.customised for s in service.overview() if s.entry.manifest.id == "tiny"] == [True]


def test_forgetting_a_specialist_you_added_forgets_its_override(
    tiny_service: CadreService, paths: DataPaths
) -> None:
    catalog = tiny_service.catalog
    catalog.overrides.save(catalog.defaults("tiny"), customised(catalog, "tiny", top_k=3))
    plan = tiny_service.installer.plan_removal("tiny", forget=True)
    tiny_service.installer.remove(plan)
    assert not (paths.specialist_overrides / "tiny.toml").exists()
    assert "tiny" not in catalog.ids()


def test_an_imported_specialist_is_customised_the_same_way(
    tiny_service: CadreService, tiny_chat_model: Path
) -> None:
    tiny_service.installer.import_file(tiny_chat_model, NewSpecialist("mine", "code"))
    catalog = tiny_service.catalog
    manifest_file = catalog.manifest("mine").origin
    assert manifest_file is not None
    before = manifest_file.read_bytes()
    catalog.overrides.save(catalog.defaults("mine"), customised(catalog, "mine", top_p=0.5))
    catalog.reload()
    assert catalog.manifest("mine").sampling.top_p == 0.5
    assert manifest_file.read_bytes() == before
