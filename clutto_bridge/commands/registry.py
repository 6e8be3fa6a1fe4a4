"""Command registration by decorator, with the help text beside each handler.

``help`` is generated from what is registered, so it never lists a command that does
not exist. Replies are notices with a plain-text body and an HTML body.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from clutto_bridge.context import Services
from clutto_bridge.teams.errors import InvalidInput



@dataclass
class CommandEvent:
    ctx: Services
    room_id: str
    sender: str
    args: list[str]
    in_management_room: bool

    @property
    def rest(self) -> str:
        return " ".join(self.args)

    def usage(self, syntax: str) -> InvalidInput:
        """The refusal for malformed arguments, naming the right syntax with the prefix."""
        return InvalidInput(f"Usage: `{self.ctx.settings.bridge.command_prefix} {syntax}`.")

    async def reply(self, text: str) -> None:
        """Send ``text`` (with `code` and **bold** marks) as a formatted notice."""
        await self.ctx.bot().send_notice(self.room_id, text=_plain(text), html=_html(text))


Handler = Callable[[CommandEvent], Awaitable[None]]


@dataclass
class Command:
    name: str
    handler: Handler
    help_args: str
    help_text: str
    section: str


@dataclass
class Registry:
    commands: dict[str, Command] = field(default_factory=dict)

    def command(self, name: str, *, help_text: str, help_args: str = "", section: str = "General") -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.commands[name] = Command(name, handler, help_args, help_text, section)
            return handler

        return register

    def find(self, words: list[str]) -> tuple[Command | None, list[str]]:
        """The command named by the first one or two words, and the remaining arguments."""
        lowered = [w.lower() for w in words]
        for length in (2, 1):
            name = " ".join(lowered[:length])
            if len(words) >= length and name in self.commands:
                return self.commands[name], words[length:]
        return None, words


registry = Registry()


def _plain(text: str) -> str:
    return text.replace("**", "")


def _html(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    escaped = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)
    return escaped.replace("\n", "<br/>")
