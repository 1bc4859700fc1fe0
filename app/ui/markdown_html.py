"""A reply's Markdown as the HTML subset that QTextDocument renders.

Model output is untrusted: raw HTML is escaped (markdown-it with ``html`` off), only http(s) links
stay links, and images become their alt text (QTextBrowser would read a ``file:`` image from disk).
Fenced code with a known language gets Pygments colours as inline ``<span>`` styles (QTextDocument
has no stylesheet classes); each block sits in a box with its language and a Copy link whose target
the caller decides. An unclosed fence runs to the end of the text (CommonMark), so a code block that
is still streaming already renders as one.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

SAFE_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class Colours:
    """What a theme changes in a rendered reply."""

    dark: bool
    muted: str  # notes, footers, a code block's language
    code_background: str
    code_header_background: str
    code_border: str
    inline_code_background: str
    pygments_style: str
    user: str  # the speaker names
    assistant: str
    chip_background: str


LIGHT = Colours(
    dark=False,
    muted="#6e6e6e",
    code_background="#f6f8fa",
    code_header_background="#eaeef2",
    code_border="#d0d7de",
    inline_code_background="#eef0f3",
    pygments_style="default",
    user="#2f5fc4",
    assistant="#23794b",
    chip_background="#e4ebf7",
)
DARK = Colours(
    dark=True,
    muted="#9a9a9a",
    code_background="#282c34",
    code_header_background="#21252b",
    code_border="#3e4451",
    inline_code_background="#33363d",
    pygments_style="one-dark",
    user="#7aa2f7",
    assistant="#5fc28a",
    chip_background="#2f3a4f",
)


@dataclass(frozen=True)
class Rendered:
    html: str
    code: tuple[str, ...]  # each code block's text, in order: what its Copy link copies


def render_markdown(text: str, colours: Colours, copy_href: Callable[[int], str]) -> Rendered:
    """``text`` as HTML; ``copy_href(n)`` is the target of the n-th code block's Copy link."""
    env: dict[str, Any] = {"colours": colours, "copy_href": copy_href, "code": [], "links": []}
    body = _parser().render(text, env)
    return Rendered(body, tuple(env["code"]))


def safe_link(url: str) -> bool:
    """Whether a link in model output may open: http(s) only, never file:, javascript: or ours."""
    return url.strip().lower().startswith(SAFE_SCHEMES)


@cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt  # imported on the first reply, not at start-up

    parser = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(
        ["table", "strikethrough"]
    )
    rules: dict[str, Callable[..., str]] = {
        "fence": _fence,
        "code_block": _fence,
        "code_inline": _code_inline,
        "link_open": _link_open,
        "link_close": _link_close,
        "image": _image,
        "table_open": _table_open,
        "heading_open": _heading,
        "heading_close": _heading,
        "blockquote_open": _blockquote_open,
    }
    for name, rule in rules.items():
        parser.add_render_rule(name, rule)
    return parser


def _fence(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    code = token.content.removesuffix("\n")
    language = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
    env["code"].append(code)
    colours: Colours = env["colours"]
    href = html.escape(env["copy_href"](len(env["code"]) - 1))
    label = html.escape(language) if language else "code"
    line = f"1px solid {colours.code_border}"
    header = f'bgcolor="{colours.code_header_background}" style="border-top:{line}; font-size:small'
    return (
        '<table width="100%" cellspacing="0" cellpadding="6" border="0"'
        ' style="border-collapse:collapse">'
        f'<tr><td {header}; border-left:{line}; color:{colours.muted}">{label}</td>'
        f'<td align="right" {header}; border-right:{line}"><a href="{href}">Copy</a></td></tr>'
        f'<tr><td colspan="2" bgcolor="{colours.code_background}" style="border:{line}">'
        f"<pre>{highlight(code, language, colours)}</pre></td></tr></table>\n"
    )


def highlight(code: str, language: str, colours: Colours) -> str:
    """``code`` as escaped HTML with inline colour spans; plain when the language is unknown."""
    lexer = _lexer(language.lower()) if language else None
    if lexer is None:
        return html.escape(code, quote=False)
    parts: list[str] = []
    for style, value in _merged(lexer.get_tokens(code), colours.pygments_style):
        escaped = html.escape(value, quote=False)
        parts.append(f'<span style="{style}">{escaped}</span>' if style else escaped)
    return "".join(parts)


def _merged(tokens: Any, style_name: str) -> list[tuple[str, str]]:
    """Runs of tokens with the same look joined, so a block has few spans to parse."""
    runs: list[tuple[str, str]] = []
    for token_type, value in tokens:
        style = "" if value.isspace() else _span_style(style_name, token_type)
        if runs and runs[-1][0] == style:
            runs[-1] = (style, runs[-1][1] + value)
        else:
            runs.append((style, value))
    return runs


@cache
def _lexer(language: str) -> Any:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@cache
def _span_style(style_name: str, token_type: Any) -> str:
    from pygments.styles import get_style_by_name

    look = get_style_by_name(style_name).style_for_token(token_type)
    parts = [f"color:#{look['color']}"] if look["color"] else []
    if look["bold"]:
        parts.append("font-weight:bold")
    if look["italic"]:
        parts.append("font-style:italic")
    return "; ".join(parts)


def _code_inline(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    colours: Colours = env["colours"]
    text = html.escape(tokens[idx].content, quote=False)
    return f'<code style="background-color:{colours.inline_code_background}">{text}</code>'


def _link_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    href = str(tokens[idx].attrGet("href") or "")
    safe = safe_link(href)
    env["links"].append(safe)
    return f'<a href="{html.escape(href)}">' if safe else ""


def _link_close(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return "</a>" if env["links"].pop() else ""


def _image(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    src = str(token.attrGet("src") or "")
    label = html.escape(f"[image: {alt}]" if alt else "[image]")
    return f'<a href="{html.escape(src)}">{label}</a>' if safe_link(src) else label


def _table_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    colours: Colours = env["colours"]
    return (
        f'<table border="1" cellspacing="0" cellpadding="4"'
        f' style="border-collapse:collapse; border-color:{colours.code_border};'
        f' border-style:solid">\n'
    )


def _heading(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """Headings two steps smaller: QTextDocument's h1 is far bigger than a chat line."""
    token = tokens[idx]
    level = min(max(int(token.tag[1]) + 1, 3), 4)
    return f"<h{level}>" if token.nesting == 1 else f"</h{level}>\n"


def _blockquote_open(
    renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    colours: Colours = env["colours"]
    return f'<blockquote style="color:{colours.muted}">\n'
