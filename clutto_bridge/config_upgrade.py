"""``config upgrade``: add the keys a newer example config has, keeping the operator's file.

mautrix's ``update()`` rebuilds the file from the example and drops the operator's
comments; here the operator's document is the base and only new keys are added, each
with the comment that documents it in the example. ruamel.yaml keeps a comment on the
entry *before* the line it precedes, which is why comments are moved around below.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken


def round_trip_yaml() -> YAML:
    """The YAML reader and writer of config files: keeps comments, quotes and layout."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=4, sequence=6, offset=4)
    yaml.width = 200
    return yaml


def add_missing_keys(target: CommentedMap, example: Path) -> list[str]:
    """Add what ``example`` has and ``target`` lacks; return the dotted paths added."""
    base = round_trip_yaml().load(example.read_text())
    added: list[str] = []
    _merge_missing(base, target, example.read_text().splitlines(), "", added)
    return added


def _comment_above(lines: list[str], line_no: int) -> list[str]:
    """The comment lines directly above a key in the example config (a blank line kept)."""
    block: list[str] = []
    i = line_no - 1
    while i >= 0 and lines[i].strip().startswith("#"):
        block.insert(0, lines[i].strip()[1:].strip())
        i -= 1
    if block and i >= 0 and not lines[i].strip():
        block.insert(0, "")
    return block


def _tail_slot(parent: Any, key: Any) -> tuple[dict, Any, int]:
    """Where ruamel keeps the comment that follows an entry: on its deepest last item."""
    value = parent[key]
    if isinstance(value, (CommentedMap, CommentedSeq)) and len(value):
        last = list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1
        return _tail_slot(value, last)
    return parent.ca.items, key, 2 if isinstance(parent, CommentedMap) else 0


def _cut_following_comment(parent: Any, key: Any) -> str:
    """Remove and return the comment lines after an entry (they belong to the next key).

    The end-of-line comment on the entry's own line stays where it is.
    """
    items, slot_key, pos = _tail_slot(parent, key)
    entry = items.get(slot_key)
    if not entry or entry[pos] is None:
        return ""
    own_line, newline, following = entry[pos].value.partition("\n")
    if own_line.strip():
        entry[pos].value = own_line + newline
    else:
        entry[pos] = None
    return following


def _append_following_comment(parent: Any, key: Any, text: str) -> None:
    if not text:
        return
    items, slot_key, pos = _tail_slot(parent, key)
    entry = items.setdefault(slot_key, [None, None, None, None] if pos == 2 else [None, None])
    if entry[pos] is None:
        entry[pos] = CommentToken("\n" + text, CommentMark(0), None)
    else:
        entry[pos].value += text


def _merge_missing(base: CommentedMap, target: CommentedMap, lines: list[str], prefix: str, added: list[str]) -> None:
    for index, key in enumerate(base):
        path = f"{prefix}{key}"
        if key in target:
            if isinstance(base[key], CommentedMap) and isinstance(target[key], CommentedMap):
                _merge_missing(base[key], target[key], lines, path + ".", added)
            continue
        position = min(index, len(target))
        following = _cut_following_comment(target, list(target)[position - 1]) if position else ""
        target.insert(position, key, copy.deepcopy(base[key]))
        _cut_following_comment(target, key)  # the example's comment for its next key
        _append_following_comment(target, key, following)
        _copy_comment_above(base, target, key, lines)
        added.append(path)


def _copy_comment_above(base: CommentedMap, target: CommentedMap, key: Any, lines: list[str]) -> None:
    """Give an added key its example comment; a first key's comment is not copied along."""
    line, column = base.lc.key(key)
    comment = _comment_above(lines, line)
    if comment:
        target.yaml_set_comment_before_after_key(key, before="\n".join(comment), indent=column)
    value = target[key]
    if isinstance(value, CommentedMap) and value:
        _copy_comment_above(base[key], value, next(iter(value)), lines)
