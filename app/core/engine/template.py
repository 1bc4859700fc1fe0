"""A model's own chat template (Jinja text inside the GGUF), rendered so that a hostile one stays harmless.

The template comes from whoever made the model file, so it is untrusted code. llama-cpp-python's
``Jinja2ChatFormatter`` renders it in Jinja's ``ImmutableSandboxedEnvironment``: no attribute
starting with ``_`` (no ``__class__``, ``__globals__``, ``__init__``), no mutating methods, ranges
of at most 100,000. Cadre adds what the sandbox leaves open: a render that runs too long (nested
loops) is stopped, and a template that breaks out of the sandbox's rules is refused when the model
loads (a trial render) or, when only some messages trigger it, when it renders them. Either way
the user gets a clear :class:`ChatTemplateError`, never a traceback, and nothing outside runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.engine.protocol import ChatMessage
from app.core.errors import ChatTemplateError

RENDER_LIMIT_S = 2.0  # real templates render a long chat in milliseconds
_TRIAL = (
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", "Hello."),
    ChatMessage("assistant", "Hello! How can I help?"),
    ChatMessage("user", "What is two plus two?"),
)


class _TooSlow(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in Jinja or in the
    template's helpers swallows it."""


@dataclass(frozen=True)
class TemplateFormat:
    """The model's own chat template, rendered by llama-cpp-python's sandboxed Jinja formatter."""

    with_prompt: Any
    without_prompt: Any
    stop: Sequence[str]

    def render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> str:
        from jinja2.exceptions import SecurityError

        try:
            return self._render(messages, add_generation_prompt)
        except (SecurityError, _TooSlow) as exc:
            raise _refused(exc) from None
        except Exception as exc:
            raise ChatTemplateError(
                f"This model's chat template cannot format this conversation: {exc}",
                hint="Start a new conversation, or use another model.",
            ) from exc

    def _render(self, messages: Sequence[ChatMessage], add_generation_prompt: bool) -> str:
        from jinja2.exceptions import SecurityError

        formatter = self.with_prompt if add_generation_prompt else self.without_prompt
        payload = [{"role": m.role, "content": m.content} for m in messages]
        with _time_limit(RENDER_LIMIT_S):
            try:
                return str(formatter(messages=payload).prompt)
            except SecurityError:
                raise
            except Exception:  # e.g. "system role not supported": fold it into the question
                return str(formatter(messages=_merge_system_into_user(payload)).prompt)


def _refused(exc: BaseException) -> ChatTemplateError:
    if isinstance(exc, _TooSlow):
        reason = f"ran for over {RENDER_LIMIT_S:g} s and was stopped"
    else:
        reason = f"tried to reach outside its sandbox ({exc}); Cadre refused to run it"
    return ChatTemplateError(
        f"This model's chat template {reason}.",
        hint="The model file may be hostile: remove it (cadre rm), or use another model.",
    )


def template_format(template: str, eos: str, bos: str) -> TemplateFormat:
    """Compile ``template`` and try it on a short conversation; raise :class:`ChatTemplateError`
    if it is not valid Jinja, breaks the sandbox's rules or runs too long."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    with compiling_templates("This model"):
        fmt = TemplateFormat(
            with_prompt=Jinja2ChatFormatter(template, eos, bos, add_generation_prompt=True),
            without_prompt=Jinja2ChatFormatter(template, eos, bos, add_generation_prompt=False),
            stop=(eos,) if eos else (),
        )
    from jinja2.exceptions import SecurityError

    try:
        fmt._render(_TRIAL, True)
    except (SecurityError, _TooSlow) as exc:  # hostile or endless: refused now, not mid-chat
        raise _refused(exc) from None
    except Exception:  # a template that dislikes the trial conversation may still suit real ones
        pass
    return fmt


@contextlib.contextmanager
def compiling_templates(owner: str) -> Iterator[None]:
    """A chat template that is not valid Jinja becomes a clear error. llama-cpp-python compiles
    every template in the GGUF (never rendering them) as it opens a model, so this also wraps that."""
    from jinja2 import TemplateError

    try:
        yield
    except TemplateError as exc:
        raise ChatTemplateError(
            f"{owner}'s chat template is not valid Jinja: {exc}",
            hint="The model file is damaged or was made for another program.",
        ) from exc


def _merge_system_into_user(payload: list[dict[str, str]]) -> list[dict[str, str]]:
    system = [m["content"] for m in payload if m["role"] == "system"]
    rest = [dict(m) for m in payload if m["role"] != "system"]
    if system and rest and rest[0]["role"] == "user":
        rest[0]["content"] = "\n\n".join([*system, rest[0]["content"]])
    return rest


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` with :class:`_TooSlow`. Only where a timer signal can
    reach this thread: the engine worker's main thread on POSIX; elsewhere the block runs unbounded."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise _TooSlow()

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
