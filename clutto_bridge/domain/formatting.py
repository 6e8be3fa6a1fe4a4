"""How the bot's words look in a client: Markdown rendered to HTML, with a plain-text body.

Everything the bot sends as prose (replies, the welcome, notices, help) is written in
Markdown and rendered here, in one place, with markdown-it-py (CommonMark):

- ``prose``: the bot's own sentences. A newline is a line break; raw HTML, links and images
  in the text are not rendered (names typed by users cannot turn into links or markup).
- ``document``: a Markdown document an operator wrote (the policy text). Lines wrapped in
  the file flow together into paragraphs; links are kept.

Matrix user IDs in the text (outside code) become mentions: a ``https://matrix.to/#/``
link, which clients show as a pill, and an entry in ``mentions`` for ``m.mentions``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from clutto_bridge.policy.ids import USER_ID

MATRIX_TO = "https://matrix.to/#/"
# A user ID starts a mention only after a space or punctuation, not inside a word or address.
_JOINS_A_WORD = "._=-/+@:"


@dataclass(frozen=True)
class Message:
    """A rendered message: the plain ``body``, the HTML ``formatted_body``, the users it names."""

    plain: str
    blocks: str
    """The rendered HTML blocks (``html`` drops the wrapper of a lone paragraph)."""
    mentions: tuple[str, ...] = ()

    @property
    def html(self) -> str:
        if self.blocks.startswith("<p>") and self.blocks.endswith("</p>") and self.blocks.count("<p>") == 1:
            return self.blocks[3:-4]
        return self.blocks

    def __add__(self, other: Message) -> Message:
        """The two messages one after the other, as separate blocks."""
        return Message(
            f"{self.plain}\n\n{other.plain}",
            f"{self.blocks}\n{other.blocks}",
            tuple(dict.fromkeys(self.mentions + other.mentions)),
        )


def prose(text: str, *, code_marks: bool = True) -> Message:
    """The bot's own Markdown: newlines are line breaks. ``code_marks=False`` drops the
    backticks around code in the plain body (service notices read as sentences there)."""
    return _render(_prose_parser(), text, code_marks)


def document(text: str, *, code_marks: bool = True) -> Message:
    """An operator's Markdown document: wrapped lines flow into paragraphs, links are kept."""
    return _render(_document_parser(), text, code_marks)


def _render(md: MarkdownIt, text: str, code_marks: bool) -> Message:
    env: dict = {}
    tokens = md.parse(text, env)
    html = md.renderer.render(tokens, md.options, env).strip()
    mentions = tuple(
        dict.fromkeys(t.meta["mention"] for block in tokens for t in block.children or () if t.meta.get("mention"))
    )
    plain = re.sub(r"\n{3,}", "\n\n", _plain(tokens, md.options.get("breaks", False), code_marks))
    return Message(plain.strip(), html, mentions)


@cache
def _prose_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True})
    md.disable(["link", "image", "autolink", "html_inline", "html_block", "reference"])
    md.inline.ruler.after("text", "mention", _mention)
    return md


@cache
def _document_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    md.inline.ruler.after("text", "mention", _mention)
    # A line wrapped in the file is a space in the paragraph, also for clients that keep newlines.
    md.add_render_rule("softbreak", lambda self, tokens, idx, options, env: " ")
    return md


def _mention(state: StateInline, silent: bool) -> bool:
    """An inline rule: ``@user:server`` becomes a matrix.to link marked as a mention."""
    pos = state.pos
    if state.src[pos] != "@":
        return False
    if pos > 0 and (state.src[pos - 1].isalnum() or state.src[pos - 1] in _JOINS_A_WORD):
        return False
    match = USER_ID.match(state.src, pos)
    if not match:
        return False
    user_id = match.group(0)
    if not match.group(3):
        user_id = user_id.rstrip(".-")  # "Invited @bob:example.org." ends the sentence, not the name
    if not silent:
        link = state.push("link_open", "a", 1)
        link.attrs = {"href": MATRIX_TO + user_id}
        link.meta = {"mention": user_id}
        state.push("text", "", 0).content = user_id
        state.push("link_close", "a", -1)
    state.pos += len(user_id)
    return True


def _plain(tokens: list[Token], breaks: bool, code_marks: bool) -> str:
    """The plain-text body: the words without Markdown marks, lists and paragraphs kept."""
    out: list[str] = []
    lists: list[list[int]] = []  # per open list: [next number] ([0] for a bullet list)
    for token in tokens:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            lists.append([int(token.attrGet("start") or 1) if kind == "ordered_list_open" else 0])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            out.append("\n" if lists else "\n\n")
        elif kind == "list_item_open":
            numbering = lists[-1]
            marker = f"{numbering[0]}{token.markup} " if numbering[0] else f"{token.markup} "
            if numbering[0]:
                numbering[0] += 1
            out.append("  " * (len(lists) - 1) + marker)
        elif kind == "inline":
            out.append(_inline_plain(token.children or [], breaks, code_marks))
        elif kind in ("paragraph_close", "heading_close"):
            out.append("\n" if token.hidden else "\n\n")  # hidden: a paragraph of a tight list
        elif kind in ("fence", "code_block"):
            out.append(token.content + "\n")
        elif kind == "hr":
            out.append("---\n\n")
    return "".join(out)


def _inline_plain(children: list[Token], breaks: bool, code_marks: bool) -> str:
    parts = []
    for child in children:
        if child.type in ("text", "html_inline"):
            parts.append(child.content)
        elif child.type == "code_inline":
            parts.append(f"`{child.content}`" if code_marks else child.content)
        elif child.type == "softbreak":
            parts.append("\n" if breaks else " ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts)
