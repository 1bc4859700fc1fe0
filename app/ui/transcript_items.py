"""The transcript's pieces and their HTML: a user message, a grey note, a reply's body and the
reply's footer (sources, actions, figures). The view keeps them in order and re-renders from any one
of them to the end; actions are links with the private ``cadre:`` scheme (``cadre:edit/<id>``)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.storage import StoredMessage
from app.core.storage.conversations import RouteRecord
from app.ui.markdown_html import Colours, render_markdown

ACTION_SCHEME = "cadre"
PICKED_PREFIX = "chosen by you"  # the reason of a manual pick, in records older than ``forced``
_HEADER = 'style="margin-top:14px; margin-bottom:4px"'  # turns stand apart
_CLOSE = "margin-top:2px; margin-bottom:2px;"  # notes and footers stay close to their reply


@dataclass(eq=False)
class UserItem:
    text: str
    message_id: str = ""


@dataclass(eq=False)
class NoteItem:
    text: str


@dataclass(eq=False)
class ReplyItem:
    key: str  # the message id, or a placeholder while the reply is live
    speaker: str
    markdown: str = ""
    message_id: str = ""
    route: RouteRecord | None = None
    code: tuple[str, ...] = ()  # the code blocks as last rendered, for their Copy links


@dataclass(eq=False)
class FooterItem:
    reply: ReplyItem | None  # None: the turn ended before any reply came
    text: str
    sources: tuple[tuple[str, str], ...] = ()  # (label, link): a file URL with the citation


Item = UserItem | NoteItem | ReplyItem | FooterItem


def action_href(action: str, *parts: str) -> str:
    return f"{ACTION_SCHEME}:{'/'.join((action, *parts))}"


def item_html(item: Item, colours: Colours, regenerate: bool = False) -> str:
    """``regenerate``: the footer of the conversation's last reply offers Regenerate."""
    if isinstance(item, UserItem):
        return _user_html(item, colours)
    if isinstance(item, NoteItem):
        return _small(html.escape(item.text), colours)
    if isinstance(item, ReplyItem):
        return _reply_html(item, colours)
    return _footer_html(item, colours, regenerate)


def _user_html(item: UserItem, colours: Colours) -> str:
    body = html.escape(item.text).replace("\n", "<br>")
    return f"<p {_HEADER}>{user_header(item, colours)}</p><p>{body}</p>"


def user_header(item: UserItem, colours: Colours) -> str:
    """The line above a user message, as inline HTML (the view may swap it in place)."""
    edit = ""
    if item.message_id:
        edit = f' &nbsp;<a href="{action_href("edit", item.message_id)}">Edit</a>'
    return f'<b style="color:{colours.user}">You</b><span style="font-size:small">{edit}</span>'


def _reply_html(item: ReplyItem, colours: Colours) -> str:
    rendered = render_markdown(item.markdown, colours, lambda n: copy_code_href(item.key, n))
    item.code = rendered.code
    return reply_header_html(item, colours) + rendered.html


def reply_header_html(item: ReplyItem, colours: Colours) -> str:
    return f"<p {_HEADER}>{reply_header(item, colours)}</p>"


def reply_header(item: ReplyItem, colours: Colours) -> str:
    """The speaker, and once the reply is stored, its routing chip (inline HTML)."""
    header = f'<b style="color:{colours.assistant}">{html.escape(item.speaker)}</b>'
    if item.message_id:
        header += " &nbsp;" + _chip(item.message_id, item.route, colours)
    return header


def copy_code_href(key: str, number: int) -> str:
    return action_href("copy-code", key, str(number))


def _chip(message_id: str, route: RouteRecord | None, colours: Colours) -> str:
    """The domain and the router's confidence ("Code · 82%"), or "picked" when the user chose;
    a link that offers another specialist, the router's reason as its tooltip."""
    label = chip_label(route)
    tip = html.escape(route.reason if route is not None else "Chosen by you")
    return (
        f'<a href="{action_href("route", message_id)}" title="{tip}"'
        f' style="text-decoration:none; font-size:small">'
        f'<span style="background-color:{colours.chip_background}">'
        f"&nbsp;{html.escape(label)}&nbsp;</span></a>"
    )


def chip_label(route: RouteRecord | None) -> str:
    if route is None or route.forced or route.reason.startswith(PICKED_PREFIX):
        return "picked"
    return f"{route.domain.capitalize()} · {route.confidence:.0%}"


def _footer_html(item: FooterItem, colours: Colours, regenerate: bool) -> str:
    parts = []
    if item.sources:
        links = " · ".join(
            f'<a href="{html.escape(link)}">{html.escape(label)}</a>'
            for label, link in item.sources
        )
        parts.append(_small(f"Sources: {links}", colours))
    line = []
    reply = item.reply
    if reply is not None:
        line.append(f'<a href="{action_href("copy", reply.key)}">Copy</a>')
        if regenerate and reply.message_id:
            line.append(f'<a href="{action_href("regenerate", reply.message_id)}">Regenerate</a>')
    if item.text:
        line.append(html.escape(item.text))
    if line:
        parts.append(_small(" · ".join(line), colours))
    return "".join(parts)


def _small(inner: str, colours: Colours) -> str:
    return f'<p style="{_CLOSE} color:{colours.muted}; font-size:small">{inner}</p>'


def stored_items(
    message: StoredMessage, speaker: str, footer: str, sources: Sequence[tuple[str, str]]
) -> list[Item]:
    """A stored message as the view shows it: a user item, or a reply with its note and footer."""
    if message.role == "user":
        return [UserItem(message.content, message.id)]
    reply = ReplyItem(message.id, speaker, message.content, message.id, message.route)
    note: list[Item] = []
    if message.route is not None and message.route.reason:
        note.append(NoteItem(message.route.reason))
    return [*note, reply, FooterItem(reply, footer, tuple(sources))]
