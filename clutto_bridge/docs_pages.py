"""The documentation pages generated from the code, and the check that they are current.

Each page is written from the one place its facts live, so no table is kept by hand:

- ``docs/reference/commands.md``: the bot commands, from the command registry (``commands/``);
- ``docs/reference/config.md``: every config key with its default and comment, from ``example-config.yaml``;
- ``docs/reference/api.md``: the provisioning API, from the OpenAPI document the bridge serves;
- ``docs/reference/audit-actions.md``: the audit log's actions, from ``AuditAction``;
- ``docs/promises.md``: the privacy promises, from their registry (``promises/page.py``).

``clutto-bridge docs generate`` writes them; ``tests/unit/test_docs.py`` fails, naming that
command, when a checked-in page differs from what the code makes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clutto_bridge.commands import registry
from clutto_bridge.commands.registry import SECTIONS, WHO, Command
from clutto_bridge.config import EXAMPLE_CONFIG
from clutto_bridge.policy.audit_actions import KINDS, AuditAction
from clutto_bridge.promises import page as promises_page
from clutto_bridge.web.openapi import openapi_document
from clutto_bridge.web.provisioning import PREFIX, all_routes

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "clutto-bridge docs generate"
EMPTY = '""'


def _header(title: str, source: str) -> list[str]:
    return [
        f"# {title}",
        "",
        f"<!-- Generated from {source} by `{COMMAND}`; edit that, not this page.",
        "     tests/unit/test_docs.py fails when it is stale. -->",
        "",
    ]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


# --- bot commands ---------------------------------------------------------------------------------


def _who(command: Command) -> str:
    who = WHO.get(command.team or "", "anyone")
    if command.private:
        who += ", in the chat with the bot"
    elif command.discloses and not command.team:
        who += ", in a team room or the chat with the bot"
    return who


def commands_page() -> str:
    lines = _header("Bot commands", "the command registry (clutto_bridge/commands/)")
    lines += [
        "Send these to the bot: in a team room with the prefix `!clutto` (`bridge.command_prefix`), in",
        "your direct chat with the bot with or without it. `help` lists the same commands, `help COMMAND`",
        "shows one with an example. *Who* is who may send it: the team's owner and admins, its members,",
        "or anyone; some commands answer only in the chat with the bot. What each command does and where",
        "it answers is described in [Using the bot](../members/commands.md).",
        "",
    ]
    sections: dict[str, list[Command]] = {name: [] for name in (*SECTIONS, "General")}
    for command in registry.commands.values():
        sections.setdefault(command.section, []).append(command)
    for section, commands in sections.items():
        if not commands:
            continue
        lines += [f"## {section}", "", "| command | who | what | example |", "| --- | --- | --- | --- |"]
        for command in commands:
            usage = f"{command.name} {command.help_args}".strip()
            lines.append(
                f"| `{_cell(usage)}` | {_who(command)} | {_cell(command.help_text)} | `{_cell(command.example)}` |"
            )
        lines.append("")
    return "\n".join(lines)


# --- config keys ----------------------------------------------------------------------------------

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")


def config_keys(text: str) -> list[tuple[str, str, bool]]:
    """Every key of the example config: (dotted key, its comment, whether it holds keys below it).

    A key's comment is the block of ``#`` lines right above it; keys that follow at the same depth
    without a comment of their own (``as_token`` then ``hs_token``) share it. Lines inside a list
    (``- ...`` and the keys of its items) belong to the list's key.
    """
    found: list[tuple[str, str, bool]] = []
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    shared: dict[int, str] = {}
    in_list: int | None = None
    lines = text.splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if in_list is not None:
            inside = indent > in_list or (indent == in_list and stripped.startswith("-"))
            if stripped and not stripped.startswith("#") and inside:
                continue
            in_list = None
        if not stripped:
            comment, shared = [], {}
            continue
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        if stripped.startswith("-"):
            in_list = indent
            continue
        match = _KEY.match(line)
        if match is None:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        for depth in [d for d in shared if d > indent]:
            del shared[depth]
        if comment:
            shared[indent] = " ".join(comment)
        value = match["rest"].strip()
        following = next((n for n in lines[number + 1 :] if n.strip() and not n.strip().startswith("#")), "")
        holds_keys = (
            not value and len(following) - len(following.lstrip(" ")) > indent and not following.strip().startswith("-")
        )
        found.append((".".join(k for _, k in stack), shared.get(indent, ""), holds_keys))
        comment = []
    return found


def _default(defaults: dict[str, str], key: str) -> str:
    return f"`{_cell(defaults.get(key) or EMPTY)}`"


def config_page() -> str:
    lines = _header("Configuration keys", "example-config.yaml")
    lines += [
        "Every key of `config.yaml`, with its default and what it means, as `clutto-bridge config example`",
        "prints them. `clutto-bridge config upgrade -c config.yaml` adds keys a newer version introduced;",
        "`clutto-bridge config check -c config.yaml` validates a file without starting. Durations are written",
        "`90d`, `12h`, `30m`, `45s`, `1w` or combined (`1d12h`).",
        "",
    ]
    defaults = promises_page.defaults()
    current = None
    for key, comment, holds_keys in config_keys(EXAMPLE_CONFIG.read_text()):
        top = key.split(".")[0]
        if top != current:
            current = top
            lines += ["", f"## `{top}`", ""]
            if comment:
                lines += [comment, ""]
            lines += ["| key | default | meaning |", "| --- | --- | --- |"]
            if key == top and not holds_keys:
                lines.append(f"| `{key}` | {_default(defaults, key)} | {_cell(comment)} |")
            continue
        default = "" if holds_keys else _default(defaults, key)
        lines.append(f"| `{key}` | {default} | {_cell(comment)} |")
    lines.append("")
    return "\n".join(lines)


# --- the provisioning API -------------------------------------------------------------------------


def _schema_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref else schema.get("type", "")


def _type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return _schema_name(schema)
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_type_of(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return str(schema.get("type", "any"))


def api_page(document: dict[str, Any] | None = None) -> str:
    document = document or openapi_document(PREFIX, all_routes())
    base = document["servers"][0]["url"]
    lines = _header("Provisioning API reference", "the OpenAPI document the bridge serves (clutto_bridge/web/)")
    lines += [
        f"Every endpoint is under `{base}` on the appservice port; a running bridge serves this document",
        f"as JSON at `GET {base}/openapi.json` (OpenAPI {document['openapi']}). How to authenticate and",
        "what errors look like: [the API overview](../api.md).",
        "",
        _cell(document["info"]["description"]),
        "",
        "| method | path | summary |",
        "| --- | --- | --- |",
    ]
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            lines.append(f"| {method.upper()} | `{_cell(path)}` | {_cell(op['summary'])} |")
    lines.append("")
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            lines += [f"## {method.upper()} `{path}`", "", _cell(op["summary"]), ""]
            if op.get("description"):
                lines += [_cell(op["description"]), ""]
            if op.get("security") == []:
                lines += ["No bearer token needed.", ""]
            for parameter in op.get("parameters", []):
                note = f": {_cell(parameter['description'])}" if parameter.get("description") else ""
                lines.append(
                    f"- {parameter['in']} parameter `{parameter['name']}` "
                    f"({_type_of(parameter.get('schema', {}))}){note}"
                )
            if "requestBody" in op:
                for media, content in op["requestBody"]["content"].items():
                    lines.append(f"- body ({media}): `{_type_of(content['schema'])}`")
            for status, response in op["responses"].items():
                kinds = response.get("content", {})
                shown = ", ".join(
                    f"`{_type_of(c['schema'])}`" if media == "application/json" else media for media, c in kinds.items()
                )
                lines.append(f"- **{status}**: {_cell(response['description'])}" + (f" ({shown})" if shown else ""))
            lines.append("")
    lines += ["## Schemas", ""]
    for name, schema in document["components"]["schemas"].items():
        lines += [f"### `{name}`", ""]
        if schema.get("description"):
            lines += [_cell(schema["description"]), ""]
        properties = schema.get("properties", {})
        if properties:
            required = set(schema.get("required", ()))
            lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
            for field, info in properties.items():
                lines.append(
                    f"| `{field}` | {_cell(_type_of(info))} | {'yes' if field in required else ''} | "
                    f"{_cell(info.get('description', ''))} |"
                )
            lines.append("")
        elif "enum" in schema:
            lines += [f"One of {_type_of(schema)}.", ""]
    return "\n".join(lines)


# --- audit actions --------------------------------------------------------------------------------


def audit_page() -> str:
    lines = _header("Audit log actions", "AuditAction (clutto_bridge/policy/audit_actions.py)")
    lines += [
        "Every action the audit log records, as stored in its `action` column, in the `audit` webhook",
        "and in `clutto-bridge audit export`. How the log is chained, signed and verified:",
        "[Audit log](../operations/audit.md).",
        "",
    ]
    for kind, title in KINDS.items():
        lines += [f"## {title}", "", "| action | when |", "| --- | --- |"]
        lines += [f"| `{action.value}` | {_cell(action.when)} |" for action in AuditAction if action.kind == kind]
        lines.append("")
    return "\n".join(lines)


PAGES: dict[str, Callable[[], str]] = {
    "docs/reference/commands.md": commands_page,
    "docs/reference/config.md": config_page,
    "docs/reference/api.md": api_page,
    "docs/reference/audit-actions.md": audit_page,
    promises_page.PAGE.relative_to(ROOT).as_posix(): promises_page.markdown,
}


def stale(root: Path = ROOT) -> list[str]:
    """The generated pages whose checked-in text is not what the code makes now."""
    return [name for name, make in PAGES.items() if not (root / name).is_file() or (root / name).read_text() != make()]


def generate(root: Path = ROOT) -> list[str]:
    """Write every generated page that changed; the names written."""
    written = []
    for name, make in PAGES.items():
        path, text = root / name, make()
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(name)
    return written
