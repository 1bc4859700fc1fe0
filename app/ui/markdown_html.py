"""A reply's Markdown as the HTML subset that QTextDocument renders.

Model output is untrusted: raw HTML is escaped (markdown-it with ``html`` off), only http(s) links
stay links, and images become their alt text (QTextBrowser would read a ``file:`` image from disk).
Fenced code with a known language gets Pygments colours as inline ``<span>`` styles (QTextDocument
has no stylesheet classes); each block sits in a padded box with its language and a Copy link whose
target the caller decides. An unclosed fence runs to the end of the text (CommonMark), so a code
block that is still streaming already renders as one.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

SAFE_SCHEMES = ("http://", "https://")
_FENCE_OPEN = re.compile(r"(`{3,}|~{3,})([^\n]*)\n")
_NEWLINE = re.compile(r"\r\n?|\n")  # what markdown-it counts as a line break


@dataclass(frozen=True)
class Colours:
    """What a theme changes in a rendered reply."""

    dark: bool
    muted: str  # notes, footers, a code block's language
    code_background: str
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


@dataclass(frozen=True)
class Blocks:
    """A reply rendered whole, cut where its top-level blocks start: joined, the blocks are
    :func:`render_markdown`'s HTML."""

    blocks: tuple[tuple[int, str], ...]  # (the line a top-level block starts on, its HTML)
    code: tuple[str, ...]


def render_blocks(text: str, colours: Colours, copy_href: Callable[[int], str]) -> Blocks:
    """``text`` as :func:`render_markdown` renders it, block by block: each block sees the whole
    text (a reference link defined further on is a link). Pure Python, for a worker thread."""
    env: dict[str, Any] = {"colours": colours, "copy_href": copy_href, "code": [], "links": []}
    parser = _parser()
    tokens = parser.parse(text, env)
    cuts = [n for n, token in enumerate(tokens) if token.level == 0 and token.nesting >= 0]
    blocks = tuple(
        (
            (tokens[start].map or [0])[0],
            parser.renderer.render(tokens[start:end], parser.options, env),
        )
        for start, end in pairwise([*cuts, len(tokens)])
    )
    return Blocks(blocks, tuple(env["code"]))


def warm_up() -> None:
    """Import and build what the first reply needs (~0.2 s: markdown-it, a lexer, the styles), so
    that its first flush does not stall the window. Meant for a background thread."""
    _parser()
    for colours in (LIGHT, DARK):
        highlight_lines("x = 1", "python", colours)


def settled_length(text: str) -> int:
    """How much of a streaming ``text`` is complete top-level blocks that more text cannot change:
    everything before its last block, when that block starts on a complete line (a partial line
    such as ``#`` may still turn out to be something else). The rest is the tail to re-render."""
    starts = [
        token.map[0]
        for token in _parser().parse(text)
        if token.level == 0 and token.nesting >= 0 and token.map is not None
    ]
    lines = line_starts(text)
    complete = len(lines) - 1  # lines that end in a newline
    last = next((line for line in reversed(starts) if 0 < line < complete), 0)
    return lines[last]


def line_starts(text: str) -> list[int]:
    """Where each of ``text``'s lines starts, numbered as markdown-it numbers them."""
    return [0] + [match.end() for match in _NEWLINE.finditer(text)]


def open_fence(text: str) -> tuple[str, str] | None:
    """``(marker, language)`` when ``text`` starts with a whole fence-opening line at column 0."""
    match = _FENCE_OPEN.match(text)
    if match is None or (match.group(1)[0] == "`" and "`" in match.group(2)):
        return None
    return match.group(1), fence_language(match.group(2))


def closes_fence(line: str, marker: str) -> bool:
    """Whether ``line`` closes a fence opened with ``marker`` (CommonMark's rule)."""
    body = line.rstrip(" \t\r")
    fence = body.lstrip(" ")
    return len(body) - len(fence) <= 3 and len(fence) >= len(marker) and set(fence) == {marker[0]}


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
    language = fence_language(token.info)
    env["code"].append(code)
    colours: Colours = env["colours"]
    header = code_open(language, env["copy_href"](len(env["code"]) - 1), colours)
    lines = highlight_lines(code, language, colours).lines
    return header + code_lines(lines) + CODE_CLOSE


def fence_language(info: str) -> str:
    return info.strip().split(maxsplit=1)[0] if info.strip() else ""


# A code block is a box, a text frame (-qt-table-type: frame), shaded and bordered. Its blocks are
# inset by their margins, which the frame's shading covers: Qt's rich text has no padding for a
# block (a block's own background starts where its text starts, margins and indents included),
# and a one-cell table's padding would make each streamed line lay out the whole table again. The
# blocks are the header, one <pre> per line, and a thin strip that keeps the last line off the
# border, so a block that is still streaming grows by whole lines before the strip (see
# app.ui.live_reply).
_INSET = "margin-left:10px; margin-right:10px"
CODE_CLOSE = (
    '<p style="margin-top:0px; margin-bottom:0px; font-size:3pt">&nbsp;</p></td></tr></table>'
)


def code_open(language: str, href: str, colours: Colours) -> str:
    """A code block's box and header (its language and Copy link), up to its first line."""
    label = html.escape(language) if language else "code"
    return (
        f'<table width="100%" border="1" bgcolor="{colours.code_background}"'
        f' style="-qt-table-type: frame; border-color:{colours.code_border}; border-style:solid;'
        f' margin-top:10px; margin-bottom:0px"><tr><td>'
        f'<p style="{_INSET}; margin-top:8px; margin-bottom:4px; font-size:small">'
        f'<span style="color:{colours.muted}">{label}</span>'
        f' &nbsp;·&nbsp; <a href="{html.escape(href)}">Copy</a></p>'
    )


def code_lines(lines: Sequence[str]) -> str:
    return "".join(
        f'<pre style="{_INSET}; margin-top:0px; margin-bottom:0px">{line or " "}</pre>'
        for line in lines
    )


@dataclass(frozen=True)
class Highlighted:
    lines: tuple[str, ...]  # each line as escaped HTML with inline colour spans
    restarts: tuple[int, ...]  # lines where lexing may start afresh (see _restart)


@lru_cache(maxsize=256)
def highlight_lines(code: str, language: str, colours: Colours) -> Highlighted:
    """``code`` line by line, coloured by Pygments (plain when the language is unknown). Cached:
    a theme switch or a finished turn renders the same blocks again."""
    lexer = _lexer(language.lower()) if language else None
    if lexer is None:
        lines = tuple(html.escape(line, quote=False) for line in code.split("\n"))
        return Highlighted(lines, tuple(range(len(lines))))
    runs, restarts = _runs(lexer.get_tokens(code), colours.pygments_style)
    coloured: list[str] = [""]
    for style, value in runs:
        for number, piece in enumerate(value.split("\n")):
            if number:
                coloured.append("")
            if piece:
                escaped = html.escape(piece, quote=False)
                coloured[-1] += f'<span style="{style}">{escaped}</span>' if style else escaped
    return Highlighted(tuple(coloured), tuple(restarts))


def _runs(tokens: Any, style_name: str) -> tuple[list[tuple[str, str]], list[int]]:
    """Runs of tokens with the same look joined (fewer spans for Qt to parse), and the restart
    lines: those that begin with a fresh token at column 0 that is not part of a string or a
    comment. Lexing from such a line colours what follows as lexing from the top would, so a
    block that is streaming need not be lexed whole again for each new line."""
    from pygments.token import Comment, String

    runs: list[tuple[str, str]] = []
    restarts: list[int] = []
    line, at_start = 0, True
    for token_type, value in tokens:
        if not value:
            continue
        literal = token_type in String or token_type in Comment
        if at_start and not value[0].isspace() and not literal:
            restarts.append(line)
        line += value.count("\n")
        at_start = value.endswith("\n")
        style = "" if value.isspace() else _span_style(style_name, token_type)
        if runs and runs[-1][0] == style:
            runs[-1] = (style, runs[-1][1] + value)
        else:
            runs.append((style, value))
    return runs, restarts


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
