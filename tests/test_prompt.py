from app.core.engine.prompt import (
    StopScanner,
    TranscriptFormat,
    TurnMemory,
    fit_messages,
    plan_prompt_tokens,
)
from app.core.engine.protocol import ChatMessage


def chars(text: str) -> list[int]:
    return [ord(c) for c in text]


CONVERSATION = [
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Hi"),
    ChatMessage("assistant", "Hello!"),
    ChatMessage("user", "Bye"),
]


def test_transcript_format_is_append_only() -> None:
    fmt = TranscriptFormat()
    earlier = fmt.render(CONVERSATION[:3], add_generation_prompt=False)
    now = fmt.render(CONVERSATION, add_generation_prompt=True)
    assert now.startswith(earlier)
    assert now.startswith("Be brief.\n\nUser: What is the capital of France?\n")
    assert now.endswith("\n\nUser: Hi\nAssistant: Hello!\n\nUser: Bye\nAssistant:")
    bare = TranscriptFormat(primer=())
    assert bare.render(CONVERSATION, True) == (
        "Be brief.\n\nUser: Hi\nAssistant: Hello!\n\nUser: Bye\nAssistant:"
    )


def test_follow_up_reuses_the_exact_tokens_of_last_turn() -> None:
    fmt = TranscriptFormat()
    prompt = fmt.render(CONVERSATION[:2], add_generation_prompt=True)
    # the sampled reply tokens differ from what re-tokenizing the text would give
    memory = TurnMemory(prompt, chars(prompt), " Hello!", [-1, -2, -3])
    full = fmt.render(CONVERSATION, add_generation_prompt=True)
    planned = plan_prompt_tokens(full, memory, chars, lambda t: [0, *chars(t)])
    assert planned[: len(prompt) + 3] == [*chars(prompt), -1, -2, -3]
    assert planned[len(prompt) + 3 :] == [0, *chars("\n\nUser: Bye\nAssistant:")]


def test_reply_stored_without_its_generated_whitespace_still_matches() -> None:
    fmt = TranscriptFormat()
    prompt = fmt.render(CONVERSATION[:2], add_generation_prompt=True)
    memory = TurnMemory(prompt, chars(prompt), "Hello!", [-1, -2])  # no leading space generated
    full = fmt.render(CONVERSATION, add_generation_prompt=True)
    planned = plan_prompt_tokens(full, memory, chars, chars)
    assert planned == [*chars(prompt), -1, -2, *chars("\n\nUser: Bye\nAssistant:")]


def test_a_changed_reply_keeps_at_least_the_prompt_tokens() -> None:
    fmt = TranscriptFormat()
    prompt = fmt.render(CONVERSATION[:2], add_generation_prompt=True)
    memory = TurnMemory(prompt, chars(prompt), " Something else", [-9])
    full = fmt.render(CONVERSATION, add_generation_prompt=True)
    planned = plan_prompt_tokens(full, memory, chars, chars)
    assert planned == chars(full)
    assert -9 not in planned


def test_unrelated_prompt_is_tokenized_afresh() -> None:
    memory = TurnMemory("Other text", chars("Other text"), " x", [7])
    assert plan_prompt_tokens("Brand new", memory, chars, chars) == chars("Brand new")
    assert plan_prompt_tokens("Brand new", TurnMemory(), chars, chars) == chars("Brand new")


def test_stop_scanner_holds_back_a_possible_stop_and_cuts_at_it() -> None:
    scanner = StopScanner(["\nUser:"])
    assert scanner.feed(" Hello") == " Hello"
    assert scanner.feed("\nUs") == ""
    assert not scanner.stopped
    assert scanner.feed("er: more") == ""
    assert scanner.stopped
    assert scanner.text == " Hello"


def test_stop_scanner_releases_a_false_alarm() -> None:
    scanner = StopScanner(["\nUser:"])
    assert scanner.feed("a\nU") == "a"
    assert scanner.feed("nder") == "\nUnder"
    assert scanner.flush() == ""


def test_stop_scanner_without_stops_passes_everything() -> None:
    scanner = StopScanner([])
    assert scanner.feed("abc") == "abc"


def test_fit_messages_drops_oldest_turns_but_keeps_system_and_newest() -> None:
    messages = [ChatMessage("system", "S")] + [
        ChatMessage("user" if i % 2 == 0 else "assistant", f"m{i}" * 10) for i in range(6)
    ]

    def count(ms: list[ChatMessage]) -> int:
        return sum(len(m.content) for m in ms)

    kept = fit_messages(messages, count, budget=50)
    assert kept[0].role == "system"
    assert kept[-1] == messages[-1]
    assert count(kept) <= 50
    assert len(kept) < len(messages)
